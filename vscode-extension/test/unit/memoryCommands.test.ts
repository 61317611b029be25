import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MemoryCommands, hitItem } from '../../src/memoryCommands';
import type { MemoryHit } from '../../src/protocol';
import { FakeApi, FakeServer, selection } from '../support/fakes';

const HITS: MemoryHit[] = [
  { id: 'm1', text: 'def area(r):\n    return r * r', score: 0.91, tier: 'semantic', kind: 'code_chunk', tags: [], source: { uri: 'file:///ws/geo%20metry.py', range: { start: { line: 9, character: 0 }, end: { line: 11, character: 0 } } } },
  { id: 'm2', text: 'Prices are stored in cents.', score: 0.5, tier: 'long_term', kind: 'note', tags: ['billing'], source: null },
];

function harness() {
  const api = new FakeApi();
  const server = new FakeServer();
  server.commandHandlers['gemma.memory.remember'] = () => ({ id: 'new1', tier: 'long_term', kind: 'note' });
  server.commandHandlers['gemma.memory.search'] = () => HITS;
  server.commandHandlers['gemma.memory.forget'] = (arg) => ({ forgotten: (arg as { ids: string[] }).ids.length });
  server.commandHandlers['gemma.index.rebuild'] = () => ({ files: 12, chunks_written: 30, secrets_skipped: 2 });
  return { api, server, memory: new MemoryCommands(api, () => server) };
}

test('remember the selection sends its document and range', async () => {
  const h = harness();
  h.api.selection = selection();
  assert.equal(await h.memory.rememberSelection(), 'new1');
  assert.deepEqual(h.server.sent('workspace/executeCommand'), [
    { command: 'gemma.memory.remember', arguments: [{ uri: h.api.selection.uri, range: h.api.selection.range }] },
  ]);
  assert.match(h.api.messages[0].message, /memory new1/);
  h.api.selection = { ...selection(), text: '   ' };
  assert.equal(await h.memory.rememberSelection(), undefined);
  assert.equal(h.api.messages[1].kind, 'warning');
});

test('search shows the hits; picking one opens the code it came from', async () => {
  const h = harness();
  h.api.inputAnswers.push('area of a circle');
  let shown: string[] = [];
  h.api.pickAnswers.push((items) => {
    shown = items.map((i) => `${i.label} | ${i.description} | ${i.detail ?? ''}`);
    return items[0];
  });
  const picked = await h.memory.searchMemories();
  assert.equal(picked?.id, 'm1');
  assert.deepEqual(shown, ['def area(r): | code_chunk · semantic · 0.910 | /ws/geo metry.py:10', 'Prices are stored in cents. | note · long_term · 0.500 | ']);
  assert.deepEqual(h.server.sent('workspace/executeCommand')[0], { command: 'gemma.memory.search', arguments: [{ query: 'area of a circle', k: 20 }] });
  assert.deepEqual(h.api.opened, [{ uri: 'file:///ws/geo%20metry.py', range: HITS[0].source!.range }]);
});

test('a memory without a source is shown as text; an empty query asks nothing', async () => {
  const h = harness();
  h.api.inputAnswers.push('prices');
  h.api.pickAnswers.push((items) => items[1]);
  await h.memory.searchMemories();
  assert.equal(h.api.messages.at(-1)!.message, 'Prices are stored in cents.');
  h.api.inputAnswers.push('');
  assert.equal(await h.memory.searchMemories(), undefined);
  assert.equal(h.server.sent('workspace/executeCommand').length, 1);
});

test('forget deletes the picked memories by id; rebuild reports what was indexed', async () => {
  const h = harness();
  h.api.inputAnswers.push('anything');
  h.api.pickAnswers.push((items) => items);
  assert.equal(await h.memory.forgetMemories(), 2);
  assert.deepEqual(h.server.sent('workspace/executeCommand')[1], { command: 'gemma.memory.forget', arguments: [{ ids: ['m1', 'm2'] }] });
  assert.deepEqual(await h.memory.rebuildIndex(), { files: 12, chunks_written: 30, secrets_skipped: 2 });
  assert.deepEqual(h.server.sent('workspace/executeCommand')[2], { command: 'gemma.index.rebuild', arguments: [] });
  assert.equal(h.api.messages.at(-1)!.message, 'Indexed 12 files: 30 chunks written; 2 secret files left out.');
});

test('long first lines are cut for the list', () => {
  const item = hitItem({ ...HITS[1], text: 'x'.repeat(150) });
  assert.equal(item.label.length, 100);
  assert.ok(item.label.endsWith('…'));
});
