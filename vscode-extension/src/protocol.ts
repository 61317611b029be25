/**
 * The server's custom requests and commands the extension uses, spelled as in
 * `server/gemma_lsp/protocol.py` (a test compares them with `gemma-lsp protocol`), and the
 * shapes of what they answer. See docs/chat.md for the whole protocol.
 */
import type { ProgressType } from 'vscode-languageserver-protocol';

import type { CancellationToken, Disposable, Range } from './editorApi';

export const STATS = 'gemma/stats';
export const CHAT = 'gemma/chat';
export const CHAT_HISTORY = 'gemma/chat/history';

export const ACTION_RUN = 'gemma.action.run';
export const MEMORY_REMEMBER = 'gemma.memory.remember';
export const MEMORY_SEARCH = 'gemma.memory.search';
export const MEMORY_FORGET = 'gemma.memory.forget';
export const MEMORY_STATS = 'gemma.memory.stats';
export const INDEX_REBUILD = 'gemma.index.rebuild';
export const COMPLETION_ACCEPTED = 'gemma.completion.accepted';

export const EXECUTE_COMMAND = 'workspace/executeCommand';
export const WORK_DONE_PROGRESS_CREATE = 'window/workDoneProgress/create';
export const WORK_DONE_PROGRESS_CANCEL = 'window/workDoneProgress/cancel';
export const SHOW_MESSAGE = 'window/showMessage';

/** JSON-RPC's RequestCancelled: the answer to a cancelled (or overtaken) request. */
export const REQUEST_CANCELLED = -32800;

/**
 * The part of a connection to the server the modules use. Both vscode-languageclient's
 * `LanguageClient` and vscode-jsonrpc's `ProtocolConnection` have this shape.
 */
export interface ServerConnection {
  sendRequest<R>(method: string, params: unknown, token?: CancellationToken): Promise<R>;
  sendNotification(method: string, params?: unknown): Promise<void> | void;
  onProgress<P>(type: ProgressType<P>, token: string | number, handler: (value: P) => void): Disposable;
}

export interface ChatParams {
  message: string;
  session?: string;
  uri?: string;
  range?: Range;
  template?: string;
  partialResultToken?: string;
}

export interface ChatPiece {
  text: string;
  session: string;
}

export interface ChatResult {
  session: string;
  text: string;
  stopReason: string;
  stats: Record<string, unknown>;
}

export interface Stats {
  loaded: boolean;
  load_error: string | null;
  model: { path?: string; architecture?: string; n_params?: number } | null;
}

export interface MemoryHit {
  id: string;
  text: string;
  score: number;
  tier: string;
  kind: string;
  tags: string[];
  source: { uri?: string; range?: Range } | null;
}

export interface WorkDoneProgressValue {
  kind: 'begin' | 'report' | 'end';
  title?: string;
  message?: string;
  percentage?: number;
  cancellable?: boolean;
}

/**
 * A request to the server. Without parameters it sends `{}`: gemma-lsp (pygls) cannot read a
 * custom request whose `params` are left out and never answers it. The token is passed only
 * when there is one: vscode-jsonrpc would send an explicit `undefined` as a parameter of its own.
 */
export function request<R>(server: ServerConnection, method: string, params: unknown = {}, token?: CancellationToken): Promise<R> {
  return token ? server.sendRequest<R>(method, params, token) : server.sendRequest<R>(method, params);
}

/** `workspace/executeCommand` with one object argument (how every gemma command is called). */
export function executeCommand<R>(server: ServerConnection, command: string, argument?: object, token?: CancellationToken): Promise<R> {
  return request<R>(server, EXECUTE_COMMAND, { command, arguments: argument === undefined ? [] : [argument] }, token);
}

/** The JSON-RPC error code of a failed request, if it has one. */
export function errorCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
