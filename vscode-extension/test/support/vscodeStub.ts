/**
 * A stand-in `vscode` module, enough to load vscode-languageclient and the extension's client.ts
 * under Node and ask that client which capabilities it would send (no VS Code binary can be
 * downloaded here). Every property is a callable, constructible stand-in; `version` is the
 * oldest VS Code the extension supports.
 */
import Module from 'node:module';

function standIn(): unknown {
  const fn = function () {
    return standIn();
  };
  return new Proxy(fn, {
    get(_target, property) {
      if (property === Symbol.toPrimitive) {
        return () => '';
      }
      if (property === 'then') {
        return undefined; // not a promise
      }
      if (property === 'version') {
        return '1.91.0';
      }
      return standIn();
    },
    construct() {
      return standIn() as object;
    },
  });
}

let installed = false;

export function installVscodeStub(): void {
  if (installed) {
    return;
  }
  installed = true;
  const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = loader._resolveFilename;
  loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    return request === 'vscode' ? 'vscode' : original.call(this, request, ...rest);
  };
  const cache = require.cache as Record<string, unknown>;
  cache.vscode = { id: 'vscode', filename: 'vscode', loaded: true, exports: standIn() };
}
