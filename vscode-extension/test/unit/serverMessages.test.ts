import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ServerMessages } from '../../src/serverMessages';
import { Status } from '../../src/status';
import { FakeApi, FakeLog, FakeStatusView } from '../support/fakes';

test('server messages are shown and logged; degraded memories show in the status bar until they are back', () => {
  const api = new FakeApi();
  const view = new FakeStatusView();
  const log = new FakeLog();
  const messages = new ServerMessages(api, new Status(view), log);
  messages.show({ type: 2, message: 'gemma-lsp: Memories are degraded: Redis at localhost:6390 refused the connection. Completions go on.' });
  assert.equal(view.last.background, 'warning');
  assert.match(view.last.tooltip, /Memories degraded: Redis at localhost:6390 refused the connection/);
  messages.show({ type: 3, message: 'gemma-lsp: Memories are back.' });
  assert.equal(view.last.background, undefined);
  messages.show({ type: 1, message: 'gemma-lsp: Invalid setting chat.max_tokens: bad.' });
  assert.deepEqual(api.messages.map((m) => m.kind), ['warning', 'info', 'error']);
  assert.deepEqual(log.lines.map((l) => l.split(':')[0]), ['warn', 'info', 'error']);
});
