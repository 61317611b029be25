import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CLIENT, compare, contributedSettings, isServerKey, nest, serverPayload, snapshot, userServerSettings, userValue } from '../../src/settings';
import { FakeConfig } from '../support/fakes';

const PACKAGE = {
  contributes: {
    configuration: [
      { properties: { 'gemma.server.path': { default: '' }, 'gemma.server.args': { default: [] }, 'gemma.inlineCompletion.paused': { default: false } } },
      {
        properties: {
          'gemma.model.path': { default: '' },
          'gemma.model.n_threads': { default: null },
          'gemma.completion.max_tokens': { default: 64 },
          'gemma.memory.ttl.working': { default: 28800 },
          'gemma.memory.prefix': { default: 'gemma-lsp' },
          'gemma.sampling.presets': { default: { greedy: [{ type: 'greedy' }] } },
        },
      },
    ],
  },
};
const contributed = contributedSettings(PACKAGE);

test('every contributed gemma setting is read with its default, relative to gemma.', () => {
  assert.deepEqual(
    contributed.map((s) => s.key),
    ['server.path', 'server.args', 'inlineCompletion.paused', 'model.path', 'model.n_threads', 'completion.max_tokens', 'memory.ttl.working', 'memory.prefix', 'sampling.presets'],
  );
  assert.equal(contributed.find((s) => s.key === 'completion.max_tokens')?.default, 64);
});

test('only the settings the user set go to the server, never a default and never an editor setting', () => {
  const config = new FakeConfig({ 'completion.max_tokens': 32, 'server.path': '/bin/gemma-lsp', 'inlineCompletion.paused': true });
  assert.deepEqual(userServerSettings(config, contributed), { 'completion.max_tokens': 32 });
  assert.deepEqual(serverPayload(userServerSettings(config, contributed)), { gemma: { completion: { max_tokens: 32 } } });
  assert.ok(!isServerKey(CLIENT.serverArgs) && !isServerKey(CLIENT.paused) && !isServerKey(CLIENT.trace));
  assert.ok(isServerKey('model.path') && isServerKey('serverless.thing'));
});

test('an empty string stands for none only where the default is empty', () => {
  const config = new FakeConfig({ 'model.path': '', 'memory.prefix': '', 'model.n_threads': null });
  assert.deepEqual(userServerSettings(config, contributed), { 'model.path': null, 'memory.prefix': '', 'model.n_threads': null });
});

test('the most specific scope wins, and objects merge across scopes', () => {
  const config = new FakeConfig(
    { 'completion.max_tokens': 32, 'sampling.presets': { mine: [{ type: 'greedy' }] } },
    {},
    { 'completion.max_tokens': 16, 'sampling.presets': { team: [{ type: 'distribution' }] } },
  );
  assert.equal(userValue(config, 'completion.max_tokens'), 16);
  assert.deepEqual(Object.keys(userValue(config, 'sampling.presets') as object), ['mine', 'team']);
});

test('dotted keys nest as the server reads them', () => {
  assert.deepEqual(nest({ 'memory.ttl.working': 60, 'memory.prefix': 'p', 'model.path': '/m.gguf' }), {
    memory: { ttl: { working: 60 }, prefix: 'p' },
    model: { path: '/m.gguf' },
  });
});

test('a changed server setting is sent, a changed server path restarts, an editor setting does neither', () => {
  const config = new FakeConfig({ 'completion.max_tokens': 32 });
  const before = snapshot(config, contributed);
  config.user['completion.max_tokens'] = 16;
  assert.deepEqual(compare(before, snapshot(config, contributed)), { restartReasons: [], serverChanged: true });

  const again = snapshot(config, contributed);
  config.user['inlineCompletion.paused'] = true;
  assert.deepEqual(compare(again, snapshot(config, contributed)), { restartReasons: [], serverChanged: false });

  const third = snapshot(config, contributed);
  config.user['server.args'] = ['-v'];
  assert.deepEqual(compare(third, snapshot(config, contributed)).restartReasons, ['gemma.server.args changed']);
});

test('a removed server setting restarts the server, which would otherwise keep the old value', () => {
  const config = new FakeConfig({ 'model.path': '/m.gguf', 'completion.max_tokens': 32 });
  const before = snapshot(config, contributed);
  delete config.user['model.path'];
  const change = compare(before, snapshot(config, contributed));
  assert.equal(change.restartReasons.length, 1);
  assert.match(change.restartReasons[0], /gemma\.model\.path was removed/);
});
