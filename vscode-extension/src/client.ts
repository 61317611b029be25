/**
 * The vscode-languageclient `LanguageClient` for one `gemma-lsp serve` process: stdio, every
 * `file:` document, the settings the user set as `initializationOptions`, the server's output in
 * the log channel, and the extension's middleware (pause, latency, chat-bound code actions) and
 * handlers (progress, messages) in place of the library's.
 */
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  RevealOutputChannelOn,
  ShowMessageNotification,
  WorkDoneProgressCreateRequest,
  type ClientCapabilities,
  type LanguageClientOptions,
  type ServerOptions,
  type StaticFeature,
} from 'vscode-languageclient/node';

import type { LogOutputChannel } from 'vscode';

import type { InlineCompletions } from './inlineCompletions';
import type { ServerConnection } from './protocol';
import type { ServerMessages } from './serverMessages';
import type { ServerProgress } from './serverProgress';
import type { ServerCommand } from './supervisor';

export const CLIENT_ID = 'gemma';
export const CLIENT_NAME = 'gemma-lsp';

export interface ClientHooks {
  log: LogOutputChannel;
  initializationOptions(): object;
  inline: InlineCompletions;
  messages: ServerMessages;
  progress(server: ServerConnection): ServerProgress;
  runCommand(command: string, args: unknown[], next: (command: string, args: unknown[]) => unknown): unknown;
}

/**
 * Code actions: without `resolveSupport` the server sends fix, document and tests with a command,
 * so the model runs after the pick, under progress the user can cancel, and the edit arrives as
 * one `workspace/applyEdit` (docs/chat.md). The progress handler is registered here, after the
 * library's own (features are initialized in order), so it replaces it.
 */
class GemmaFeature implements StaticFeature {
  private progress: ServerProgress | undefined;

  constructor(
    private readonly client: LanguageClient,
    private readonly hooks: ClientHooks,
  ) {}

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    delete capabilities.textDocument?.codeAction?.resolveSupport;
  }

  initialize(): void {
    this.progress = this.hooks.progress(this.client);
    const progress = this.progress;
    this.client.onRequest(WorkDoneProgressCreateRequest.type, (params) => progress.create(params));
  }

  getState() {
    return { kind: 'static' as const };
  }

  clear(): void {
    this.progress?.dispose();
  }
}

export function createLanguageClient(command: ServerCommand, crashed: (why: string) => void, hooks: ClientHooks): LanguageClient {
  const serverOptions: ServerOptions = { command: command.command, args: command.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }],
    outputChannel: hooks.log,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationOptions: () => hooks.initializationOptions(),
    errorHandler: {
      error: (error, _message, count) => {
        hooks.log.error(`connection to gemma-lsp: ${error.message}`);
        return { action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true };
      },
      closed: () => {
        crashed('the server process ended');
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
    initializationFailedHandler: (error) => {
      hooks.log.error(`initialize failed: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    },
    middleware: {
      provideInlineCompletionItems: (document, position, context, token, next) =>
        hooks.inline.provide(token, () => next(document, position, context, token)),
      provideCompletionItem: () => hooks.inline.completionList(),
      executeCommand: (name, args, next) => hooks.runCommand(name, args, next),
    },
  };
  const client = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
  client.registerFeature(new GemmaFeature(client, hooks));
  // Registered before start: installed after the library's own handler, so it replaces it.
  client.onNotification(ShowMessageNotification.type, (params) => hooks.messages.show(params));
  return client;
}
