/**
 * The `gemma.*` settings: which belong to the extension, which are the server's, what is sent.
 *
 * The server's settings are generated into package.json from `gemma-lsp schema`
 * (scripts/settings.js). Only the values the user set are sent, as `initializationOptions` and
 * `workspace/didChangeConfiguration` (`{"gemma": {...}}`): a default sent by the editor would
 * override the user's `config.toml`, which the server merges below them.
 */
import type { Configuration } from './editorApi';

export const SECTION = 'gemma';

/** The extension's own settings (everything else under `gemma.` is the server's). */
export const CLIENT = {
  serverPath: 'server.path',
  serverArgs: 'server.args',
  maxRestarts: 'server.maxRestarts',
  restartWindowMinutes: 'server.restartWindowMinutes',
  paused: 'inlineCompletion.paused',
  trace: 'trace.server',
} as const;

const CLIENT_PREFIXES = ['server.', 'inlineCompletion.', 'trace.'];

/** Settings the running server cannot take over: changing them starts it again. */
export const RESTART_KEYS: readonly string[] = [CLIENT.serverPath, CLIENT.serverArgs];

export interface ContributedSetting {
  /** Relative to `gemma.`: `model.path`. */
  key: string;
  default?: unknown;
}

export function isServerKey(key: string): boolean {
  return !CLIENT_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/** Every `gemma.*` setting package.json contributes, with its default. */
export function contributedSettings(packageJson: unknown): ContributedSetting[] {
  const configuration = (packageJson as { contributes?: { configuration?: unknown } })?.contributes?.configuration;
  const sections = Array.isArray(configuration) ? configuration : configuration ? [configuration] : [];
  const found: ContributedSetting[] = [];
  for (const section of sections as { properties?: Record<string, { default?: unknown }> }[]) {
    for (const [name, schema] of Object.entries(section.properties ?? {})) {
      if (name.startsWith(`${SECTION}.`)) {
        found.push({ key: name.slice(SECTION.length + 1), default: schema.default });
      }
    }
  }
  return found;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value the user set for `key` (the most specific scope wins; objects merge as VS Code merges them). */
export function userValue(config: Configuration, key: string): unknown {
  const values = config.inspect(key);
  if (!values) {
    return undefined;
  }
  const scopes = [values.globalValue, values.workspaceValue, values.workspaceFolderValue].filter((v) => v !== undefined);
  if (scopes.length === 0) {
    return undefined;
  }
  if (scopes.every(isPlainObject)) {
    return Object.assign({}, ...scopes);
  }
  return scopes[scopes.length - 1];
}

/**
 * The server settings the user set, flat (`{"model.path": "/m.gguf"}`). An empty string stands
 * for "none" where the setting's default is empty (`model.path`, `memory.url`, ...) and goes as null.
 */
export function userServerSettings(config: Configuration, contributed: ContributedSetting[]): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  for (const { key, default: fallback } of contributed) {
    if (!isServerKey(key)) {
      continue;
    }
    const value = userValue(config, key);
    if (value === undefined) {
      continue;
    }
    flat[key] = value === '' && fallback === '' ? null : value;
  }
  return flat;
}

/** `{"model.path": x}` → `{"model": {"path": x}}`. */
export function nest(flat: Record<string, unknown>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [dotted, value] of Object.entries(flat)) {
    const parts = dotted.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      if (!isPlainObject(node[part])) {
        node[part] = {};
      }
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  return root;
}

/** What the server receives: `{"gemma": {...}}`, the form it reads in both messages. */
export function serverPayload(flat: Record<string, unknown>): { gemma: Record<string, unknown> } {
  return { [SECTION]: nest(flat) } as { gemma: Record<string, unknown> };
}

export interface SettingsSnapshot {
  server: Record<string, unknown>;
  restart: Record<string, unknown>;
}

export function snapshot(config: Configuration, contributed: ContributedSetting[]): SettingsSnapshot {
  const restart: Record<string, unknown> = {};
  for (const key of RESTART_KEYS) {
    restart[key] = config.get(key);
  }
  return { server: userServerSettings(config, contributed), restart };
}

export interface SettingsChange {
  /** Why the server must start again (empty: it can take the change while running). */
  restartReasons: string[];
  /** The server's settings differ: send them. */
  serverChanged: boolean;
}

export function compare(before: SettingsSnapshot, after: SettingsSnapshot): SettingsChange {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const restartReasons: string[] = [];
  for (const key of RESTART_KEYS) {
    if (!same(before.restart[key], after.restart[key])) {
      restartReasons.push(`${SECTION}.${key} changed`);
    }
  }
  for (const key of Object.keys(before.server)) {
    if (!(key in after.server)) {
      // The server merges what it receives over what it has: a removed key would keep its value.
      restartReasons.push(`${SECTION}.${key} was removed (its value comes again from config.toml or the default)`);
    }
  }
  const serverChanged = !same(before.server, after.server);
  return { restartReasons, serverChanged };
}
