import assert from 'node:assert/strict';
import { test } from 'node:test';

import { contributedSettings } from '../../src/settings';
import { StatusMenu, currentPreset, describeChain, presets } from '../../src/statusMenu';
import { FakeApi, FakeConfig } from '../support/fakes';

const contributed = contributedSettings({
  contributes: {
    configuration: {
      properties: {
        'gemma.sampling.presets': {
          default: {
            greedy: [{ type: 'greedy' }],
            completion: [{ type: 'top_k', k: 40 }, { type: 'min_p', p: 0.05, min_keep: 1 }, { type: 'distribution' }],
          },
        },
      },
    },
  },
});

function harness(user: Record<string, unknown> = {}) {
  const api = new FakeApi();
  const config = new FakeConfig(user, { 'sampling.features': { completion: 'completion', chat: 'chat' } });
  const ran: string[] = [];
  const menu = new StatusMenu(api, () => config, contributed, {
    rebuildIndex: () => ran.push('rebuild'),
    rememberSelection: () => ran.push('remember'),
    searchMemories: () => ran.push('search'),
    forgetMemories: () => ran.push('forget'),
    restart: () => ran.push('restart'),
    showLog: () => ran.push('log'),
  });
  return { api, config, ran, menu };
}

test('the presets are the built-in ones and the user\'s own; the current one comes from the settings', () => {
  const h = harness({ 'sampling.presets': { mine: [{ type: 'temperature', temperature: 0.3 }] } });
  assert.deepEqual(Object.keys(presets(h.config, contributed)), ['greedy', 'completion', 'mine']);
  assert.equal(currentPreset(h.config), 'completion');
  h.config.user['completion.preset'] = 'mine';
  assert.equal(currentPreset(h.config), 'mine');
  assert.equal(describeChain([{ type: 'top_k', k: 40 }, { type: 'min_p', p: 0.05, min_keep: 1 }, { type: 'distribution' }]), 'top_k 40 · min_p 0.05 · distribution');
});

test('picking a preset writes gemma.completion.preset', async () => {
  const h = harness();
  let listed: string[] = [];
  h.api.pickAnswers.push((items) => {
    listed = items.map((i) => `${i.label}${i.picked ? '*' : ''}`);
    return items.find((i) => i.label === 'greedy');
  });
  assert.equal(await h.menu.pickPreset(), 'greedy');
  assert.deepEqual(listed, ['greedy', 'completion*']);
  assert.deepEqual(h.config.updates, [['completion.preset', 'greedy']]);
});

test('the menu pauses and resumes completions and runs each action', async () => {
  const h = harness();
  h.api.pickAnswers.push((items) => items[0]);
  await h.menu.open();
  assert.deepEqual(h.config.updates, [['inlineCompletion.paused', true]]);
  assert.equal(h.menu.items()[0].label, '$(play) Resume inline completions');
  for (let i = 2; i < h.menu.items().length; i++) {
    h.api.pickAnswers.push((items) => items[i]);
    await h.menu.open();
  }
  assert.deepEqual(h.ran, ['rebuild', 'remember', 'search', 'forget', 'restart', 'log']);
});
