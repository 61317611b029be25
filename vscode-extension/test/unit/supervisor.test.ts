import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Discovery } from '../../src/discovery';
import { ModelState } from '../../src/modelState';
import { RestartPolicy } from '../../src/restartPolicy';
import { Status } from '../../src/status';
import { OPEN_SETTINGS, RESTART, SHOW_LOG, ServerSupervisor, type RunningClient, type ServerCommand } from '../../src/supervisor';
import { FakeApi, FakeLog, FakeServer, FakeStatusView, ManualTimers, settle } from '../support/fakes';

class FakeClient extends FakeServer implements RunningClient {
  state: 'new' | 'running' | 'stopped' | 'disposed' = 'new';
  startError: Error | undefined;
  startGate: Promise<void> = Promise.resolve();

  constructor(
    readonly command: ServerCommand,
    readonly crash: (why: string) => void,
    readonly log: string[],
  ) {
    super();
    this.handlers['gemma/stats'] = () => ({ loaded: true, load_error: null, model: { path: '/m/tiny.gguf', architecture: 'gemma3' } });
  }

  async start(): Promise<void> {
    this.log.push(`start ${this.command.args.join(' ')}`);
    await this.startGate;
    if (this.startError) {
      throw this.startError;
    }
    this.state = 'running';
  }

  async stop(): Promise<void> {
    this.log.push('stop');
    this.state = 'stopped';
  }

  async dispose(): Promise<void> {
    this.state = 'disposed';
  }
}

function harness(found: Discovery = { found: true, command: '/venv/bin/gemma-lsp', source: 'workspace venv' }, maxRestarts = 2) {
  const events: string[] = [];
  const clients: FakeClient[] = [];
  const api = new FakeApi();
  const view = new FakeStatusView();
  const status = new Status(view);
  const timers = new ManualTimers();
  const log = new FakeLog();
  let now = 0;
  let nextStartError: Error | undefined;
  let logShown = 0;
  const supervisor = new ServerSupervisor({
    discover: () => found,
    serverArgs: () => ['-v'],
    createClient: (command, crashed) => {
      const client = new FakeClient(command, crashed, events);
      client.startError = nextStartError;
      nextStartError = undefined;
      clients.push(client);
      return client;
    },
    policy: new RestartPolicy(() => maxRestarts, () => 180_000),
    status,
    model: new ModelState(status, timers),
    log,
    api,
    showLog: () => logShown++,
    timers,
    now: () => now,
  });
  return {
    supervisor, clients, events, api, view, status, timers, log,
    advance: (ms: number) => (now += ms),
    failNextStart: (error: Error) => (nextStartError = error),
    logShown: () => logShown,
  };
}

test('start runs `gemma-lsp serve` with the extra arguments and the status follows the model', async () => {
  const h = harness();
  await h.supervisor.start();
  await settle();
  assert.deepEqual(h.clients[0].command, { command: '/venv/bin/gemma-lsp', args: ['serve', '-v'] });
  assert.equal(h.supervisor.connection, h.clients[0]);
  assert.deepEqual(h.view.shown.map((s) => s.text), ['$(circle-slash) Gemma', '$(loading~spin) Gemma', '$(sparkle) Gemma']);
  assert.match(h.view.last.tooltip, /Ready: tiny\.gguf \(gemma3\)/);
});

test('a crashed server starts again after a growing pause, then stays stopped and says why', async () => {
  const h = harness(undefined, 2);
  await h.supervisor.start();
  h.clients[0].crash('the server process ended');
  assert.equal(h.supervisor.connection, undefined);
  assert.deepEqual(h.timers.waiting, [1000]);
  assert.match(h.view.last.tooltip, /starting it again in 1 s/);
  h.timers.fire();
  await h.supervisor.idle();
  assert.equal(h.clients.length, 2);
  assert.equal(h.clients[0].state, 'disposed');
  assert.equal(h.supervisor.connection, h.clients[1]);

  h.advance(5000);
  h.clients[1].crash('the server process ended');
  assert.deepEqual(h.timers.waiting, [2000]);
  h.timers.fire();
  await h.supervisor.idle();

  h.advance(5000);
  h.api.messageAnswers.push(SHOW_LOG);
  h.clients[2].crash('the server process ended');
  await settle();
  assert.deepEqual(h.timers.waiting, []); // a third crash within 3 minutes: no more restarts
  assert.equal(h.clients.length, 3);
  const told = h.api.messages.at(-1)!;
  assert.equal(told.kind, 'error');
  assert.match(told.message, /stopped 3 times within 3 minutes \(gemma\.server\.maxRestarts is 2\).*Last: the server process ended/);
  assert.deepEqual(told.actions, [SHOW_LOG, RESTART]);
  assert.equal(h.logShown(), 1);
  assert.equal(h.view.last.text, '$(circle-slash) Gemma');
  assert.equal(h.view.last.background, 'error');
});

test('"Restart" on the crash message starts the server again with a fresh count', async () => {
  const h = harness(undefined, 0);
  await h.supervisor.start();
  h.api.messageAnswers.push(RESTART);
  h.clients[0].crash('the server process ended');
  await settle();
  await h.supervisor.idle();
  assert.equal(h.clients.length, 2);
  assert.equal(h.supervisor.connection, h.clients[1]);
});

test('a server that fails to start counts as a crash, once even if the client also reports it closed', async () => {
  const h = harness();
  h.failNextStart(new Error('spawn ENOENT'));
  const first = h.supervisor.start();
  await settle();
  h.clients[0].crash('the server process ended'); // vscode-languageclient may report both
  await first;
  assert.deepEqual(h.timers.waiting, [1000]);
  assert.match(h.log.lines.join('\n'), /it did not start: spawn ENOENT/);
  h.timers.fire();
  await h.supervisor.idle();
  assert.equal(h.supervisor.connection, h.clients[1]);
});

test('a missing server is reported with a button to its setting, and not retried', async () => {
  const h = harness({ found: false, setting: false, message: 'gemma-lsp is not on PATH. Install it.' });
  h.api.messageAnswers.push(OPEN_SETTINGS);
  await h.supervisor.start();
  await settle();
  assert.equal(h.clients.length, 0);
  assert.deepEqual(h.api.messages[0], { kind: 'error', message: 'gemma-lsp is not on PATH. Install it.', actions: [OPEN_SETTINGS] });
  assert.deepEqual(h.api.settingsOpened, ['gemma.server.path']);
  assert.deepEqual(h.timers.waiting, []);
  assert.match(h.view.last.tooltip, /not running: gemma-lsp is not on PATH/);
});

test('restarts are serialized: never two servers at once, and a stopped client cannot trigger a restart', async () => {
  const h = harness();
  await h.supervisor.start();
  const a = h.supervisor.restart('gemma.server.args changed');
  const b = h.supervisor.restart('gemma.server.path changed');
  await Promise.all([a, b]);
  assert.deepEqual(h.events, ['start serve -v', 'stop', 'start serve -v', 'stop', 'start serve -v']);
  assert.deepEqual(h.clients.map((c) => c.state), ['disposed', 'disposed', 'running']);
  h.clients[0].crash('late news from an old process');
  assert.deepEqual(h.timers.waiting, []);
  assert.equal(h.supervisor.connection, h.clients[2]);
  await h.supervisor.stop();
  assert.equal(h.supervisor.connection, undefined);
  assert.equal(h.clients[2].state, 'disposed');
});
