/**
 * Keeps the server's settings in step with VS Code's: a changed server setting is sent as
 * `workspace/didChangeConfiguration`; a changed `gemma.server.path` or `gemma.server.args`, or a
 * removed server setting, starts the server again; the pause switch reaches the status bar.
 */
import type { Configuration, Log } from './editorApi';
import type { ServerConnection } from './protocol';
import { CLIENT, compare, serverPayload, snapshot, type ContributedSetting, type SettingsSnapshot } from './settings';
import type { Status } from './status';

export const DID_CHANGE_CONFIGURATION = 'workspace/didChangeConfiguration';

export interface Restartable {
  readonly connection: ServerConnection | undefined;
  restart(reason: string): Promise<void>;
}

export class SettingsSync {
  private last: SettingsSnapshot;

  constructor(
    private readonly config: () => Configuration,
    private readonly contributed: ContributedSetting[],
    private readonly server: Restartable,
    private readonly status: Status,
    private readonly log: Log,
  ) {
    this.last = snapshot(config(), contributed);
    this.status.setPaused(this.paused());
  }

  paused(): boolean {
    return this.config().get<boolean>(CLIENT.paused) === true;
  }

  /** What `initialize` carries: the settings the user set, as of now. */
  initializationOptions(): { gemma: Record<string, unknown> } {
    this.last = snapshot(this.config(), this.contributed);
    return serverPayload(this.last.server);
  }

  /** A `gemma.*` setting changed. */
  async changed(): Promise<void> {
    const now = snapshot(this.config(), this.contributed);
    const change = compare(this.last, now);
    this.last = now;
    this.status.setPaused(this.paused());
    if (change.restartReasons.length > 0) {
      await this.server.restart(change.restartReasons.join('; '));
      return;
    }
    const connection = this.server.connection;
    if (change.serverChanged && connection) {
      this.log.info(`settings sent to the server: ${JSON.stringify(now.server)}`);
      await connection.sendNotification(DID_CHANGE_CONFIGURATION, { settings: serverPayload(now.server) });
    }
  }
}
