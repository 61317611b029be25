import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';

import { findServer, type DiscoveryInput } from '../../src/discovery';

const made: string[] = [];
after(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gemma-discovery-'));
  made.push(dir);
  return dir;
}

function executable(file: string, mode = 0o755): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '#!/bin/sh\n');
  fs.chmodSync(file, mode);
  return file;
}

function input(over: Partial<DiscoveryInput>): DiscoveryInput {
  return { workspaceFolders: [], env: { PATH: '' }, platform: 'linux', homedir: '/nonexistent-home', ...over };
}

test('the setting wins over the workspace .venv and PATH', () => {
  const dir = tempDir();
  const configured = executable(path.join(dir, 'custom', 'gemma-lsp'));
  executable(path.join(dir, 'ws', '.venv', 'bin', 'gemma-lsp'));
  const found = findServer(input({ configuredPath: configured, workspaceFolders: [path.join(dir, 'ws')] }));
  assert.deepEqual(found, { found: true, command: configured, source: 'setting' });
});

test('a setting that points nowhere is named, not silently replaced by another server', () => {
  const dir = tempDir();
  executable(path.join(dir, 'bin', 'gemma-lsp'));
  const missing = path.join(dir, 'nope', 'gemma-lsp');
  const found = findServer(input({ configuredPath: missing, env: { PATH: path.join(dir, 'bin') } }));
  assert.equal(found.found, false);
  assert.ok(!found.found && found.setting && found.message === `gemma.server.path is ${missing}, which does not exist.`);
  const plain = executable(path.join(dir, 'plain'), 0o644);
  const notExecutable = findServer(input({ configuredPath: plain }));
  assert.ok(!notExecutable.found && notExecutable.message.endsWith('which is not an executable file.'));
});

test('~/ in the setting is the home folder', () => {
  const home = tempDir();
  const file = executable(path.join(home, 'bin', 'gemma-lsp'));
  assert.deepEqual(findServer(input({ configuredPath: '~/bin/gemma-lsp', homedir: home })), { found: true, command: file, source: 'setting' });
});

test('without the setting, a workspace folder .venv comes before PATH', () => {
  const dir = tempDir();
  const venv = executable(path.join(dir, 'ws2', '.venv', 'bin', 'gemma-lsp'));
  executable(path.join(dir, 'bin', 'gemma-lsp'));
  const found = findServer(input({ workspaceFolders: [path.join(dir, 'ws1'), path.join(dir, 'ws2')], env: { PATH: path.join(dir, 'bin') } }));
  assert.deepEqual(found, { found: true, command: venv, source: 'workspace venv' });
});

test('PATH is searched in order, skipping files that are not executable', () => {
  const dir = tempDir();
  executable(path.join(dir, 'a', 'gemma-lsp'), 0o644);
  const second = executable(path.join(dir, 'b', 'gemma-lsp'));
  const found = findServer(input({ env: { PATH: [path.join(dir, 'a'), path.join(dir, 'b')].join(path.delimiter) } }));
  assert.deepEqual(found, { found: true, command: second, source: 'PATH' });
});

test('on Windows the .venv Scripts folder and PATHEXT names are looked at', () => {
  const dir = tempDir();
  const exe = executable(path.join(dir, 'ws', '.venv', 'Scripts', 'gemma-lsp.exe'), 0o644);
  const found = findServer(input({ platform: 'win32', workspaceFolders: [path.join(dir, 'ws')], env: { PATH: '', PATHEXT: '.COM;.EXE' } }));
  assert.deepEqual(found, { found: true, command: exe, source: 'workspace venv' });
});

test('nothing found: one sentence that says where it looked and what to do', () => {
  const dir = tempDir();
  const found = findServer(input({ workspaceFolders: [dir], env: { PATH: dir } }));
  assert.ok(!found.found && !found.setting);
  assert.match(found.message, /neither in a workspace folder's \.venv nor on PATH/);
  assert.match(found.message, /set gemma\.server\.path/);
  const noFolder = findServer(input({ env: { PATH: dir } }));
  assert.ok(!noFolder.found && noFolder.message.startsWith('gemma-lsp is not on PATH.'));
});
