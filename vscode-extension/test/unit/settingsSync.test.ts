import assert from 'node:assert/strict';
import { test } from 'node:test';

import { contributedSettings } from '../../src/settings';
import { DID_CHANGE_CONFIGURATION, SettingsSync, type Restartable } from '../../src/settingsSync';
import { Status } from '../../src/status';
import { FakeConfig, FakeLog, FakeServer, FakeStatusView } from '../support/fakes';

const contributed = contributedSettings({
  contributes: {
    configuration: {
      properties: {
        'gemma.server.path': { default: '' },
        'gemma.inlineCompletion.paused': { default: false },
        'gemma.chat.max_tokens': { default: 512 },
        'gemma.model.path': { default: '' },
      },
    },
  },
});

function harness(user: Record<string, unknown> = {}) {
  const config = new FakeConfig(user);
  const connection = new FakeServer();
  const restarts: string[] = [];
  const server: Restartable = {
    connection,
    restart: async (reason) => {
      restarts.push(reason);
    },
  };
  const view = new FakeStatusView();
  const sync = new SettingsSync(() => config, contributed, server, new Status(view), new FakeLog());
  return { config, connection, restarts, view, sync };
}

test('initialize carries only what the user set, in the gemma section', () => {
  const h = harness({ 'model.path': '/m/tiny.gguf', 'server.path': '/bin/gemma-lsp' });
  assert.deepEqual(h.sync.initializationOptions(), { gemma: { model: { path: '/m/tiny.gguf' } } });
});

test('a changed server setting is sent as didChangeConfiguration with every set value', async () => {
  const h = harness({ 'model.path': '/m/tiny.gguf' });
  h.config.user['chat.max_tokens'] = 64;
  await h.sync.changed();
  assert.deepEqual(h.connection.notifications, [
    { method: DID_CHANGE_CONFIGURATION, params: { settings: { gemma: { model: { path: '/m/tiny.gguf' }, chat: { max_tokens: 64 } } } } },
  ]);
  await h.sync.changed(); // nothing new
  assert.equal(h.connection.notifications.length, 1);
  assert.deepEqual(h.restarts, []);
});

test('a new server path restarts instead of sending', async () => {
  const h = harness();
  h.config.user['server.path'] = '/opt/gemma-lsp';
  h.config.user['chat.max_tokens'] = 64;
  await h.sync.changed();
  assert.deepEqual(h.restarts, ['gemma.server.path changed']);
  assert.deepEqual(h.connection.notifications, []);
});

test('pausing reaches the status bar and the server hears nothing of it', async () => {
  const h = harness();
  assert.equal(h.sync.paused(), false);
  h.config.user['inlineCompletion.paused'] = true;
  await h.sync.changed();
  assert.equal(h.sync.paused(), true);
  assert.equal(h.view.last.text, '$(debug-pause) Gemma paused');
  assert.deepEqual(h.connection.notifications, []);
});
