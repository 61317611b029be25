import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ModelState, modelLabel } from '../../src/modelState';
import { ServerProgress } from '../../src/serverProgress';
import { Status } from '../../src/status';
import { FakeApi, FakeLog, FakeServer, FakeStatusView, ManualTimers, settle } from '../support/fakes';

function harness() {
  const server = new FakeServer();
  let stats: unknown = { loaded: false, load_error: null, model: null };
  server.handlers['gemma/stats'] = () => stats;
  const view = new FakeStatusView();
  const status = new Status(view);
  const timers = new ManualTimers();
  const model = new ModelState(status, timers, 250);
  const api = new FakeApi();
  const progress = new ServerProgress(server, api, model, new FakeLog());
  return { server, view, status, timers, model, api, progress, setStats: (s: unknown) => (stats = s) };
}

test('the model load goes to the status bar with its percentage, then gemma/stats says ready', async () => {
  const h = harness();
  await h.model.started(h.server);
  h.progress.create({ token: 'gemma-lsp/load/1' });
  h.server.progress('gemma-lsp/load/1', { kind: 'begin', title: 'Loading tiny.gguf', percentage: 0 });
  h.server.progress('gemma-lsp/load/1', { kind: 'report', percentage: 60, message: 'tensors' });
  assert.equal(h.view.last.text, '$(loading~spin) Gemma 60%');
  assert.match(h.view.last.tooltip, /^Loading tiny\.gguf \(tensors\)…/);
  h.setStats({ loaded: true, load_error: null, model: { path: '/models/tiny.gguf', architecture: 'gemma3', n_params: 1_200_000 } });
  h.server.progress('gemma-lsp/load/1', { kind: 'end', message: 'gemma3, 1.2M parameters' });
  await settle();
  assert.equal(h.view.last.text, '$(sparkle) Gemma');
  assert.match(h.view.last.tooltip, /Ready: tiny\.gguf \(gemma3, 1\.2M parameters\)/);
  assert.equal(h.api.progress.length, 0); // the load is shown in the status bar only
  assert.equal(h.server.progressHandlers.size, 0);
});

test('a load that fails shows the server\'s message as an error', async () => {
  const h = harness();
  await h.model.started(h.server);
  h.progress.create({ token: 7 });
  h.server.progress(7, { kind: 'begin', title: 'Loading missing.gguf' });
  h.setStats({ loaded: false, load_error: 'Model file /m/missing.gguf does not exist.', model: null });
  h.server.progress(7, { kind: 'end', message: 'failed' });
  await settle();
  assert.equal(h.view.last.text, '$(error) Gemma');
  assert.match(h.view.last.tooltip, /Model file \/m\/missing\.gguf does not exist\./);
});

test('without progress, gemma/stats is asked again until the model is loaded', async () => {
  const h = harness();
  await h.model.started(h.server);
  assert.equal(h.view.last.text, '$(loading~spin) Gemma');
  assert.deepEqual(h.timers.waiting, [250]);
  h.timers.fire();
  await settle();
  assert.deepEqual(h.timers.waiting, [250]);
  h.setStats({ loaded: true, load_error: null, model: { path: 'C:\\models\\g.gguf', architecture: 'gemma2' } });
  h.timers.fire();
  await settle();
  assert.deepEqual(h.timers.waiting, []);
  assert.match(h.view.last.tooltip, /Ready: g\.gguf \(gemma2\)/);
  assert.equal(h.server.sent('gemma/stats').length, 3);
  h.model.stopped();
  assert.equal(modelLabel({ loaded: false, load_error: null, model: null }), undefined);
});

test('other progress is shown by VS Code, cancellable ones as a notification whose cancel reaches the server', async () => {
  const h = harness();
  h.progress.create({ token: 'act' });
  h.server.progress('act', { kind: 'begin', title: 'Write tests with Gemma', cancellable: true, percentage: 0 });
  await settle();
  const shown = h.api.progress[0];
  assert.deepEqual(shown.options, { title: 'Write tests with Gemma', cancellable: true, location: 'notification' });
  h.server.progress('act', { kind: 'report', percentage: 30, message: '3 pieces' });
  h.server.progress('act', { kind: 'report', percentage: 50 });
  assert.deepEqual(shown.reports, [{ message: '3 pieces', increment: 30 }, { message: undefined, increment: 20 }]);
  shown.cancel.cancel();
  assert.deepEqual(h.server.notifications, [{ method: 'window/workDoneProgress/cancel', params: { token: 'act' } }]);
  h.server.progress('act', { kind: 'end', message: 'cancelled' });
  await settle();
  assert.equal(shown.done, true);

  h.progress.create({ token: 'idx' });
  h.server.progress('idx', { kind: 'begin', title: 'Indexing the workspace' });
  await settle();
  assert.equal(h.api.progress[1].options.location, 'window');
});
