#!/usr/bin/env node
// @ts-check
/**
 * package.json `contributes.configuration` from the server's settings schema (`gemma-lsp schema`).
 *
 *   node scripts/settings.js --write   regenerate package.json (make vscode-settings)
 *   node scripts/settings.js --check   exit 1 when package.json is out of date
 *   --schema FILE                      read the schema from FILE instead of running gemma-lsp
 *
 * Every server setting becomes `gemma.<section>.<key>` (nested sections flattened:
 * `gemma.memory.ttl.working`) with its type, bounds, enum, default and description. A setting
 * that may be none (null) and is a string gets the default "" and "" is sent as null; other
 * nullable settings take null. The extension's own settings (`gemma.server.*`, ...) come first.
 */
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const PACKAGE_JSON = path.join(ROOT, 'package.json');

/** The extension's own settings (src/settings.ts `CLIENT` names them). */
const CLIENT_SECTION = {
  id: 'gemma-lsp.editor',
  title: 'Gemma: editor',
  order: 0,
  properties: {
    'gemma.server.path': {
      type: 'string',
      default: '',
      order: 0,
      scope: 'machine-overridable',
      markdownDescription:
        'The `gemma-lsp` executable. Empty: `.venv/bin/gemma-lsp` in a workspace folder, else `gemma-lsp` on `PATH`. Changing it starts the server again.',
    },
    'gemma.server.args': {
      type: 'array',
      items: { type: 'string' },
      default: [],
      order: 1,
      scope: 'machine-overridable',
      markdownDescription:
        'More arguments after `gemma-lsp serve`, e.g. `["-v"]` (a more detailed log) or `["--config", "/home/me/gemma.toml"]`. Changing them starts the server again.',
    },
    'gemma.server.maxRestarts': {
      type: 'integer',
      default: 5,
      minimum: 0,
      maximum: 100,
      order: 2,
      markdownDescription:
        'How many times a server that stopped on its own is started again within `#gemma.server.restartWindowMinutes#` minutes (after 1 s, 2 s, 4 s, ... up to 30 s). Past that it stays stopped and says why.',
    },
    'gemma.server.restartWindowMinutes': {
      type: 'number',
      default: 3,
      minimum: 0.1,
      maximum: 1440,
      order: 3,
      markdownDescription: 'The window, in minutes, in which `#gemma.server.maxRestarts#` restarts are allowed.',
    },
    'gemma.inlineCompletion.paused': {
      type: 'boolean',
      default: false,
      order: 4,
      markdownDescription:
        'Pause inline completions (ghost text): no request reaches the server while paused. The status bar menu and **Gemma: Pause or resume inline completions** switch it.',
    },
    'gemma.trace.server': {
      type: 'string',
      enum: ['off', 'messages', 'verbose'],
      default: 'off',
      order: 5,
      markdownDescription: 'Write the messages between VS Code and the server to the **Gemma** output channel.',
    },
  },
};

function resolve(schema, node) {
  if (node && node.$ref) {
    return resolve(schema, schema.$defs[node.$ref.split('/').pop()]);
  }
  if (node && Array.isArray(node.oneOf) && node.oneOf.length === 1) {
    return resolve(schema, node.oneOf[0]);
  }
  return node;
}

function isSection(node) {
  return node && node.type === 'object' && node.properties !== undefined;
}

/** [the schema without its null alternative, whether null is allowed]. */
function withoutNull(node) {
  if (Array.isArray(node.anyOf)) {
    const others = node.anyOf.filter((n) => n.type !== 'null');
    if (others.length === 1 && others.length < node.anyOf.length) {
      return [others[0], true];
    }
  }
  return [node, false];
}

/** Items of an array or values of a map, as far as the settings editor can check them. */
function valueSchema(schema, node) {
  const target = resolve(schema, node);
  if (target === true || target === undefined) {
    return {};
  }
  if (target.discriminator) {
    return {
      type: 'object',
      required: [target.discriminator.propertyName],
      properties: { [target.discriminator.propertyName]: { enum: Object.keys(target.discriminator.mapping).sort() } },
    };
  }
  if (target.type === 'array') {
    return { type: 'array', items: valueSchema(schema, target.items) };
  }
  if (target.type === 'object') {
    return target.additionalProperties ? { type: 'object', additionalProperties: valueSchema(schema, target.additionalProperties) } : { type: 'object' };
  }
  return target.type ? { type: target.type } : {};
}

const BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength'];

function tomlName(dotted) {
  const parts = dotted.split('.');
  return `\`[${parts.slice(0, -1).join('.')}] ${parts[parts.length - 1]}\``;
}

