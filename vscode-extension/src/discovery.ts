/**
 * Finding the `gemma-lsp` executable: `gemma.server.path` when set, else `gemma-lsp` in a
 * workspace folder's `.venv`, else on PATH.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DiscoveryInput {
  /** `gemma.server.path` ('' or undefined: not set). A leading `~/` is the home folder. */
  configuredPath?: string;
  workspaceFolders: string[];
  env: Record<string, string | undefined>;
  platform: NodeJS.Platform;
  homedir: string;
}

export type Discovery =
  | { found: true; command: string; source: 'setting' | 'workspace venv' | 'PATH' }
  | { found: false; message: string; setting: boolean };

const SERVER_NAME = 'gemma-lsp';

function isExecutableFile(file: string, platform: NodeJS.Platform): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    if (platform !== 'win32') {
      fs.accessSync(file, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

function names(platform: NodeJS.Platform, env: Record<string, string | undefined>): string[] {
  if (platform !== 'win32') {
    return [SERVER_NAME];
  }
  const extensions = (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter(Boolean);
  return [SERVER_NAME, ...extensions.map((ext) => SERVER_NAME + ext.toLowerCase())];
}

export function findServer(input: DiscoveryInput): Discovery {
  const { platform, env } = input;
  const configured = input.configuredPath?.trim();
  if (configured) {
    const expanded = configured.startsWith('~/') ? path.join(input.homedir, configured.slice(2)) : configured;
    if (isExecutableFile(expanded, platform)) {
      return { found: true, command: expanded, source: 'setting' };
    }
    const why = fs.existsSync(expanded) ? 'is not an executable file' : 'does not exist';
    return { found: false, setting: true, message: `gemma.server.path is ${configured}, which ${why}.` };
  }
  const venvBin = platform === 'win32' ? path.join('.venv', 'Scripts') : path.join('.venv', 'bin');
  for (const folder of input.workspaceFolders) {
    for (const name of names(platform, env)) {
      const candidate = path.join(folder, venvBin, name);
      if (isExecutableFile(candidate, platform)) {
        return { found: true, command: candidate, source: 'workspace venv' };
      }
    }
  }
  const dirs = (env.PATH ?? env.Path ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    for (const name of names(platform, env)) {
      const candidate = path.join(dir, name);
      if (isExecutableFile(candidate, platform)) {
        return { found: true, command: candidate, source: 'PATH' };
      }
    }
  }
  const where = input.workspaceFolders.length > 0 ? "neither in a workspace folder's .venv nor on PATH" : 'not on PATH';
  return {
    found: false,
    setting: false,
    message: `gemma-lsp is ${where}. Install it (make install in the gemma-lsp repository puts it in .venv/bin) or set gemma.server.path to the executable.`,
  };
}
