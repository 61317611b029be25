import assert from 'node:assert/strict';
import { test } from 'node:test';

import { InlineCompletions } from '../../src/inlineCompletions';
import { Status } from '../../src/status';
import { CancellationSource, FakeStatusView, NO_CANCEL } from '../support/fakes';

function harness(paused = false) {
  const view = new FakeStatusView();
  let clock = 1000;
  let isPaused = paused;
  const status = new Status(view);
  status.setState({ kind: 'ready' });
  const inline = new InlineCompletions(() => isPaused, status, () => clock);
  return { view, inline, tick: (ms: number) => (clock += ms), pause: (p: boolean) => (isPaused = p) };
}

test('an answer goes through and its latency reaches the status bar', async () => {
  const h = harness();
  const items = [{ insertText: 'return n' }];
  const result = await h.inline.provide(NO_CANCEL, async () => {
    h.tick(87);
    return items;
  });
  assert.equal(result, items);
  assert.match(h.view.last.tooltip, /Last inline completion: 87 ms/);
});

test('paused: the server is not asked', async () => {
  const h = harness(true);
  let asked = 0;
  assert.equal(await h.inline.provide(NO_CANCEL, () => ++asked), null);
  assert.equal(asked, 0);
  h.pause(false);
  await h.inline.provide(NO_CANCEL, () => ++asked);
  assert.equal(asked, 1);
});

test('a cancelled request leaves the latency alone; the completion list is never asked for', async () => {
  const h = harness();
  const cancel = new CancellationSource();
  await h.inline.provide(cancel.token, async () => {
    h.tick(500);
    cancel.cancel();
    return null;
  });
  assert.doesNotMatch(h.view.last.tooltip, /Last inline completion/);
  assert.equal(h.inline.completionList(), null);
});
