import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CHAT_COMMANDS, ChatEntryPoints, ChatParticipant, PARTICIPANT_ID, sessionOf, type ChatStreamLike } from '../../src/chat';
import type { EditorSelection } from '../../src/editorApi';
import type { ChatParams } from '../../src/protocol';
import { CancellationSource, FakeApi, FakeLog, FakeServer, NO_CANCEL, selection } from '../support/fakes';

class RecordingStream implements ChatStreamLike {
  readonly parts: string[] = [];
  readonly references: { uri: string }[] = [];
  readonly buttons: { command: string; title: string; arguments?: unknown[] }[] = [];
  markdown(text: string): void {
    this.parts.push(text);
  }
  progress(): void {}
  reference(uri: string): void {
    this.references.push({ uri });
  }
  button(command: { command: string; title: string; arguments?: unknown[] }): void {
    this.buttons.push(command);
  }
  get text(): string {
    return this.parts.join('');
  }
}

/** A server whose gemma/chat streams `pieces` on the partial-result token, then answers. */
function chatServer(pieces: string[], session = 'a1b2c3d4e5f6', stopReason = 'stop_token') {
  const server = new FakeServer();
  server.handlers['gemma/chat'] = (params) => {
    const p = params as ChatParams;
    for (const text of pieces) {
      server.progress(p.partialResultToken!, { text, session });
    }
    return { session, text: pieces.join(''), stopReason, stats: {} };
  };
  return server;
}

function participant(server: FakeServer | undefined, active: EditorSelection | undefined = undefined) {
  return new ChatParticipant(() => server, () => active, new FakeLog());
}

test('the answer streams piece by piece into the response, and the session is kept for the next turn', async () => {
  const server = chatServer(['The area', ' is pi', ' r squared.']);
  const stream = new RecordingStream();
  const result = await participant(server).handle({ prompt: 'What is the area of a circle?' }, { history: [] }, stream, NO_CANCEL);
  assert.deepEqual(stream.parts, ['The area', ' is pi', ' r squared.']);
  assert.deepEqual(result, { metadata: { session: 'a1b2c3d4e5f6' } });
  const sent = server.sent('gemma/chat')[0] as ChatParams;
  assert.equal(sent.message, 'What is the area of a circle?');
  assert.equal(sent.session, undefined);
  assert.equal(sent.template, undefined);
  assert.match(sent.partialResultToken!, /^gemma-chat-/);
  assert.equal(server.progressHandlers.size, 0); // the partial-result handler is gone

  const history = [{ participant: PARTICIPANT_ID, result }];
  await participant(server).handle({ prompt: 'And its perimeter?' }, { history }, new RecordingStream(), NO_CANCEL);
  assert.equal((server.sent('gemma/chat')[1] as ChatParams).session, 'a1b2c3d4e5f6');
});

test('text the stream did not bring is added from the result, and a cut answer says so', async () => {
  const server = new FakeServer();
  server.handlers['gemma/chat'] = (params) => {
    server.progress((params as ChatParams).partialResultToken!, { text: 'Hello', session: 's' });
    return { session: 's', text: 'Hello world', stopReason: 'max_tokens', stats: {} };
  };
  const stream = new RecordingStream();
  await participant(server).handle({ prompt: 'hi' }, { history: [] }, stream, NO_CANCEL);
  assert.equal(stream.parts[0] + stream.parts[1], 'Hello world');
  assert.match(stream.text, /reached its length limit, `gemma\.chat\.max_tokens`/);
});

test('each slash command uses its template on the selection; /fix offers to apply the fix in place', async () => {
  const active = selection();
  for (const [command, spec] of Object.entries(CHAT_COMMANDS)) {
    const server = chatServer(['```python\n', 'x\n', '```']);
    const stream = new RecordingStream();
    await participant(server, active).handle({ prompt: '', command }, { history: [] }, stream, NO_CANCEL);
    const sent = server.sent('gemma/chat')[0] as ChatParams;
    assert.deepEqual([sent.template, sent.message, sent.uri, sent.range], [spec.template, spec.message, active.uri, active.range], command);
    assert.deepEqual(stream.references, [{ uri: active.uri }]);
    assert.equal(stream.buttons.length, spec.action ? 1 : 0, command);
  }
  const server = chatServer(['ok']);
  const stream = new RecordingStream();
  await participant(server, active).handle({ prompt: 'the area is wrong', command: 'fix' }, { history: [] }, stream, NO_CANCEL);
  assert.equal((server.sent('gemma/chat')[0] as ChatParams).message, 'the area is wrong');
  assert.deepEqual(stream.buttons[0], {
    command: 'gemma.action.run',
    title: 'Fix the selection in place',
    arguments: [{ action: 'fix', uri: active.uri, range: active.range }],
  });
});

