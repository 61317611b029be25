import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as protocol from '../../src/protocol';
import { CancellationSource, FakeServer } from '../support/fakes';
import { gemmaLspJson } from '../support/gemmaLsp';

test('every custom name the extension uses is one the server speaks (`gemma-lsp protocol`)', () => {
  const spoken = new Map((gemmaLspJson('protocol') as { name: string; kind: string }[]).map((m) => [m.name, m.kind]));
  const used = {
    request: [protocol.STATS, protocol.CHAT, protocol.CHAT_HISTORY],
    command: [protocol.ACTION_RUN, protocol.MEMORY_REMEMBER, protocol.MEMORY_SEARCH, protocol.MEMORY_FORGET, protocol.MEMORY_STATS, protocol.INDEX_REBUILD, protocol.COMPLETION_ACCEPTED],
  };
  for (const [kind, names] of Object.entries(used)) {
    for (const name of names) {
      assert.equal(spoken.get(name), kind, `${name} is not a ${kind} of the server`);
    }
  }
});

test('requests always carry parameters ({} for none) and a token only when there is one', async () => {
  const server = new FakeServer(); // it refuses an explicit undefined argument
  server.handlers.m = (params) => params;
  assert.deepEqual(await protocol.request(server, 'm'), {});
  assert.deepEqual(await protocol.request(server, 'm', { a: 1 }), { a: 1 });
  const cancel = new CancellationSource();
  await protocol.request(server, 'm', undefined, cancel.token);
  await protocol.request(server, 'm', { b: 2 }, cancel.token);
  assert.deepEqual(server.requests.map((r) => [r.params, r.token === cancel.token]), [[{}, false], [{ a: 1 }, false], [{}, true], [{ b: 2 }, true]]);
  server.commandHandlers.c = (arg) => arg;
  assert.deepEqual(await protocol.executeCommand(server, 'c', { x: 1 }), { x: 1 });
  assert.deepEqual(server.sent('workspace/executeCommand').at(-1), { command: 'c', arguments: [{ x: 1 }] });
  assert.equal(protocol.errorCode({ code: -32800 }), -32800);
  assert.equal(protocol.errorCode(new Error('x')), undefined);
});
