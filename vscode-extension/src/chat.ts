/**
 * The `@gemma` chat participant: each request is one `gemma/chat` turn whose `$/progress` pieces
 * are streamed into the response; `/explain`, `/fix`, `/doc` and `/tests` use the active
 * selection with their prompt template; the conversation continues the server's session; the
 * chat view's cancel cancels the request (the server keeps the partial answer, marked as cut).
 */
import { ProgressType } from 'vscode-languageserver-protocol';

import type { CancellationToken, EditorApi, EditorSelection, Log, Range } from './editorApi';
import {
  ACTION_RUN,
  CHAT,
  REQUEST_CANCELLED,
  errorCode,
  errorMessage,
  executeCommand,
  request,
  type ChatParams,
  type ChatPiece,
  type ChatResult,
  type ServerConnection,
} from './protocol';

export const PARTICIPANT_ID = 'gemma-lsp.gemma';

interface CommandSpec {
  template: string;
  /** The message when nothing is typed after the command. */
  message: string;
  /** The code action that applies this kind of answer as an edit. */
  action?: { id: 'fix' | 'document' | 'tests'; title: string };
}

/** The slash commands (package.json `chatParticipants[0].commands` lists the same names). */
export const CHAT_COMMANDS: Record<string, CommandSpec> = {
  explain: { template: 'explain', message: 'Explain this code.' },
  fix: { template: 'fix', message: 'Find and fix the bugs.', action: { id: 'fix', title: 'Fix the selection in place' } },
  doc: { template: 'document', message: 'Add documentation comments.', action: { id: 'document', title: 'Document the selection in place' } },
  tests: { template: 'test', message: 'Write tests for this code.', action: { id: 'tests', title: 'Insert tests below the selection' } },
};

export interface ChatRequestLike {
  readonly prompt: string;
  readonly command?: string;
}

/** A turn of `ChatContext.history`: response turns carry the result their request returned. */
export interface ChatTurnLike {
  readonly participant?: string;
  readonly result?: ChatResultLike;
}

export interface ChatContextLike {
  readonly history: readonly ChatTurnLike[];
}

export interface ChatStreamLike {
  markdown(text: string): void;
  progress(text: string): void;
  reference(uri: string, range?: Range): void;
  button(command: { command: string; title: string; arguments?: unknown[] }): void;
}

export interface ChatResultLike {
  metadata?: { session?: string; cancelled?: boolean };
  errorDetails?: { message: string };
}

function isEmpty(range: Range): boolean {
  return range.start.line === range.end.line && range.start.character === range.end.character;
}

/** The server session this conversation has been using (from the last answer that named one). */
export function sessionOf(context: ChatContextLike): string | undefined {
  for (let i = context.history.length - 1; i >= 0; i--) {
    const turn = context.history[i];
    if ((turn.participant === undefined || turn.participant === PARTICIPANT_ID) && turn.result?.metadata?.session) {
      return turn.result.metadata.session;
    }
  }
  return undefined;
}

export class ChatParticipant {
  private tokens = 0;

  constructor(
    private readonly server: () => ServerConnection | undefined,
    private readonly selection: () => EditorSelection | undefined,
    private readonly log: Log,
  ) {}

