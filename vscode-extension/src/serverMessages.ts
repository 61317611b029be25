/**
 * `window/showMessage` from the server: shown to the user and written to the log, and read for
 * what the status bar shows (memories degraded, back again).
 */
import type { EditorApi, Log, MessageKind } from './editorApi';
import type { Status } from './status';

// The server's words (server/gemma_lsp/app.py and memory/resilient.py), after its "gemma-lsp: " prefix.
const DEGRADED = /^(?:gemma-lsp: )?Memories are degraded: (.*)$/s;
const RECOVERED = /^(?:gemma-lsp: )?Memories are back\./;

const KINDS: Record<number, MessageKind> = { 1: 'error', 2: 'warning', 3: 'info', 4: 'info' };

export class ServerMessages {
  constructor(
    private readonly api: Pick<EditorApi, 'showMessage'>,
    private readonly status: Status,
    private readonly log: Log,
  ) {}

  /** The handler of `window/showMessage`. */
  show(params: { type: number; message: string }): void {
    const kind = KINDS[params.type] ?? 'info';
    this.log[kind === 'info' ? 'info' : kind === 'warning' ? 'warn' : 'error'](params.message);
    const degraded = DEGRADED.exec(params.message);
    if (degraded) {
      this.status.setMemoryDegraded(degraded[1]);
    } else if (RECOVERED.test(params.message)) {
      this.status.setMemoryDegraded(undefined);
    }
    void this.api.showMessage(kind, params.message);
  }
}
