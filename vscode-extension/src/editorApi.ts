/**
 * What the extension's modules need from VS Code, as plain interfaces.
 *
 * `vscodeapi.ts` implements them with the real `vscode` module; tests hand the modules fakes
 * instead, so every module except `vscodeapi.ts`, `client.ts` and `extension.ts` runs under Node
 * without VS Code. Positions and ranges are LSP-shaped (0-based lines, UTF-16 characters).
 */

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface Disposable {
  dispose(): unknown;
}

export interface CancellationToken {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => unknown): Disposable;
}

/** The selection of the active editor, when it shows a file the server knows. */
export interface EditorSelection {
  uri: string;
  range: Range;
  text: string;
  languageId: string;
}

/** What `WorkspaceConfiguration.inspect` tells about one key. */
export interface SettingValues {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** The `gemma` section of the settings. Keys are relative to it: `model.path`, `server.args`. */
export interface Configuration {
  inspect(key: string): SettingValues | undefined;
  get<T>(key: string): T | undefined;
  /** Write `value` where the key is set now (the workspace if it is set there, else the user's settings). */
  update(key: string, value: unknown): Promise<void>;
}

export interface QuickPickItem {
  label: string;
  description?: string;
  detail?: string;
  picked?: boolean;
}

export type MessageKind = 'error' | 'warning' | 'info';

export interface ProgressOptions {
  title: string;
  cancellable: boolean;
  /** `notification`: a toast with a cancel button; `window`: a spinner in the status bar. */
  location: 'notification' | 'window';
}

export interface ProgressReporter {
  report(value: { message?: string; increment?: number }): void;
}

export interface RenderedStatus {
  text: string;
  tooltip: string;
  background?: 'error' | 'warning';
}

export interface StatusView extends Disposable {
  show(status: RenderedStatus): void;
}

export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface EditorApi {
  configuration(): Configuration;
  onDidChangeConfiguration(listener: (affects: (key: string) => boolean) => unknown): Disposable;
  workspaceFolders(): string[];
  activeSelection(): EditorSelection | undefined;

  showMessage(kind: MessageKind, message: string, ...actions: string[]): Promise<string | undefined>;
  showQuickPick<T extends QuickPickItem>(items: T[], options: { title: string; placeHolder?: string; canPickMany?: false }): Promise<T | undefined>;
  showQuickPickMany<T extends QuickPickItem>(items: T[], options: { title: string; placeHolder?: string }): Promise<T[] | undefined>;
  showInputBox(options: { title: string; prompt?: string; placeHolder?: string; value?: string }): Promise<string | undefined>;
  withProgress<R>(options: ProgressOptions, task: (progress: ProgressReporter, token: CancellationToken) => Promise<R>): Promise<R>;

  openLocation(uri: string, range?: Range): Promise<void>;
  /** A new, unsaved Markdown document with `content`, beside the editor. */
  openMarkdown(content: string): Promise<void>;
  openSettings(query: string): Promise<void>;
  executeCommand(command: string, ...args: unknown[]): Promise<unknown>;
  registerCommand(command: string, handler: (...args: unknown[]) => unknown): Disposable;
}
