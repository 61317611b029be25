/**
 * The extension's own client code against the real `gemma-lsp serve` over stdio, without VS Code:
 * the capabilities vscode-languageclient 11 computes with the extension's features, the settings
 * as initializationOptions and didChangeConfiguration, the load progress into the status bar,
 * an inline completion and its accepted command, a code action whose edit arrives as
 * workspace/applyEdit, a streamed chat turn, and a cancelled one.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { createProtocolConnection, StreamMessageReader, StreamMessageWriter, type ProtocolConnection } from 'vscode-languageserver-protocol/node';

import { ChatParticipant, type ChatStreamLike } from '../../src/chat';
import type { ClientHooks } from '../../src/client';
import { findServer } from '../../src/discovery';
import { InlineCompletions } from '../../src/inlineCompletions';
import { MemoryCommands } from '../../src/memoryCommands';
import { ModelState } from '../../src/modelState';
import { executeCommand, request, type ServerConnection } from '../../src/protocol';
import { ServerMessages } from '../../src/serverMessages';
import { ServerProgress } from '../../src/serverProgress';
import { contributedSettings } from '../../src/settings';
import { SettingsSync } from '../../src/settingsSync';
import { Status } from '../../src/status';
import { CancellationSource, FakeApi, FakeConfig, FakeLog, FakeStatusView, NO_CANCEL } from '../support/fakes';
import { EXTENSION, REPOSITORY } from '../support/gemmaLsp';
import { installVscodeStub } from '../support/vscodeStub';

const CODE = 'import math\n\n\ndef circle_area(radius):\n    return math.pi * radius * 2\n\n\nprint(circle_area(2))\n';
const SELECTION = { start: { line: 3, character: 0 }, end: { line: 5, character: 0 } };
const COMPLETION_TEXT = 'import os\n\n\ndef greet(name: str) -> str:\n    """Say hello."""\n    return f"hello {name}"\n\n\ndef main():\n    \n';
const CURSOR = { line: 9, character: 4 };

class RecordingStream implements ChatStreamLike {
  readonly pieces: string[] = [];
  onPiece: (() => void) | undefined;
  markdown(text: string): void {
    this.pieces.push(text);
    this.onPiece?.();
  }
  progress(): void {}
  reference(): void {}
  button(): void {}
}

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The capabilities vscode-languageclient 11 sends, with the extension's own feature applied. */
function vscodeCapabilities(): Record<string, any> {
  installVscodeStub();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createLanguageClient } = require('../../src/client') as typeof import('../../src/client');
  const hooks = { log: {}, initializationOptions: () => ({}), progress: () => ({}) } as unknown as ClientHooks;
  const client = createLanguageClient({ command: 'gemma-lsp', args: ['serve'] }, () => undefined, hooks);
  return (client as unknown as { computeClientCapabilities(): Record<string, any> }).computeClientCapabilities();
}

