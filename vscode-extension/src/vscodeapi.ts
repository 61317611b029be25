/**
 * The `EditorApi` of editorApi.ts with the real `vscode` module: the only place, with
 * client.ts and extension.ts, that touches VS Code. Tests give the modules fakes instead.
 */
import * as vscode from 'vscode';

import type { ChatStreamLike } from './chat';
import type { Configuration, EditorApi, EditorSelection, Range, RenderedStatus, StatusView } from './editorApi';
import { SECTION } from './settings';

function toRange(range: Range): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

function configuration(): Configuration {
  const config = vscode.workspace.getConfiguration(SECTION);
  return {
    inspect: (key) => config.inspect(key),
    get: <T>(key: string) => config.get<T>(key),
    async update(key, value) {
      const values = config.inspect(key);
      const target =
        values?.workspaceFolderValue !== undefined
          ? vscode.ConfigurationTarget.WorkspaceFolder
          : values?.workspaceValue !== undefined
            ? vscode.ConfigurationTarget.Workspace
            : vscode.ConfigurationTarget.Global;
      await config.update(key, value, target);
    },
  };
}

/** The files the server sees: the document selector is `{ scheme: 'file' }`. */
function activeSelection(): EditorSelection | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.uri.scheme !== 'file') {
    return undefined;
  }
  const s = editor.selection;
  return {
    uri: editor.document.uri.toString(),
    range: { start: { line: s.start.line, character: s.start.character }, end: { line: s.end.line, character: s.end.character } },
    text: editor.document.getText(s),
    languageId: editor.document.languageId,
  };
}

export function vscodeApi(): EditorApi {
  return {
    configuration,
    onDidChangeConfiguration: (listener) =>
      vscode.workspace.onDidChangeConfiguration((event) => listener((key) => event.affectsConfiguration(key))),
    workspaceFolders: () => (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath),
    activeSelection,
    async showMessage(kind, message, ...actions) {
      const show =
        kind === 'error' ? vscode.window.showErrorMessage : kind === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
      return show(message, ...actions);
    },
    async showQuickPick(items, options) {
      return vscode.window.showQuickPick(items, { title: options.title, placeHolder: options.placeHolder, matchOnDetail: true });
    },
    async showQuickPickMany(items, options) {
      return vscode.window.showQuickPick(items, { title: options.title, placeHolder: options.placeHolder, canPickMany: true, matchOnDetail: true });
    },
    async showInputBox(options) {
      return vscode.window.showInputBox(options);
    },
    async withProgress(options, task) {
      const location = options.location === 'notification' ? vscode.ProgressLocation.Notification : vscode.ProgressLocation.Window;
      return vscode.window.withProgress({ location, title: options.title, cancellable: options.cancellable }, task);
    },
    async openLocation(uri, range) {
      await vscode.window.showTextDocument(vscode.Uri.parse(uri), range ? { selection: toRange(range) } : {});
    },
    async openMarkdown(content) {
      const document = await vscode.workspace.openTextDocument({ language: 'markdown', content });
      await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
    },
    async openSettings(query) {
      await vscode.commands.executeCommand('workbench.action.openSettings', query);
    },
    async executeCommand(command, ...args) {
      return vscode.commands.executeCommand(command, ...args);
    },
    registerCommand: (command, handler) => vscode.commands.registerCommand(command, handler),
  };
}

export function statusView(command: string): StatusView {
  const item = vscode.window.createStatusBarItem('gemma-lsp.status', vscode.StatusBarAlignment.Right, 100);
  item.name = 'Gemma';
  item.command = command;
  return {
    show(status: RenderedStatus) {
      item.text = status.text;
      item.tooltip = status.tooltip;
      item.backgroundColor =
        status.background === 'error'
          ? new vscode.ThemeColor('statusBarItem.errorBackground')
          : status.background === 'warning'
            ? new vscode.ThemeColor('statusBarItem.warningBackground')
            : undefined;
      item.show();
    },
    dispose: () => item.dispose(),
  };
}

export function chatStream(stream: vscode.ChatResponseStream): ChatStreamLike {
  return {
    markdown: (text) => stream.markdown(text),
    progress: (text) => stream.progress(text),
    reference: (uri, range) => stream.reference(range ? new vscode.Location(vscode.Uri.parse(uri), toRange(range)) : vscode.Uri.parse(uri)),
    button: (command) => stream.button(command),
  };
}
