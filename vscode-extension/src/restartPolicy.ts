/**
 * When to start a crashed server again: at most `maxRestarts` within `windowMs`, each after a
 * longer pause (1 s, 2 s, 4 s, ... up to 30 s); past that it stays stopped, and says why.
 */

export type RestartDecision = { restart: true; delayMs: number; attempt: number } | { restart: false; reason: string };

export const FIRST_DELAY_MS = 1000;
export const MAX_DELAY_MS = 30_000;

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(
    private readonly maxRestarts: () => number,
    private readonly windowMs: () => number,
  ) {}

  /** A crash at `now` (ms): start again after `delayMs`, or give up. */
  onCrash(now: number): RestartDecision {
    const windowMs = this.windowMs();
    this.crashes = this.crashes.filter((t) => now - t < windowMs);
    this.crashes.push(now);
    const max = Math.max(0, this.maxRestarts());
    const count = this.crashes.length;
    if (count > max) {
      const minutes = +(windowMs / 60_000).toFixed(2);
      return {
        restart: false,
        reason: `the server stopped ${count} times within ${minutes} minute${minutes === 1 ? '' : 's'} (gemma.server.maxRestarts is ${max}), so it is not started again`,
      };
    }
    const delayMs = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (count - 1));
    return { restart: true, delayMs, attempt: count };
  }

  /** A start the user asked for begins a new count. */
  reset(): void {
    this.crashes = [];
  }
}
