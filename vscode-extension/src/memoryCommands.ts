/**
 * The memory commands of the command palette (and of the status menu): remember the selection,
 * search memories (a pick opens the code a memory came from), forget memories, rebuild the index.
 */
import type { EditorApi, QuickPickItem } from './editorApi';
import {
  INDEX_REBUILD,
  MEMORY_FORGET,
  MEMORY_REMEMBER,
  MEMORY_SEARCH,
  errorMessage,
  executeCommand,
  type MemoryHit,
  type ServerConnection,
} from './protocol';

type Api = Pick<EditorApi, 'activeSelection' | 'showMessage' | 'showInputBox' | 'showQuickPick' | 'showQuickPickMany' | 'openLocation'>;

interface HitItem extends QuickPickItem {
  hit: MemoryHit;
}

/** What gemma.index.rebuild answers (secret files are counted, never shown). */
export interface IndexResult {
  files: number;
  chunks_written: number;
  secrets_skipped?: number;
}

const SEARCH_RESULTS = 20;

function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > 100 ? `${line.slice(0, 99)}…` : line;
}

function where(hit: MemoryHit): string | undefined {
  const uri = hit.source?.uri;
  if (!uri) {
    return undefined;
  }
  const file = decodeURIComponent(uri.replace(/^file:\/\//, ''));
  const line = hit.source?.range ? `:${hit.source.range.start.line + 1}` : '';
  return `${file}${line}`;
}

export function hitItem(hit: MemoryHit): HitItem {
  return {
    label: firstLine(hit.text) || hit.id,
    description: `${hit.kind} · ${hit.tier} · ${hit.score.toFixed(3)}`,
    detail: where(hit),
    hit,
  };
}

export class MemoryCommands {
  constructor(
    private readonly api: Api,
    private readonly server: () => ServerConnection | undefined,
  ) {}

  private running(): ServerConnection | undefined {
    const server = this.server();
    if (!server) {
      void this.api.showMessage('error', 'gemma-lsp is not running.');
    }
    return server;
  }

  /** Store the selected code as a long-term note. Returns the memory's id. */
  async rememberSelection(): Promise<string | undefined> {
    const server = this.running();
    const selection = this.api.activeSelection();
    if (!server) {
      return undefined;
    }
    if (!selection || !selection.text.trim()) {
      void this.api.showMessage('warning', 'Select the code to remember first.');
      return undefined;
    }
    try {
      const memory = await executeCommand<{ id: string }>(server, MEMORY_REMEMBER, { uri: selection.uri, range: selection.range });
      void this.api.showMessage('info', `Gemma remembers the selection (memory ${memory.id}).`);
      return memory.id;
    } catch (error) {
      void this.api.showMessage('error', `Remembering failed: ${errorMessage(error)}`);
      return undefined;
    }
  }

  private async search(title: string): Promise<MemoryHit[] | undefined> {
    const server = this.running();
    if (!server) {
      return undefined;
    }
    const query = await this.api.showInputBox({ title, prompt: 'What to look for (words, or a question)' });
    if (!query?.trim()) {
      return undefined;
    }
    try {
      return await executeCommand<MemoryHit[]>(server, MEMORY_SEARCH, { query, k: SEARCH_RESULTS });
    } catch (error) {
      void this.api.showMessage('error', `Searching memories failed: ${errorMessage(error)}`);
      return undefined;
    }
  }

  /** Search, pick a result, and open the code it came from. Returns the picked memory. */
  async searchMemories(): Promise<MemoryHit | undefined> {
    const hits = await this.search('Gemma: Search memories');
    if (!hits) {
      return undefined;
    }
    if (hits.length === 0) {
      void this.api.showMessage('info', 'No memory matches.');
      return undefined;
    }
    const picked = await this.api.showQuickPick(hits.map(hitItem), { title: 'Memories', placeHolder: 'Pick one to open its source' });
    if (!picked) {
      return undefined;
    }
    if (picked.hit.source?.uri) {
      await this.api.openLocation(picked.hit.source.uri, picked.hit.source.range);
    } else {
      void this.api.showMessage('info', picked.hit.text);
    }
    return picked.hit;
  }

  /** Search, pick any number of results, forget them. Returns how many were forgotten. */
  async forgetMemories(): Promise<number> {
    const hits = await this.search('Gemma: Forget memories');
    const server = this.server();
    if (!hits || !server) {
      return 0;
    }
    if (hits.length === 0) {
      void this.api.showMessage('info', 'No memory matches.');
      return 0;
    }
    const picked = await this.api.showQuickPickMany(hits.map(hitItem), { title: 'Forget memories', placeHolder: 'Pick the memories to forget' });
    if (!picked || picked.length === 0) {
      return 0;
    }
    try {
      const result = await executeCommand<{ forgotten: number }>(server, MEMORY_FORGET, { ids: picked.map((p) => p.hit.id) });
      void this.api.showMessage('info', `Forgot ${result.forgotten} of ${picked.length} memories.`);
      return result.forgotten;
    } catch (error) {
      void this.api.showMessage('error', `Forgetting failed: ${errorMessage(error)}`);
      return 0;
    }
  }

  /** Index the workspace again (changed files only); the server shows the progress. */
  async rebuildIndex(): Promise<IndexResult | undefined> {
    const server = this.running();
    if (!server) {
      return undefined;
    }
    try {
      const result = await executeCommand<IndexResult>(server, INDEX_REBUILD);
      const secrets = result.secrets_skipped ? `; ${result.secrets_skipped} secret files left out` : '';
      void this.api.showMessage('info', `Indexed ${result.files} files: ${result.chunks_written} chunks written${secrets}.`);
      return result;
    } catch (error) {
      void this.api.showMessage('error', `Indexing failed: ${errorMessage(error)}`);
      return undefined;
    }
  }
}