/** One VS Code setting from one property of the schema. */
function setting(schema, node, dotted, order) {
  const [inner, nullable] = withoutNull(node);
  const target = resolve(schema, inner);
  const out = {};
  if (target.const !== undefined) {
    out.type = typeof target.const;
    out.enum = [target.const];
  } else if (Array.isArray(target.enum)) {
    out.type = 'string';
    out.enum = nullable ? ['', ...target.enum] : [...target.enum];
  } else if (target.type === 'array') {
    out.type = 'array';
    out.items = valueSchema(schema, target.items);
  } else if (target.type === 'object') {
    out.type = 'object';
    if (target.additionalProperties) {
      out.additionalProperties = valueSchema(schema, target.additionalProperties);
    }
  } else {
    out.type = target.type;
  }
  for (const bound of BOUNDS) {
    if (target[bound] !== undefined) {
      out[bound] = target[bound];
    }
  }
  const emptyMeansNone = nullable && out.type === 'string';
  if (nullable && !emptyMeansNone) {
    out.type = [out.type, 'null'];
  }
  if ('default' in node) {
    out.default = node.default === null && emptyMeansNone ? '' : node.default;
  } else if (target.const !== undefined) {
    out.default = target.const;
  }
  const about = (node.description || target.description || `${node.title || dotted}.`).trim();
  const none = emptyMeansNone ? ' Empty: none (null).' : '';
  out.markdownDescription = `${about}${none}\n\n${tomlName(dotted)} in gemma-lsp's \`config.toml\`.`;
  out.order = order;
  return out;
}

/** Every setting of a section, nested sections flattened, in the schema's order. */
function flatten(schema, section, prefix, into) {
  for (const [name, node] of Object.entries(section.properties)) {
    const dotted = `${prefix}.${name}`;
    const target = resolve(schema, withoutNull(node)[0]);
    if (isSection(target)) {
      flatten(schema, target, dotted, into);
    } else {
      into.push([dotted, node]);
    }
  }
  return into;
}

function titleOf(name) {
  return `Gemma: ${name}`;
}

/** `contributes.configuration` for this schema: the extension's section, then one per server section. */
function configurationFromSchema(schema) {
  const sections = [CLIENT_SECTION];
  let order = 1;
  for (const [name, node] of Object.entries(schema.properties)) {
    const section = resolve(schema, node);
    const properties = {};
    flatten(schema, section, name, []).forEach(([dotted, prop], i) => {
      properties[`gemma.${dotted}`] = setting(schema, prop, dotted, i);
    });
    sections.push({ id: `gemma-lsp.${name}`, title: titleOf(name), order: order++, properties });
  }
  return sections;
}

/** The `gemma-lsp` to ask: $GEMMA_LSP, the repository's .venv, else PATH. */
function serverExecutable() {
  if (process.env.GEMMA_LSP) {
    return process.env.GEMMA_LSP;
  }
  const venv = path.resolve(ROOT, '..', '.venv', process.platform === 'win32' ? 'Scripts' : 'bin', 'gemma-lsp');
  return fs.existsSync(venv) ? venv : 'gemma-lsp';
}

function readSchema(file) {
  const text = file ? fs.readFileSync(file, 'utf8') : execFileSync(serverExecutable(), ['schema'], { encoding: 'utf8' });
  return JSON.parse(text);
}

function main(argv) {
  const schemaAt = argv.indexOf('--schema');
  const schema = readSchema(schemaAt >= 0 ? argv[schemaAt + 1] : undefined);
  const pkg = JSON.parse(fs.readFileSync(PACKAGE_JSON, 'utf8'));
  const generated = configurationFromSchema(schema);
  if (argv.includes('--check')) {
    if (JSON.stringify(pkg.contributes.configuration) !== JSON.stringify(generated)) {
      console.error("package.json's settings differ from `gemma-lsp schema`: run `make vscode-settings`.");
      return 1;
    }
    console.log("package.json's settings match `gemma-lsp schema`.");
    return 0;
  }
  if (argv.includes('--write')) {
    pkg.contributes.configuration = generated;
    fs.writeFileSync(PACKAGE_JSON, `${JSON.stringify(pkg, null, 2)}\n`);
    const count = generated.reduce((n, s) => n + Object.keys(s.properties).length, 0);
    console.log(`package.json: ${count} settings in ${generated.length} sections.`);
    return 0;
  }
  console.error('usage: node scripts/settings.js --write | --check [--schema FILE]');
  return 2;
}

module.exports = { configurationFromSchema, serverExecutable, readSchema, CLIENT_SECTION };

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