describe('the extension against the real gemma-lsp serve', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gemma-vscode-'));
  const workspace = path.join(tmp, 'ws');
  const geometry = pathToFileURL(path.join(workspace, 'geometry.py')).toString();
  const greet = pathToFileURL(path.join(workspace, 'greet.py')).toString();
  const packageJson = JSON.parse(fs.readFileSync(path.join(EXTENSION, 'package.json'), 'utf8'));
  const api = new FakeApi();
  const view = new FakeStatusView();
  const status = new Status(view);
  const model = new ModelState(status);
  const log = new FakeLog();
  const applied: any[] = [];
  const config = new FakeConfig();
  let capabilities: Record<string, any>;
  let server: ChildProcessWithoutNullStreams;
  let connection: ProtocolConnection;
  let conn: ServerConnection;
  let sync: SettingsSync;
  let initializeResult: any;
  let stderr = '';
  let version = 1;

  before(async () => {
    fs.mkdirSync(workspace);
    fs.writeFileSync(path.join(workspace, 'geometry.py'), CODE);
    const found = findServer({ workspaceFolders: [REPOSITORY], env: process.env, platform: process.platform, homedir: os.homedir() });
    assert.ok(found.found, 'gemma-lsp is in the repository .venv (make install-dev)');
    const tinyModel = path.join(tmp, 'tiny.gguf');
    execFileSync(found.command, ['make-test-model', '--out', tinyModel]);

    const emptyConfig = path.join(tmp, 'empty.toml'); // the user's own config.toml stays out of the test
    fs.writeFileSync(emptyConfig, '');
    config.user = {
      'model.path': tinyModel,
      'model.idle_unload_seconds': 0,
      'completion.max_tokens': 12,
      'chat.max_tokens': 48, // as tests/lsp/test_lsp_actions.py: enough for the tiny model to write a test
      'memory.sqlite_path': path.join(tmp, 'memories.sqlite3'),
      'memory.journal_dir': path.join(tmp, 'journal'),
      'index.enabled': false,
      'inlineCompletion.paused': false,
      'server.args': ['--config', emptyConfig],
    };
    capabilities = vscodeCapabilities();

    const args = ['serve', ...(config.user['server.args'] as string[])]; // as the supervisor builds them
    server = spawn(found.command, args, { cwd: workspace });
    server.stderr.on('data', (chunk) => (stderr += chunk));
    connection = createProtocolConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
    conn = connection as unknown as ServerConnection;
    const progress = new ServerProgress(conn, api, model, log);
    const messages = new ServerMessages(api, status, log);
    connection.onRequest('window/workDoneProgress/create', (params: { token: string | number }) => progress.create(params));
    connection.onNotification('window/showMessage', (params: { type: number; message: string }) => messages.show(params));
    connection.onNotification('window/logMessage', () => undefined);
    connection.onRequest('client/registerCapability', () => null);
    connection.onRequest('workspace/applyEdit', (params: any) => {
      applied.push(params); // VS Code applies it as one undoable edit
      return { applied: true };
    });
    connection.listen();

    const restartable = { connection: conn, restart: async () => assert.fail('no restart expected') };
    sync = new SettingsSync(() => config, contributedSettings(packageJson), restartable, status, log);
    initializeResult = await connection.sendRequest('initialize', {
      processId: process.pid,
      clientInfo: { name: 'Visual Studio Code', version: '1.91.0' },
      rootUri: pathToFileURL(workspace).toString(),
      workspaceFolders: [{ uri: pathToFileURL(workspace).toString(), name: 'ws' }],
      capabilities,
      initializationOptions: sync.initializationOptions(),
    });
    await connection.sendNotification('initialized', {});
    void model.started(conn);
  }, { timeout: 120_000 });

  after(async () => {
    if (connection) {
      const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
      await connection.sendRequest('shutdown');
      await connection.sendNotification('exit');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), 20_000)))]);
      clearTimeout(timer);
      connection.dispose();
      assert.equal(code, 0, `gemma-lsp exits cleanly after shutdown and exit (stderr: ${stderr.slice(-2000)})`);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }, { timeout: 60_000 });

  it('initializes with the capabilities VS Code sends and the settings the user set', { timeout: 90_000 }, () => {
    assert.ok(capabilities.textDocument.inlineCompletion, 'vscode-languageclient 11 asks for inline completions');
    assert.equal(capabilities.window.workDoneProgress, true);
    assert.equal(capabilities.workspace.applyEdit, true);
    assert.ok(capabilities.textDocument.codeAction.codeActionLiteralSupport);
    assert.equal(capabilities.textDocument.codeAction.resolveSupport, undefined, 'edits come as workspace/applyEdit');
    const caps = initializeResult.capabilities;
    assert.ok(caps.inlineCompletionProvider && caps.codeActionProvider);
    assert.ok(caps.executeCommandProvider.commands.includes('gemma.completion.accepted'));
    assert.deepEqual(Object.keys(sync.initializationOptions().gemma).sort(), ['chat', 'completion', 'index', 'memory', 'model']);
  });

  it('shows the model load in the status bar, then ready with the model', { timeout: 90_000 }, async () => {
    await until('the model to be ready', () => view.last.text === '$(sparkle) Gemma');
    assert.match(view.last.tooltip, /Ready: tiny\.gguf \(gemma3/);
    assert.ok(view.shown.some((s) => s.text.startsWith('$(loading~spin) Gemma')), 'loading was shown');
    assert.match(log.lines.join('\n'), /progress: Loading tiny\.gguf/);
  });

  it('answers an inline completion through the middleware, and its accepted command is remembered', { timeout: 90_000 }, async () => {
    await connection.sendNotification('textDocument/didOpen', { textDocument: { uri: greet, languageId: 'python', version: 1, text: COMPLETION_TEXT } });
    const inline = new InlineCompletions(() => sync.paused(), status);
    const result: any = await inline.provide(NO_CANCEL, () =>
      request(conn, 'textDocument/inlineCompletion', { textDocument: { uri: greet }, position: CURSOR, context: { triggerKind: 2 } }),
    );
    assert.equal(result.items.length, 1);
    const [item] = result.items;
    assert.ok(item.insertText.trim(), 'a suggestion');
    assert.deepEqual(item.range, { start: CURSOR, end: CURSOR });
    assert.match(view.last.text, /^\$\(sparkle\) Gemma \d+ ms$/);
    // VS Code runs the item's command when the user accepts it.
    assert.equal(item.command.command, 'gemma.completion.accepted');
    await executeCommand(conn, item.command.command, item.command.arguments[0]);
    const stats: any = await executeCommand(conn, 'gemma.memory.stats');
    assert.equal(stats.by_kind.accepted_completion, 1);

    config.user['inlineCompletion.paused'] = true;
    await sync.changed();
    let asked = false;
    assert.equal(await inline.provide(NO_CANCEL, () => (asked = true)), null);
    assert.equal(asked, false);
    config.user['inlineCompletion.paused'] = false;
    await sync.changed();
  });

  it('lists the code actions with commands and applies "Write tests" through workspace/applyEdit', { timeout: 90_000 }, async () => {
    await connection.sendNotification('textDocument/didOpen', { textDocument: { uri: geometry, languageId: 'python', version, text: CODE } });
    const actions: any[] = await connection.sendRequest('textDocument/codeAction', {
      textDocument: { uri: geometry },
      range: SELECTION,
      context: { diagnostics: [], triggerKind: 1 },
    });
    assert.deepEqual(actions.map((a) => a.title), ['Ask Gemma about this…', 'Explain with Gemma', 'Fix with Gemma', 'Add documentation with Gemma', 'Write tests with Gemma']);
    assert.ok(actions.every((a) => a.command?.command === 'gemma.action.run' && a.data === undefined));
    const tests = actions[4];
    const result = await executeCommand(conn, tests.command.command, tests.command.arguments[0]);
    assert.deepEqual(result, { applied: true, edits: 1 });
    assert.equal(applied.length, 1);
    const [change] = applied[0].edit.documentChanges;
    assert.deepEqual(change.textDocument, { uri: geometry, version });
    assert.deepEqual(change.edits[0].range, { start: { line: 5, character: 0 }, end: { line: 5, character: 0 } });
    assert.ok(change.edits[0].newText.trim());
    assert.equal(applied[0].label, 'Write tests with Gemma');
    assert.ok(api.progress.some((p) => p.options.title === 'Write tests with Gemma' && p.options.location === 'notification' && p.done));
  });

  it('streams a chat turn about the selection into the response, piece by piece', { timeout: 90_000 }, async () => {
    const chat = new ChatParticipant(() => conn, () => ({ uri: geometry, range: SELECTION, text: 'def circle_area(radius):\n    return math.pi * radius * 2\n', languageId: 'python' }), log);
    const stream = new RecordingStream();
    const result = await chat.handle({ prompt: '', command: 'explain' }, { history: [] }, stream, NO_CANCEL);
    assert.equal(result.errorDetails, undefined);
    const session = result.metadata!.session!;
    const history: any = await request(conn, 'gemma/chat/history', { session });
    const answer = history.turns[1];
    assert.equal(history.turns[0].text, 'Explain this code.');
    const limitNote = '\n\n*(The answer reached its length limit, `gemma.chat.max_tokens`.)*';
    const streamed = stream.pieces.filter((p) => p !== limitNote);
    assert.ok(streamed.length >= 2, `the answer came in pieces (${streamed.length})`);
    assert.equal(streamed.join(''), answer.text);
    assert.equal(answer.cut, false);
  });

  it('cancels a chat turn from the chat view: the server stops and keeps the partial answer as cut', { timeout: 90_000 }, async () => {
    config.user['chat.max_tokens'] = 2000; // sent as workspace/didChangeConfiguration
    await sync.changed();
    const chat = new ChatParticipant(() => conn, () => undefined, log);
    const cancel = new CancellationSource();
    const stream = new RecordingStream();
    stream.onPiece = () => {
      if (stream.pieces.length === 2) {
        cancel.cancel();
      }
    };
    const started = Date.now();
    const result = await chat.handle({ prompt: 'Tell me a long story about circles.' }, { history: [] }, stream, cancel.token);
    assert.equal(result.metadata?.cancelled, true);
    assert.equal(result.errorDetails, undefined);
    assert.ok(Date.now() - started < 30_000);
    const sessions: any[] = await request(conn, 'gemma/chat/sessions');
    const mine = sessions.find((s) => s.session === result.metadata!.session);
    assert.ok(mine, 'the cancelled session is listed');
    const history: any = await request(conn, 'gemma/chat/history', { session: mine.session });
    const answer = history.turns[1];
    assert.equal(answer.cut, true);
    assert.ok(answer.text.startsWith(stream.pieces.join('')) || stream.pieces.join('').startsWith(answer.text));
    const stats: any = await request(conn, 'gemma/stats');
    assert.ok(stats.cancelled >= 1);
  });

  it('remembers the selection and finds it again through the memory commands', { timeout: 90_000 }, async () => {
    api.selection = { uri: geometry, range: SELECTION, text: 'def circle_area(radius):\n    return math.pi * radius * 2\n', languageId: 'python' };
    const memory = new MemoryCommands(api, () => conn);
    const id = await memory.rememberSelection();
    assert.ok(id);
    api.inputAnswers.push('circle_area radius');
    api.pickAnswers.push((items) => items.find((i) => (i as any).hit.id === id));
    const picked = await memory.searchMemories();
    assert.equal(picked?.id, id);
    assert.deepEqual(api.opened.at(-1), { uri: geometry, range: SELECTION });
  });
});
