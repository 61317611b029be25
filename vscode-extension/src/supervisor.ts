/**
 * Starts, stops and restarts the server, one operation at a time. A server that stops on its
 * own is started again after a pause that grows (`RestartPolicy`); past the limit it stays
 * stopped and the user is told why. A server that cannot be found is reported with a button
 * that opens `gemma.server.path`.
 */
import type { Discovery } from './discovery';
import type { Disposable, EditorApi, Log } from './editorApi';
import type { ModelState, Timers } from './modelState';
import { errorMessage, type ServerConnection } from './protocol';
import type { RestartPolicy } from './restartPolicy';
import type { Status } from './status';

export interface ServerCommand {
  command: string;
  args: string[];
}

/** A language client for one server process (vscode-languageclient's `LanguageClient` in VS Code). */
export interface RunningClient extends ServerConnection {
  start(): Promise<void>;
  stop(timeoutMs?: number): Promise<void>;
  dispose(timeoutMs?: number): Promise<void>;
}

export interface SupervisorDeps {
  discover(): Discovery;
  serverArgs(): string[];
  /** A client for `command`; it calls `crashed` when its server stops without being asked to. */
  createClient(command: ServerCommand, crashed: (why: string) => void): RunningClient;
  policy: RestartPolicy;
  status: Status;
  model: ModelState;
  log: Log;
  api: Pick<EditorApi, 'showMessage' | 'openSettings'>;
  showLog(): void;
  timers: Timers;
  now(): number;
}

export const OPEN_SETTINGS = 'Open settings';
export const SHOW_LOG = 'Show log';
export const RESTART = 'Restart';
const STOP_TIMEOUT_MS = 5000;

export class ServerSupervisor {
  private client: RunningClient | undefined;
  private running = false;
  private generation = 0;
  private crashedGeneration = -1;
  private pendingRestart: Disposable | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: SupervisorDeps) {}

  /** The running server, or undefined while it is starting, stopped or crashed. */
  get connection(): ServerConnection | undefined {
    return this.running ? this.client : undefined;
  }

  /** Resolves once the last queued operation is done (for tests and for deactivation). */
  idle(): Promise<void> {
    return this.queue;
  }

  start(): Promise<void> {
    return this.serialize(() => this.doStart());
  }

  /** Stop the server and start it again; a restart the user or a setting asks for resets the crash count. */
  restart(reason: string): Promise<void> {
    return this.serialize(async () => {
      this.deps.log.info(`restarting gemma-lsp: ${reason}`);
      this.deps.policy.reset();
      await this.doStop();
      await this.doStart();
    });
  }

  stop(): Promise<void> {
    return this.serialize(() => this.doStop());
  }

  private serialize(operation: () => Promise<void>): Promise<void> {
    const next = this.queue.then(operation, operation);
    this.queue = next.catch((error) => this.deps.log.error(`gemma-lsp: ${errorMessage(error)}`));
    return this.queue;
  }

  private async doStart(): Promise<void> {
    const { deps } = this;
    this.pendingRestart?.dispose();
    this.pendingRestart = undefined;
    const found = deps.discover();
    if (!found.found) {
      deps.log.error(found.message);
      deps.status.setState({ kind: 'stopped', reason: found.message });
      void deps.api.showMessage('error', found.message, OPEN_SETTINGS).then((choice) => {
        if (choice === OPEN_SETTINGS) {
          void deps.api.openSettings('gemma.server.path');
        }
      });
      return;
    }
    const command: ServerCommand = { command: found.command, args: ['serve', ...deps.serverArgs()] };
    deps.log.info(`starting ${[command.command, ...command.args].join(' ')} (found: ${found.source})`);
    deps.status.setState({ kind: 'starting' });
    const generation = ++this.generation;
    const client = deps.createClient(command, (why) => this.crashed(generation, why));
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      this.crashed(generation, `it did not start: ${errorMessage(error)}`);
      return;
    }
    if (generation !== this.generation || this.crashedGeneration === generation) {
      return; // stopped or crashed while starting
    }
    this.running = true;
    void deps.model.started(client);
  }

  private async doStop(): Promise<void> {
    this.pendingRestart?.dispose();
    this.pendingRestart = undefined;
    this.generation++; // whatever the old client reports from now on is not news
    this.running = false;
    this.deps.model.stopped();
    const client = this.client;
    this.client = undefined;
    if (client) {
      await client.stop(STOP_TIMEOUT_MS).catch(() => undefined);
      await client.dispose(STOP_TIMEOUT_MS).catch(() => undefined);
    }
  }

  private crashed(generation: number, why: string): void {
    const { deps } = this;
    if (generation !== this.generation || this.crashedGeneration === generation) {
      return;
    }
    this.crashedGeneration = generation;
    this.running = false;
    deps.model.stopped();
    const decision = deps.policy.onCrash(deps.now());
    if (decision.restart) {
      const seconds = decision.delayMs / 1000;
      deps.log.warn(`gemma-lsp stopped (${why}); starting it again in ${seconds} s (restart ${decision.attempt})`);
      deps.status.setState({ kind: 'error', message: `gemma-lsp stopped (${why}); starting it again in ${seconds} s.` });
      this.pendingRestart = deps.timers.setTimeout(() => {
        this.pendingRestart = undefined;
        void this.serialize(async () => {
          if (generation !== this.generation) {
            return; // restarted or stopped meanwhile
          }
          await this.doStop();
          await this.doStart();
        });
      }, decision.delayMs);
      return;
    }
    const message = `gemma-lsp stopped: ${decision.reason}. Last: ${why}. The log has the server's output.`;
    deps.log.error(message);
    deps.status.setState({ kind: 'stopped', reason: decision.reason });
    void deps.api.showMessage('error', message, SHOW_LOG, RESTART).then((choice) => {
      if (choice === SHOW_LOG) {
        deps.showLog();
      } else if (choice === RESTART) {
        void this.restart('asked from the crash message');
      }
    });
  }
}
