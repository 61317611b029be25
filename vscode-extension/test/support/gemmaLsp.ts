/** The repository's `gemma-lsp`, found the way the extension finds it (a workspace .venv, then PATH). */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

import { findServer } from '../../src/discovery';

export const REPOSITORY = path.resolve(__dirname, '..', '..', '..', '..');
export const EXTENSION = path.join(REPOSITORY, 'vscode-extension');

export function gemmaLsp(): string {
  const found = findServer({
    configuredPath: process.env.GEMMA_LSP,
    workspaceFolders: [REPOSITORY],
    env: process.env,
    platform: process.platform,
    homedir: os.homedir(),
  });
  if (!found.found) {
    throw new Error(`${found.message} (make install-dev creates ${REPOSITORY}/.venv)`);
  }
  return found.command;
}

export function gemmaLspJson(...args: string[]): unknown {
  return JSON.parse(execFileSync(gemmaLsp(), args, { encoding: 'utf8' }));
}
