import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_DELAY_MS, RestartPolicy } from '../../src/restartPolicy';

const MINUTE = 60_000;

test('each restart waits twice as long as the one before, up to the cap', () => {
  const policy = new RestartPolicy(() => 10, () => 60 * MINUTE);
  const delays = Array.from({ length: 7 }, (_, i) => policy.onCrash(i * 1000)).map((d) => (d.restart ? d.delayMs : -1));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, MAX_DELAY_MS, MAX_DELAY_MS]);
});

test('more crashes than allowed within the window stop the restarts, with the reason', () => {
  const policy = new RestartPolicy(() => 3, () => 3 * MINUTE);
  for (let i = 0; i < 3; i++) {
    assert.equal(policy.onCrash(i * 10_000).restart, true);
  }
  const last = policy.onCrash(40_000);
  assert.equal(last.restart, false);
  assert.ok(!last.restart && last.reason === 'the server stopped 4 times within 3 minutes (gemma.server.maxRestarts is 3), so it is not started again');
});

test('crashes older than the window are forgotten', () => {
  const policy = new RestartPolicy(() => 2, () => MINUTE);
  policy.onCrash(0);
  policy.onCrash(10_000);
  const later = policy.onCrash(MINUTE + 5000); // the crash at 0 is out of the window, the one at 10 s is not
  assert.ok(later.restart && later.attempt === 2 && later.delayMs === 2000);
});

test('a restart the user asks for starts a new count; 0 restarts means never', () => {
  const policy = new RestartPolicy(() => 1, () => MINUTE);
  policy.onCrash(0);
  assert.equal(policy.onCrash(1).restart, false);
  policy.reset();
  assert.equal(policy.onCrash(2).restart, true);
  assert.equal(new RestartPolicy(() => 0, () => MINUTE).onCrash(0).restart, false);
});
