/**
 * Work-done progress the server starts (`window/workDoneProgress/create`): the model's load goes
 * to the status bar; everything else (indexing, code actions, chat commands) is shown by VS Code,
 * as a notification with a cancel button when the server allows cancelling.
 *
 * This replaces vscode-languageclient's own handler, which shows every progress in the status
 * bar where it cannot be cancelled and whose events the extension could not follow.
 */
import { WorkDoneProgress } from 'vscode-languageserver-protocol';

import type { Disposable, EditorApi, Log, ProgressReporter } from './editorApi';
import type { ModelState } from './modelState';
import { WORK_DONE_PROGRESS_CANCEL, type ServerConnection, type WorkDoneProgressValue } from './protocol';

const LOAD_TITLE = /^Loading /;

export class ServerProgress {
  private readonly active = new Map<string | number, Disposable>();

  constructor(
    private readonly server: ServerConnection,
    private readonly api: Pick<EditorApi, 'withProgress'>,
    private readonly model: ModelState,
    private readonly log: Log,
  ) {}

  /** The handler of `window/workDoneProgress/create`. */
  create(params: { token: string | number }): void {
    const { token } = params;
    let ui: { reporter?: ProgressReporter; finish: () => void } | undefined;
    let isLoad = false;
    let reported = 0;
    const subscription = this.server.onProgress(WorkDoneProgress.type, token, (value: WorkDoneProgressValue) => {
      switch (value.kind) {
        case 'begin':
          isLoad = LOAD_TITLE.test(value.title ?? '');
          this.log.info(`progress: ${value.title ?? ''}`);
          if (isLoad) {
            this.model.loadBegan(value.title ?? 'Loading the model', value.percentage);
          } else {
            ui = this.show(token, value);
          }
          break;
        case 'report':
          if (isLoad) {
            this.model.loadProgress(value.percentage, value.message);
          } else if (ui?.reporter) {
            const increment = value.percentage !== undefined ? Math.max(0, value.percentage - reported) : undefined;
            reported = value.percentage ?? reported;
            ui.reporter.report({ message: value.message, increment });
          }
          break;
        case 'end':
          this.log.info(`progress ended: ${value.message ?? ''}`);
          this.active.get(token)?.dispose();
          this.active.delete(token);
          ui?.finish();
          if (isLoad) {
            void this.model.loadEnded();
          }
          break;
      }
    });
    this.active.set(token, subscription);
  }

  private show(token: string | number, begin: WorkDoneProgressValue): { reporter?: ProgressReporter; finish: () => void } {
    const state: { reporter?: ProgressReporter; finish: () => void } = { finish: () => undefined };
    const done = new Promise<void>((resolve) => {
      state.finish = resolve;
    });
    const cancellable = begin.cancellable === true;
    void this.api.withProgress(
      { title: begin.title ?? 'gemma-lsp', cancellable, location: cancellable ? 'notification' : 'window' },
      async (reporter, cancel) => {
        state.reporter = reporter;
        if (begin.message) {
          reporter.report({ message: begin.message });
        }
        const listener = cancel.onCancellationRequested(() => {
          void this.server.sendNotification(WORK_DONE_PROGRESS_CANCEL, { token });
        });
        await done;
        listener.dispose();
      },
    );
    return state;
  }

  dispose(): void {
    for (const subscription of this.active.values()) {
      subscription.dispose();
    }
    this.active.clear();
  }
}