  async handle(req: ChatRequestLike, context: ChatContextLike, stream: ChatStreamLike, token: CancellationToken): Promise<ChatResultLike> {
    const fail = (message: string): ChatResultLike => {
      stream.markdown(message);
      return { errorDetails: { message } };
    };
    const server = this.server();
    if (!server) {
      return fail('gemma-lsp is not running: the status bar item says why, and **Gemma: Show the log** has the details.');
    }
    const spec = req.command ? CHAT_COMMANDS[req.command] : undefined;
    if (req.command && !spec) {
      return fail(`There is no command /${req.command}: use ${Object.keys(CHAT_COMMANDS).map((c) => `/${c}`).join(', ')}.`);
    }
    const active = this.selection();
    const selected = active && !isEmpty(active.range) ? active : undefined;
    if (spec && !selected) {
      return fail(`/${req.command} works on the code selected in an editor: select it first.`);
    }
    const message = req.prompt.trim() || spec?.message;
    if (!message) {
      return fail('Ask something, or select code and use /explain, /fix, /doc or /tests.');
    }

    let session = sessionOf(context);
    const params: ChatParams = { message, session };
    if (spec) {
      params.template = spec.template;
    }
    if (active) {
      params.uri = active.uri; // the prompt gets the file's path and language
    }
    if (selected) {
      params.range = selected.range;
      stream.reference(selected.uri, selected.range);
    }
    const partial = `gemma-chat-${++this.tokens}-${Date.now()}`;
    params.partialResultToken = partial;

    let streamed = '';
    const pieces = server.onProgress(new ProgressType<ChatPiece>(), partial, (piece) => {
      session = piece.session;
      if (piece.text) {
        streamed += piece.text;
        stream.markdown(piece.text);
      }
    });
    stream.progress('Gemma is answering…');
    try {
      const result = await request<ChatResult>(server, CHAT, params, token);
      if (result.text.length > streamed.length && result.text.startsWith(streamed)) {
        stream.markdown(result.text.slice(streamed.length)); // pieces the stream did not bring
      }
      if (result.stopReason === 'max_tokens') {
        stream.markdown('\n\n*(The answer reached its length limit, `gemma.chat.max_tokens`.)*');
      }
      if (spec?.action && selected) {
        stream.button({
          command: ACTION_RUN,
          title: spec.action.title,
          arguments: [{ action: spec.action.id, uri: selected.uri, range: selected.range }],
        });
      }
      return { metadata: { session: result.session } };
    } catch (error) {
      if (token.isCancellationRequested || errorCode(error) === REQUEST_CANCELLED) {
        this.log.info(`chat: cancelled (session ${session ?? 'new'})`);
        return { metadata: { session, cancelled: true } };
      }
      this.log.error(`chat: ${errorMessage(error)}`);
      return { metadata: { session }, errorDetails: { message: errorMessage(error) } };
    } finally {
      pieces.dispose();
    }
  }
}

const OPEN_CHAT = 'workbench.action.chat.open';

/**
 * Ways into the chat from outside it: "Gemma: Ask about selection" and the light bulb's "Ask
 * Gemma about this…" and "Explain with Gemma", which answer as chat turns. They open the chat
 * view with `@gemma` typed (the answer streams there) instead of running as a command whose
 * answer VS Code would drop. When the chat view cannot be opened, the answer comes as a
 * Markdown document. Other code actions run as they are (their edit comes as `workspace/applyEdit`).
 */
export class ChatEntryPoints {
  constructor(
    private readonly api: Pick<EditorApi, 'executeCommand' | 'activeSelection' | 'showInputBox' | 'showMessage' | 'openMarkdown'>,
    private readonly server: () => ServerConnection | undefined,
  ) {}

  private async openChat(query: string, partial: boolean): Promise<boolean> {
    try {
      await this.api.executeCommand(OPEN_CHAT, partial ? { query, isPartialQuery: true } : { query });
      return true;
    } catch {
      return false;
    }
  }

  private async showAnswer(title: string, answer: Promise<unknown>): Promise<unknown> {
    try {
      const result = (await answer) as ChatResult;
      await this.api.openMarkdown(`# ${title}\n\n${result.text}\n`);
      return result;
    } catch (error) {
      void this.api.showMessage('error', `${title}: ${errorMessage(error)}`);
      return undefined;
    }
  }

  /** "Gemma: Ask about selection". */
  async askAboutSelection(): Promise<void> {
    if (await this.openChat('@gemma ', true)) {
      return;
    }
    const selection = this.api.activeSelection();
    const server = this.server();
    if (!selection || !server) {
      void this.api.showMessage('warning', server ? 'Select the code to ask about first.' : 'gemma-lsp is not running.');
      return;
    }
    const question = await this.api.showInputBox({ title: 'Ask Gemma about the selection', prompt: 'Your question' });
    if (question?.trim()) {
      const argument = { action: 'ask', uri: selection.uri, range: selection.range, question };
      await this.showAnswer(question, executeCommand(server, ACTION_RUN, argument));
    }
  }

  /** The middleware of `workspace/executeCommand`. */
  async runCodeActionCommand(command: string, args: unknown[], next: (command: string, args: unknown[]) => unknown): Promise<unknown> {
    const action = (args[0] as { action?: unknown } | undefined)?.action;
    if (command !== ACTION_RUN || (action !== 'explain' && action !== 'ask')) {
      return next(command, args);
    }
    if (await this.openChat(action === 'explain' ? '@gemma /explain' : '@gemma ', action === 'ask')) {
      return undefined;
    }
    return this.showAnswer(action === 'explain' ? 'Explain with Gemma' : 'Ask Gemma', Promise.resolve(next(command, args)));
  }
}
