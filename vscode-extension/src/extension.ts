/**
 * Wiring only: builds the modules, registers the commands and the `@gemma` chat participant,
 * starts the server. Each module says what it does.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';

import { ChatEntryPoints, ChatParticipant, PARTICIPANT_ID } from './chat';
import { createLanguageClient } from './client';
import { findServer } from './discovery';
import { InlineCompletions } from './inlineCompletions';
import { MemoryCommands } from './memoryCommands';
import { ModelState, nodeTimers } from './modelState';
import { RestartPolicy } from './restartPolicy';
import { ServerMessages } from './serverMessages';
import { ServerProgress } from './serverProgress';
import { CLIENT, contributedSettings } from './settings';
import { SettingsSync } from './settingsSync';
import { Status } from './status';
import { StatusMenu } from './statusMenu';
import { ServerSupervisor } from './supervisor';
import { chatStream, statusView, vscodeApi } from './vscodeapi';

let supervisor: ServerSupervisor | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const api = vscodeApi();
  const config = () => api.configuration();
  const contributed = contributedSettings(context.extension.packageJSON);
  const log = vscode.window.createOutputChannel('Gemma', { log: true });
  const status = new Status(statusView('gemma-lsp.menu'));
  const model = new ModelState(status);
  const messages = new ServerMessages(api, status, log);
  const policy = new RestartPolicy(
    () => config().get<number>(CLIENT.maxRestarts) ?? 5,
    () => (config().get<number>(CLIENT.restartWindowMinutes) ?? 3) * 60_000,
  );

  // The closures below run once the server starts, after `sync` and `entry` exist.
  const inline: InlineCompletions = new InlineCompletions(() => sync.paused(), status);
  const server: ServerSupervisor = new ServerSupervisor({
    discover: () =>
      findServer({
        configuredPath: config().get<string>(CLIENT.serverPath),
        workspaceFolders: api.workspaceFolders(),
        env: process.env,
        platform: process.platform,
        homedir: os.homedir(),
      }),
    serverArgs: () => config().get<string[]>(CLIENT.serverArgs) ?? [],
    createClient: (command, crashed) =>
      createLanguageClient(command, crashed, {
        log,
        initializationOptions: () => sync.initializationOptions(),
        inline,
        messages,
        progress: (connection) => new ServerProgress(connection, api, model, log),
        runCommand: (name, args, next) => entry.runCodeActionCommand(name, args, next),
      }),
    policy,
    status,
    model,
    log,
    api,
    showLog: () => log.show(true),
    timers: nodeTimers,
    now: () => Date.now(),
  });
  supervisor = server;
  const sync: SettingsSync = new SettingsSync(config, contributed, server, status, log);
  const entry: ChatEntryPoints = new ChatEntryPoints(api, () => server.connection);
  const memory = new MemoryCommands(api, () => server.connection);
  const menu = new StatusMenu(api, config, contributed, {
    rebuildIndex: () => memory.rebuildIndex(),
    rememberSelection: () => memory.rememberSelection(),
    searchMemories: () => memory.searchMemories(),
    forgetMemories: () => memory.forgetMemories(),
    restart: () => server.restart('asked from the menu'),
    showLog: () => log.show(true),
  });
  const chat = new ChatParticipant(() => server.connection, () => api.activeSelection(), log);
  const participant = vscode.chat.createChatParticipant(PARTICIPANT_ID, (request, chatContext, stream, token) =>
    chat.handle(request, chatContext, chatStream(stream), token),
  );

  const commands: Record<string, () => unknown> = {
    'gemma-lsp.menu': () => menu.open(),
    'gemma-lsp.askAboutSelection': () => entry.askAboutSelection(),
    'gemma-lsp.rememberSelection': () => memory.rememberSelection(),
    'gemma-lsp.searchMemories': () => memory.searchMemories(),
    'gemma-lsp.forgetMemories': () => memory.forgetMemories(),
    'gemma-lsp.rebuildIndex': () => memory.rebuildIndex(),
    'gemma-lsp.togglePause': () => config().update(CLIENT.paused, !sync.paused()),
    'gemma-lsp.pickPreset': () => menu.pickPreset(),
    'gemma-lsp.restart': () => server.restart('asked from the command palette'),
    'gemma-lsp.showLog': () => log.show(true),
  };
  context.subscriptions.push(
    log,
    participant,
    status,
    api.onDidChangeConfiguration((affects) => {
      if (affects('gemma')) {
        void sync.changed();
      }
    }),
    ...Object.entries(commands).map(([name, run]) => api.registerCommand(name, run)),
  );
  void server.start(); // activation does not wait for the server
}

export async function deactivate(): Promise<void> {
  await supervisor?.stop();
  supervisor = undefined;
}
