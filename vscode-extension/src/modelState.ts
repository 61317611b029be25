/**
 * The model's state for the status bar: asked with `gemma/stats` when the server starts and
 * after each load, followed through the load's work-done progress in between.
 */
import type { Disposable } from './editorApi';
import { STATS, errorMessage, request, type ServerConnection, type Stats } from './protocol';
import type { Status } from './status';

export interface Timers {
  setTimeout(callback: () => void, ms: number): Disposable;
}

export const nodeTimers: Timers = {
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    return { dispose: () => clearTimeout(handle) };
  },
};

/** The model's name for people: the file name of its path, with its architecture. */
export function modelLabel(stats: Stats): string | undefined {
  const model = stats.model;
  if (!model) {
    return undefined;
  }
  const file = model.path ? model.path.split(/[\\/]/).pop() : undefined;
  const size = model.n_params ? `, ${(model.n_params / 1e6).toFixed(1)}M parameters` : '';
  return file ? `${file} (${model.architecture ?? 'gemma'}${size})` : model.architecture;
}

export class ModelState {
  private server: ServerConnection | undefined;
  private poll: Disposable | undefined;
  private loadingTitle = 'Loading the model';

  constructor(
    private readonly status: Status,
    private readonly timers: Timers = nodeTimers,
    private readonly pollMs = 1000,
  ) {}

  /** The server answers requests: find out where its model is. */
  async started(server: ServerConnection): Promise<void> {
    this.server = server;
    await this.refresh();
  }

  stopped(): void {
    this.server = undefined;
    this.poll?.dispose();
    this.poll = undefined;
  }

  /** A load began (work-done progress `begin`, titled "Loading <model>"). */
  loadBegan(title: string, percentage?: number): void {
    this.loadingTitle = title;
    this.status.setState({ kind: 'loading', title, percentage });
  }

  loadProgress(percentage: number | undefined, message: string | undefined): void {
    this.status.setState({ kind: 'loading', title: this.loadingTitle, percentage, message });
  }

  /** The load ended (successfully or not): `gemma/stats` says which. */
  async loadEnded(): Promise<void> {
    await this.refresh();
  }

  /** Ask `gemma/stats`; while the model is neither loaded nor failed, ask again after a while. */
  async refresh(): Promise<void> {
    const server = this.server;
    if (!server) {
      return;
    }
    this.poll?.dispose();
    this.poll = undefined;
    let stats: Stats;
    try {
      stats = await request<Stats>(server, STATS);
    } catch (error) {
      if (this.server === server) {
        this.status.setState({ kind: 'error', message: `gemma/stats failed: ${errorMessage(error)}` });
      }
      return;
    }
    if (this.server !== server) {
      return; // stopped or restarted meanwhile
    }
    if (stats.loaded) {
      this.status.setState({ kind: 'ready', model: modelLabel(stats) });
    } else if (stats.load_error) {
      this.status.setState({ kind: 'error', message: stats.load_error });
    } else {
      if (this.status.current.state.kind !== 'loading') {
        this.status.setState({ kind: 'loading', title: this.loadingTitle });
      }
      this.poll = this.timers.setTimeout(() => void this.refresh(), this.pollMs);
    }
  }
}
