/**
 * The status bar item: the model's state (starting, loading with progress, ready, error with the
 * message, stopped), the last inline completion's latency, paused completions and degraded
 * memories. `Status` holds the state and renders it; clicking the item opens the status menu.
 */
import type { RenderedStatus, StatusView } from './editorApi';

export type ServerState =
  | { kind: 'stopped'; reason?: string }
  | { kind: 'starting' }
  | { kind: 'loading'; title: string; percentage?: number; message?: string }
  | { kind: 'ready'; model?: string }
  | { kind: 'error'; message: string };

export interface StatusSnapshot {
  state: ServerState;
  paused: boolean;
  latencyMs?: number;
  memoryDegraded?: string;
}

export class Status {
  private snapshot: StatusSnapshot = { state: { kind: 'stopped' }, paused: false };

  constructor(private readonly view: StatusView) {
    this.view.show(render(this.snapshot));
  }

  get current(): StatusSnapshot {
    return this.snapshot;
  }

  setState(state: ServerState): void {
    this.update({ state });
  }

  setPaused(paused: boolean): void {
    this.update({ paused });
  }

  /** How long the last answered inline completion took, as the editor saw it. */
  completionLatency(ms: number): void {
    this.update({ latencyMs: Math.round(ms) });
  }

  /** The memory store went away (`message` says why) or came back (`undefined`). */
  setMemoryDegraded(message: string | undefined): void {
    this.update({ memoryDegraded: message });
  }

  dispose(): void {
    this.view.dispose();
  }

  private update(change: Partial<StatusSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    this.view.show(render(this.snapshot));
  }
}

export function render(status: StatusSnapshot): RenderedStatus {
  const { state, paused, latencyMs, memoryDegraded } = status;
  const lines: string[] = [];
  let icon: string;
  let detail = '';
  let background: RenderedStatus['background'];
  switch (state.kind) {
    case 'stopped':
      icon = '$(circle-slash)';
      lines.push(state.reason ? `gemma-lsp is not running: ${state.reason}` : 'gemma-lsp is not running.');
      background = state.reason ? 'error' : undefined;
      break;
    case 'starting':
      icon = '$(loading~spin)';
      lines.push('Starting gemma-lsp…');
      break;
    case 'loading':
      icon = '$(loading~spin)';
      detail = state.percentage !== undefined ? ` ${state.percentage}%` : '';
      lines.push(`${state.title}${state.message ? ` (${state.message})` : ''}…`);
      break;
    case 'ready':
      icon = '$(sparkle)';
      detail = latencyMs !== undefined ? ` ${latencyMs} ms` : '';
      lines.push(`Ready${state.model ? `: ${state.model}` : ''}.`);
      if (latencyMs !== undefined) {
        lines.push(`Last inline completion: ${latencyMs} ms.`);
      }
      break;
    case 'error':
      icon = '$(error)';
      lines.push(`Error: ${state.message}`);
      background = 'error';
      break;
  }
  if (paused) {
    icon = '$(debug-pause)';
    detail = ' paused';
    lines.push('Inline completions are paused.');
  }
  if (memoryDegraded) {
    detail += ' $(warning)';
    lines.push(`Memories degraded: ${memoryDegraded}`);
    background = background ?? 'warning';
  }
  lines.push('Click for the Gemma menu.');
  return { text: `${icon} Gemma${detail}`, tooltip: lines.join('\n'), background };
}
