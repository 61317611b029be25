import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Status, render } from '../../src/status';
import { FakeStatusView } from '../support/fakes';

test('each state has its icon, text and colour', () => {
  assert.deepEqual(render({ state: { kind: 'starting' }, paused: false }).text, '$(loading~spin) Gemma');
  const loading = render({ state: { kind: 'loading', title: 'Loading tiny.gguf', percentage: 40, message: 'warming up' }, paused: false });
  assert.equal(loading.text, '$(loading~spin) Gemma 40%');
  assert.match(loading.tooltip, /^Loading tiny\.gguf \(warming up\)…/);
  const error = render({ state: { kind: 'error', message: 'Model file /m.gguf does not exist.' }, paused: false });
  assert.equal(error.text, '$(error) Gemma');
  assert.equal(error.background, 'error');
  assert.match(error.tooltip, /Model file \/m\.gguf does not exist\./);
  const stopped = render({ state: { kind: 'stopped', reason: 'it crashed 6 times' }, paused: false });
  assert.equal(stopped.background, 'error');
  assert.match(stopped.tooltip, /not running: it crashed 6 times/);
  assert.equal(render({ state: { kind: 'stopped' }, paused: false }).background, undefined);
});

test('ready shows the last completion latency; paused and degraded memories show over any state', () => {
  const ready = render({ state: { kind: 'ready', model: 'tiny.gguf (gemma3)' }, paused: false, latencyMs: 123 });
  assert.equal(ready.text, '$(sparkle) Gemma 123 ms');
  assert.match(ready.tooltip, /Ready: tiny\.gguf \(gemma3\)\.\nLast inline completion: 123 ms\./);
  const paused = render({ state: { kind: 'ready' }, paused: true, latencyMs: 123 });
  assert.equal(paused.text, '$(debug-pause) Gemma paused');
  const degraded = render({ state: { kind: 'ready' }, paused: false, memoryDegraded: 'Redis is unreachable' });
  assert.equal(degraded.text, '$(sparkle) Gemma $(warning)');
  assert.equal(degraded.background, 'warning');
  assert.match(degraded.tooltip, /Memories degraded: Redis is unreachable/);
  assert.equal(render({ state: { kind: 'error', message: 'x' }, paused: false, memoryDegraded: 'y' }).background, 'error');
});

test('the view shows every change', () => {
  const view = new FakeStatusView();
  const status = new Status(view);
  status.setState({ kind: 'ready' });
  status.completionLatency(41.6);
  status.setPaused(true);
  status.setPaused(false);
  status.setMemoryDegraded('down');
  status.setMemoryDegraded(undefined);
  assert.deepEqual(
    view.shown.map((s) => s.text),
    ['$(circle-slash) Gemma', '$(sparkle) Gemma', '$(sparkle) Gemma 42 ms', '$(debug-pause) Gemma paused', '$(sparkle) Gemma 42 ms', '$(sparkle) Gemma 42 ms $(warning)', '$(sparkle) Gemma 42 ms'],
  );
});
