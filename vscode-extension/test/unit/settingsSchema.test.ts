/**
 * package.json's settings are generated from `gemma-lsp schema` (scripts/settings.js): the
 * generator's rules, and package.json in sync with the server it sits next to.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { CHAT_COMMANDS, PARTICIPANT_ID } from '../../src/chat';
import { CLIENT, contributedSettings, isServerKey } from '../../src/settings';
import { EXTENSION, REPOSITORY, gemmaLspJson } from '../support/gemmaLsp';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const generator = require(path.join(EXTENSION, 'scripts', 'settings.js')) as {
  configurationFromSchema(schema: unknown): { id: string; title: string; properties: Record<string, Record<string, unknown>> }[];
  documented(doc: string, configuration: unknown): string;
  DOC: string;
};
const packageJson = JSON.parse(fs.readFileSync(path.join(EXTENSION, 'package.json'), 'utf8'));

const SCHEMA = {
  properties: {
    model: { discriminator: { propertyName: 'backend', mapping: {} }, oneOf: [{ $ref: '#/$defs/Model' }] },
    memory: { $ref: '#/$defs/Memory' },
  },
  $defs: {
    Model: {
      type: 'object',
      properties: {
        backend: { const: 'llama.cpp', default: 'llama.cpp', type: 'string' },
        path: { anyOf: [{ type: 'string', format: 'path' }, { type: 'null' }], default: null, description: 'A GGUF file.' },
        n_threads: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'null' }], default: null, title: 'N Threads' },
        rope_scaling: { anyOf: [{ enum: ['none', 'yarn'], type: 'string' }, { type: 'null' }], default: null },
      },
    },
    Memory: {
      type: 'object',
      properties: {
        ttl: { $ref: '#/$defs/TTL' },
        sqlite_path: { type: 'string', format: 'path', title: 'Sqlite Path' },
        presets: {
          type: 'object',
          default: { greedy: [{ type: 'greedy' }] },
          additionalProperties: { type: 'array', items: { discriminator: { propertyName: 'type', mapping: { top_k: '', greedy: '' } }, oneOf: [] } },
        },
      },
    },
    TTL: {
      type: 'object',
      description: 'Seconds a memory of each tier lives; ``None`` = never expires.\n\nMore words.',
      properties: { working: { anyOf: [{ type: 'number', exclusiveMinimum: 0 }, { type: 'null' }], default: 28800, title: 'Working' } },
    },
  },
};

test('the generator flattens sections and maps types, bounds, none and defaults', () => {
  const sections = generator.configurationFromSchema(SCHEMA);
  assert.deepEqual(sections.map((s) => s.title), ['Gemma: editor', 'Gemma: model', 'Gemma: memory']);
  const model = sections[1].properties;
  assert.deepEqual(Object.keys(model), ['gemma.model.backend', 'gemma.model.path', 'gemma.model.n_threads', 'gemma.model.rope_scaling']);
  assert.deepEqual(model['gemma.model.backend'].enum, ['llama.cpp']);
  assert.equal(model['gemma.model.path'].type, 'string');
  assert.equal(model['gemma.model.path'].default, '');
  assert.match(model['gemma.model.path'].markdownDescription as string, /^A GGUF file\. Empty: none \(null\)\.\n\n`\[model\] path` in gemma-lsp's `config\.toml`\.$/);
  assert.deepEqual(model['gemma.model.n_threads'].type, ['integer', 'null']);
  assert.equal(model['gemma.model.n_threads'].minimum, 1);
  assert.equal(model['gemma.model.n_threads'].default, null);
  assert.deepEqual(model['gemma.model.rope_scaling'].enum, ['', 'none', 'yarn']);
  const memory = sections[2].properties;
  assert.deepEqual(Object.keys(memory), ['gemma.memory.ttl.working', 'gemma.memory.sqlite_path', 'gemma.memory.presets']);
  assert.deepEqual(memory['gemma.memory.ttl.working'].type, ['number', 'null']);
  assert.equal(memory['gemma.memory.ttl.working'].default, 28800);
  assert.equal(memory['gemma.memory.ttl.working'].exclusiveMinimum, 0);
  assert.match(memory['gemma.memory.ttl.working'].markdownDescription as string, /^Working\. Seconds a memory of each tier lives; `None` = never expires\.\n\n`\[memory\.ttl\] working`/);
  assert.ok(!('default' in memory['gemma.memory.sqlite_path']));
  assert.deepEqual(memory['gemma.memory.presets'].additionalProperties, {
    type: 'array',
    items: { type: 'object', required: ['type'], properties: { type: { enum: ['greedy', 'top_k'] } } },
  });
});

test("package.json's settings and docs/vscode.md's tables are what `gemma-lsp schema` generates (else: make vscode-settings)", () => {
  const generated = generator.configurationFromSchema(gemmaLspJson('schema'));
  assert.deepEqual(packageJson.contributes.configuration, generated, 'package.json is out of date: run `make vscode-settings`');
  const doc = fs.readFileSync(generator.DOC, 'utf8');
  assert.equal(generator.documented(doc, generated), doc, 'docs/vscode.md is out of date: run `make vscode-settings`');
  for (const section of generated) {
    for (const key of Object.keys(section.properties)) {
      assert.ok(doc.includes(`| \`${key}\` |`), `${key} is in docs/vscode.md`);
    }
  }
});

test("the README's table names every editor setting", () => {
  const readme = fs.readFileSync(path.join(REPOSITORY, 'README.md'), 'utf8');
  for (const key of Object.values(CLIENT)) {
    assert.ok(readme.includes(`| \`gemma.${key}\` |`), `gemma.${key} is in the README`);
  }
});

test('the server sections and the editor settings do not overlap, and every editor setting is contributed', () => {
  const schema = gemmaLspJson('schema') as { properties: Record<string, unknown> };
  const contributed = contributedSettings(packageJson).map((s) => s.key);
  for (const key of Object.values(CLIENT)) {
    assert.ok(contributed.includes(key), `${key} is not in package.json`);
    assert.ok(!isServerKey(key), key);
    assert.ok(!(key.split('.')[0] in schema.properties), `${key} collides with the server's section`);
  }
  const serverKeys = contributed.filter(isServerKey);
  assert.ok(serverKeys.length > 60);
  assert.ok(serverKeys.every((key) => key.split('.')[0] in schema.properties), 'a server key outside the server sections');
});

test('the chat participant and its commands in package.json are the ones the code handles', () => {
  const [participant] = packageJson.contributes.chatParticipants;
  assert.equal(participant.id, PARTICIPANT_ID);
  assert.deepEqual(participant.commands.map((c: { name: string }) => c.name), Object.keys(CHAT_COMMANDS));
  const commands = packageJson.contributes.commands.map((c: { command: string }) => c.command);
  assert.ok(commands.every((c: string) => c.startsWith('gemma-lsp.')), "the extension's commands stay clear of the server's gemma.* commands");
});