test('a slash command without a selection, an unknown command and a stopped server are answered without a request', async () => {
  const server = chatServer(['x']);
  const cursorOnly = { ...selection(), range: { start: { line: 1, character: 2 }, end: { line: 1, character: 2 } } };
  for (const [request, said] of [
    [{ prompt: '', command: 'explain' }, /select it first/],
    [{ prompt: 'x', command: 'refactor' }, /no command \/refactor: use \/explain, \/fix, \/doc, \/tests/],
    [{ prompt: '  ' }, /Ask something/],
  ] as const) {
    const stream = new RecordingStream();
    const result = await participant(server, cursorOnly).handle(request, { history: [] }, stream, NO_CANCEL);
    assert.match(result.errorDetails!.message, said);
    assert.match(stream.text, said);
  }
  assert.equal(server.requests.length, 0);
  const stopped = await participant(undefined).handle({ prompt: 'hi' }, { history: [] }, new RecordingStream(), NO_CANCEL);
  assert.match(stopped.errorDetails!.message, /not running/);
});

test('a plain question sends the file and a non-empty selection with it', async () => {
  const server = chatServer(['x']);
  await participant(server, selection()).handle({ prompt: 'why?' }, { history: [] }, new RecordingStream(), NO_CANCEL);
  const sent = server.sent('gemma/chat')[0] as ChatParams;
  assert.equal(sent.uri, selection().uri);
  assert.deepEqual(sent.range, selection().range);
  assert.equal(sent.template, undefined);
});

test('cancelling in the chat view cancels the request: what streamed stays, no error is shown', async () => {
  const server = new FakeServer();
  const cancel = new CancellationSource();
  let tokenSeen = false;
  server.handlers['gemma/chat'] = (params, token) => {
    tokenSeen = token === cancel.token;
    server.progress((params as ChatParams).partialResultToken!, { text: 'Partial', session: 'new-session' });
    cancel.cancel();
    throw Object.assign(new Error('Request cancelled'), { code: -32800 });
  };
  const stream = new RecordingStream();
  const result = await participant(server).handle({ prompt: 'long story' }, { history: [] }, stream, cancel.token);
  assert.ok(tokenSeen, 'the chat view token goes with the request');
  assert.deepEqual(result, { metadata: { session: 'new-session', cancelled: true } });
  assert.equal(stream.text, 'Partial');
});

test('a server error ends the turn with its message', async () => {
  const server = new FakeServer();
  server.handlers['gemma/chat'] = () => {
    throw Object.assign(new Error('gemma/chat: there is no sampler preset \'loud\''), { code: -32602 });
  };
  const result = await participant(server).handle({ prompt: 'hi' }, { history: [] }, new RecordingStream(), NO_CANCEL);
  assert.match(result.errorDetails!.message, /no sampler preset 'loud'/);
});

test('the session comes from the last answer of this participant', () => {
  assert.equal(sessionOf({ history: [] }), undefined);
  const history = [
    { participant: PARTICIPANT_ID, result: { metadata: { session: 'old' } } },
    { participant: 'someone.else', result: { metadata: { session: 'theirs' } } },
    { participant: PARTICIPANT_ID, result: { metadata: { session: 'new' } } },
    { participant: PARTICIPANT_ID },
  ];
  assert.equal(sessionOf({ history }), 'new');
});

test('ask and explain from the light bulb open the chat; other actions run as commands', async () => {
  const api = new FakeApi();
  const entry = new ChatEntryPoints(api, () => undefined);
  const ran: string[] = [];
  const next = (command: string, args: unknown[]) => {
    ran.push(`${command} ${(args[0] as { action: string }).action}`);
    return { session: 's', text: 'It computes an area.' };
  };
  await entry.runCodeActionCommand('gemma.action.run', [{ action: 'explain' }], next);
  await entry.runCodeActionCommand('gemma.action.run', [{ action: 'ask' }], next);
  await entry.runCodeActionCommand('gemma.action.run', [{ action: 'tests' }], next);
  assert.deepEqual(api.commands, [
    { command: 'workbench.action.chat.open', args: [{ query: '@gemma /explain' }] },
    { command: 'workbench.action.chat.open', args: [{ query: '@gemma ', isPartialQuery: true }] },
  ]);
  assert.deepEqual(ran, ['gemma.action.run tests']);
});

test('without a chat view, explain answers in a Markdown document and "Ask about selection" asks for the question', async () => {
  const api = new FakeApi();
  api.failingCommands.add('workbench.action.chat.open');
  const server = new FakeServer();
  server.commandHandlers['gemma.action.run'] = (arg) => ({ session: 's', text: `You asked: ${(arg as { question: string }).question}` });
  const entry = new ChatEntryPoints(api, () => server);
  const answer = await entry.runCodeActionCommand('gemma.action.run', [{ action: 'explain' }], () => ({ session: 's', text: 'It computes an area.' }));
  assert.deepEqual(answer, { session: 's', text: 'It computes an area.' });
  assert.deepEqual(api.markdown, ['# Explain with Gemma\n\nIt computes an area.\n']);

  api.selection = selection();
  api.inputAnswers.push('Why pi?');
  await entry.askAboutSelection();
  assert.deepEqual(server.sent('workspace/executeCommand')[0], {
    command: 'gemma.action.run',
    arguments: [{ action: 'ask', uri: api.selection.uri, range: api.selection.range, question: 'Why pi?' }],
  });
  assert.equal(api.markdown[1], '# Why pi?\n\nYou asked: Why pi?\n');
});
