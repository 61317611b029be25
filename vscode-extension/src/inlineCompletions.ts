/**
 * Inline completions (ghost text) go through vscode-languageclient's provider; this middleware
 * adds the pause switch and measures each answer's latency for the status bar. Accepting an item
 * runs its command, `gemma.completion.accepted`, which the client sends to the server as it is.
 *
 * The server's `textDocument/completion` fallback (for editors without inline completion) is
 * not asked for: VS Code would send it on the same keystrokes, and the server, which serves the
 * latest request of a document, would cancel the inline request for it.
 */
import type { CancellationToken } from './editorApi';
import type { Status } from './status';

function answered(result: unknown): boolean {
  return result !== null && result !== undefined;
}

export class InlineCompletions {
  constructor(
    private readonly paused: () => boolean,
    private readonly status: Status,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Ask the server (`next`) unless completions are paused; the latency of an answer goes to the status bar. */
  async provide<R>(token: CancellationToken, next: () => R | null | undefined | PromiseLike<R | null | undefined>): Promise<R | null | undefined> {
    if (this.paused()) {
      return null;
    }
    const started = this.now();
    const result = await next();
    if (!token.isCancellationRequested && answered(result)) {
      this.status.completionLatency(this.now() - started);
    }
    return result;
  }

  /** The middleware of `textDocument/completion`: never sent (see above). */
  completionList(): null {
    return null;
  }
}
