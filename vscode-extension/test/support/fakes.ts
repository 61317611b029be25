/** Fakes of the `EditorApi` and of a server connection, for the modules' unit tests. */
import type {
  CancellationToken,
  Configuration,
  Disposable,
  EditorApi,
  EditorSelection,
  Log,
  MessageKind,
  ProgressOptions,
  QuickPickItem,
  Range,
  RenderedStatus,
  SettingValues,
  StatusView,
} from '../../src/editorApi';
import type { Timers } from '../../src/modelState';
import type { ServerConnection } from '../../src/protocol';

export class FakeConfig implements Configuration {
  readonly updates: [string, unknown][] = [];

  constructor(
    public user: Record<string, unknown> = {},
    public defaults: Record<string, unknown> = {},
    public workspace: Record<string, unknown> = {},
  ) {}

  inspect(key: string): SettingValues {
    return { defaultValue: this.defaults[key], globalValue: this.user[key], workspaceValue: this.workspace[key] };
  }

  get<T>(key: string): T | undefined {
    for (const scope of [this.workspace, this.user, this.defaults]) {
      if (key in scope) {
        return scope[key] as T;
      }
    }
    return undefined;
  }

  async update(key: string, value: unknown): Promise<void> {
    this.updates.push([key, value]);
    (key in this.workspace ? this.workspace : this.user)[key] = value;
  }
}

export class CancellationSource {
  private cancelled = false;
  private listeners: (() => unknown)[] = [];

  readonly token: CancellationToken = {
    get isCancellationRequested() {
      return false;
    },
    onCancellationRequested: (listener) => {
      this.listeners.push(listener);
      return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
    },
  };

  constructor() {
    Object.defineProperty(this.token, 'isCancellationRequested', { get: () => this.cancelled });
  }

  cancel(): void {
    this.cancelled = true;
    for (const listener of [...this.listeners]) {
      listener();
    }
  }
}

export const NO_CANCEL: CancellationToken = new CancellationSource().token;

