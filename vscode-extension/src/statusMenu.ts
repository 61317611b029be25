/**
 * The quick pick the status bar item opens: pause or resume completions, pick the completions'
 * sampler preset, rebuild the index, remember the selection, search or forget memories, restart
 * the server, show the log.
 */
import type { Configuration, EditorApi, QuickPickItem } from './editorApi';
import { CLIENT, userValue, type ContributedSetting } from './settings';

export interface MenuActions {
  rebuildIndex(): unknown;
  rememberSelection(): unknown;
  searchMemories(): unknown;
  forgetMemories(): unknown;
  restart(): unknown;
  showLog(): unknown;
}

interface MenuItem extends QuickPickItem {
  run(): unknown;
}

type SamplerSpec = { type: string } & Record<string, unknown>;

export const PRESET_KEY = 'completion.preset';

/** The sampler presets the server knows: its built-in ones (package.json's default) and the user's. */
export function presets(config: Configuration, contributed: ContributedSetting[]): Record<string, SamplerSpec[]> {
  const builtIn = contributed.find((s) => s.key === 'sampling.presets')?.default;
  const own = userValue(config, 'sampling.presets');
  return { ...((builtIn ?? {}) as Record<string, SamplerSpec[]>), ...((own ?? {}) as Record<string, SamplerSpec[]>) };
}

/** The preset completions use now: `completion.preset`, else `sampling.features.completion`, else `completion`. */
export function currentPreset(config: Configuration): string {
  const chosen = config.get<string | null>(PRESET_KEY);
  if (chosen) {
    return chosen;
  }
  const features = config.get<Record<string, string>>('sampling.features');
  return features?.completion ?? 'completion';
}

export function describeChain(chain: SamplerSpec[]): string {
  return chain
    .map(({ type, ...params }) => {
      const values = Object.entries(params)
        .filter(([name]) => name !== 'min_keep')
        .map(([, value]) => String(value));
      return values.length ? `${type} ${values.join(' ')}` : type;
    })
    .join(' · ');
}

export class StatusMenu {
  constructor(
    private readonly api: Pick<EditorApi, 'showQuickPick'>,
    private readonly config: () => Configuration,
    private readonly contributed: ContributedSetting[],
    private readonly actions: MenuActions,
  ) {}

  items(): MenuItem[] {
    const config = this.config();
    const paused = config.get<boolean>(CLIENT.paused) === true;
    return [
      paused
        ? { label: '$(play) Resume inline completions', run: () => config.update(CLIENT.paused, false) }
        : { label: '$(debug-pause) Pause inline completions', run: () => config.update(CLIENT.paused, true) },
      { label: '$(settings) Sampler preset for completions…', description: currentPreset(config), run: () => this.pickPreset() },
      { label: '$(refresh) Rebuild the index', run: () => this.actions.rebuildIndex() },
      { label: '$(bookmark) Remember the selection', run: () => this.actions.rememberSelection() },
      { label: '$(search) Search memories…', run: () => this.actions.searchMemories() },
      { label: '$(trash) Forget memories…', run: () => this.actions.forgetMemories() },
      { label: '$(debug-restart) Restart the server', run: () => this.actions.restart() },
      { label: '$(output) Show the log', run: () => this.actions.showLog() },
    ];
  }

  async open(): Promise<void> {
    const picked = await this.api.showQuickPick(this.items(), { title: 'Gemma' });
    await picked?.run();
  }

  /** Pick the completions' sampler preset; it is written to `gemma.completion.preset`. Returns the pick. */
  async pickPreset(): Promise<string | undefined> {
    const config = this.config();
    const current = currentPreset(config);
    const items = Object.entries(presets(config, this.contributed)).map(([name, chain]) => ({
      label: name,
      description: name === current ? 'in use' : undefined,
      detail: describeChain(chain),
      picked: name === current,
    }));
    const picked = await this.api.showQuickPick(items, { title: 'Sampler preset for inline completions', placeHolder: current });
    if (!picked || picked.label === current) {
      return undefined;
    }
    await config.update(PRESET_KEY, picked.label);
    return picked.label;
  }
}