export class FakeLog implements Log {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`warn: ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
}

export class FakeStatusView implements StatusView {
  readonly shown: RenderedStatus[] = [];
  get last(): RenderedStatus {
    return this.shown[this.shown.length - 1];
  }
  show(status: RenderedStatus): void {
    this.shown.push(status);
  }
  dispose(): void {}
}

/** Timers that fire when the test says so. */
export class ManualTimers implements Timers {
  pending: { callback: () => void; ms: number; cancelled: boolean }[] = [];

  setTimeout(callback: () => void, ms: number): Disposable {
    const timer = { callback, ms, cancelled: false };
    this.pending.push(timer);
    return { dispose: () => (timer.cancelled = true) };
  }

  get waiting(): number[] {
    return this.pending.filter((t) => !t.cancelled).map((t) => t.ms);
  }

  /** Fire every timer due now; returns how many fired. */
  fire(): number {
    const due = this.pending.filter((t) => !t.cancelled);
    this.pending = [];
    due.forEach((t) => t.callback());
    return due.length;
  }
}

export class FakeApi implements EditorApi {
  config = new FakeConfig();
  folders: string[] = [];
  selection: EditorSelection | undefined;
  readonly messages: { kind: MessageKind; message: string; actions: string[] }[] = [];
  readonly opened: { uri: string; range?: Range }[] = [];
  readonly markdown: string[] = [];
  readonly settingsOpened: string[] = [];
  readonly commands: { command: string; args: unknown[] }[] = [];
  readonly progress: { options: ProgressOptions; reports: { message?: string; increment?: number }[]; cancel: CancellationSource; done: boolean }[] = [];
  /** What the next message, quick pick and input box answer. */
  messageAnswers: (string | undefined)[] = [];
  pickAnswers: ((items: QuickPickItem[]) => QuickPickItem | QuickPickItem[] | undefined)[] = [];
  inputAnswers: (string | undefined)[] = [];
  failingCommands = new Set<string>();
  registered = new Map<string, (...args: unknown[]) => unknown>();

  configuration(): Configuration {
    return this.config;
  }
  onDidChangeConfiguration(): Disposable {
    return { dispose() {} };
  }
  workspaceFolders(): string[] {
    return this.folders;
  }
  activeSelection(): EditorSelection | undefined {
    return this.selection;
  }
  async showMessage(kind: MessageKind, message: string, ...actions: string[]): Promise<string | undefined> {
    this.messages.push({ kind, message, actions });
    return this.messageAnswers.shift();
  }
  async showQuickPick<T extends QuickPickItem>(items: T[]): Promise<T | undefined> {
    const answer = this.pickAnswers.shift();
    return answer ? (answer(items) as T | undefined) : undefined;
  }
  async showQuickPickMany<T extends QuickPickItem>(items: T[]): Promise<T[] | undefined> {
    const answer = this.pickAnswers.shift();
    return answer ? (answer(items) as T[] | undefined) : undefined;
  }
  async showInputBox(): Promise<string | undefined> {
    return this.inputAnswers.shift();
  }
  async withProgress<R>(options: ProgressOptions, task: (progress: { report(v: { message?: string; increment?: number }): void }, token: CancellationToken) => Promise<R>): Promise<R> {
    const entry = { options, reports: [] as { message?: string; increment?: number }[], cancel: new CancellationSource(), done: false };
    this.progress.push(entry);
    const result = await task({ report: (v) => entry.reports.push(v) }, entry.cancel.token);
    entry.done = true;
    return result;
  }
  async openLocation(uri: string, range?: Range): Promise<void> {
    this.opened.push({ uri, range });
  }
  async openMarkdown(content: string): Promise<void> {
    this.markdown.push(content);
  }
  async openSettings(query: string): Promise<void> {
    this.settingsOpened.push(query);
  }
  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    this.commands.push({ command, args });
    if (this.failingCommands.has(command)) {
      throw new Error(`command '${command}' not found`);
    }
    return undefined;
  }
  registerCommand(command: string, handler: (...args: unknown[]) => unknown): Disposable {
    this.registered.set(command, handler);
    return { dispose: () => this.registered.delete(command) };
  }
}

type Handler = (params: unknown, token?: CancellationToken) => unknown;

/** A server connection whose requests are answered by handlers the test gives. */
export class FakeServer implements ServerConnection {
  readonly requests: { method: string; params: unknown; token?: CancellationToken }[] = [];
  readonly notifications: { method: string; params: unknown }[] = [];
  readonly progressHandlers = new Map<string | number, (value: unknown) => void>();
  handlers: Record<string, Handler> = {};
  commandHandlers: Record<string, (argument: unknown) => unknown> = {};

  sendRequest<R>(method: string, ...rest: unknown[]): Promise<R> {
    const last = rest[rest.length - 1] as CancellationToken | undefined;
    const token = last && typeof last === 'object' && 'isCancellationRequested' in last ? last : undefined;
    const params = token ? (rest.length === 2 ? rest[0] : undefined) : rest[0];
    if (rest.length > 2 || (rest.length === 2 && !token) || (rest.length >= 1 && rest[rest.length - 1] === undefined)) {
      return Promise.reject(new Error(`${method}: sent with an undefined argument (${rest.length} arguments)`));
    }
    this.requests.push({ method, params, token });
    if (method === 'workspace/executeCommand') {
      const { command, arguments: args } = params as { command: string; arguments: unknown[] };
      const handler = this.commandHandlers[command];
      if (!handler) {
        return Promise.reject(Object.assign(new Error(`unknown command ${command}`), { code: -32601 }));
      }
      return Promise.resolve().then(() => handler(args[0]) as R);
    }
    const handler = this.handlers[method];
    if (!handler) {
      return Promise.reject(Object.assign(new Error(`unhandled ${method}`), { code: -32601 }));
    }
    return Promise.resolve().then(() => handler(params, token) as R);
  }

  sendNotification(method: string, params?: unknown): void {
    this.notifications.push({ method, params });
  }

  onProgress<P>(_type: unknown, token: string | number, handler: (value: P) => void): Disposable {
    if (this.progressHandlers.has(token)) {
      throw new Error(`Progress handler for token ${token} already registered`);
    }
    this.progressHandlers.set(token, handler as (value: unknown) => void);
    return { dispose: () => this.progressHandlers.delete(token) };
  }

  /** `$/progress` from the server. */
  progress(token: string | number, value: unknown): void {
    this.progressHandlers.get(token)?.(value);
  }

  /** Requests of one method, in order. */
  sent(method: string): unknown[] {
    return this.requests.filter((r) => r.method === method).map((r) => r.params);
  }
}

export function selection(uri = 'file:///ws/geometry.py', text = 'def area(r):\n    return r * r\n'): EditorSelection {
  const lines = text.split('\n');
  return {
    uri,
    text,
    languageId: 'python',
    range: { start: { line: 3, character: 0 }, end: { line: 3 + lines.length - 1, character: lines[lines.length - 1].length } },
  };
}

/** Let pending promise callbacks run. */
export async function settle(times = 5): Promise<void> {
  for (let i = 0; i < times; i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}
