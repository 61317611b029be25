"""Code actions end to end over stdio: listed at once, run with progress, applied as one
workspace/applyEdit of minimal edits inside the selection (or returned by codeAction/resolve),
and explain answering as a chat turn."""

from __future__ import annotations

import time

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from gemma_lsp import protocol
from gemma_lsp.actions import apply, TextChange
from gemma_lsp.lsp.client import EditorSession, file_uri

CODE = "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius * 2\n\n\nprint(circle_area(2))\n"
SELECTION = lsp.Range(start=lsp.Position(line=3, character=0), end=lsp.Position(line=5, character=0))


async def started(tmp_path, model, resolve_edits=False) -> tuple[EditorSession, str]:
    root = tmp_path / "ws"
    root.mkdir(exist_ok=True)
    path = root / "geometry.py"
    path.write_text(CODE)
    editor = EditorSession(
        settings={
            "model": {"path": str(model), "idle_unload_seconds": 0},
            "chat": {"max_tokens": 48},
            "memory": {"sqlite_path": str(tmp_path / "m.sqlite3"), "journal_dir": str(tmp_path / "j")},
            "index": {"enabled": False},
        },
        root=root, resolve_edits=resolve_edits,
    )
    await editor.start()
    uri = file_uri(path)
    editor.open(uri, CODE)
    return editor, uri


@pytest.fixture
async def editor(tmp_path, tiny_model):
    editor, uri = await started(tmp_path, tiny_model)
    yield editor, uri
    await editor.stop()


def offsets(text: str, rng: lsp.Range) -> tuple[int, int]:
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    return starts[rng.start.line] + rng.start.character, starts[rng.end.line] + rng.end.character


async def test_a_selection_lists_every_action_at_once_without_the_model(editor):
    session, uri = editor
    started_at = time.perf_counter()
    actions = await session.code_actions(uri, SELECTION)
    elapsed = time.perf_counter() - started_at
    assert [a.title for a in actions] == [
        "Ask Gemma about this…", "Explain with Gemma", "Fix with Gemma", "Add documentation with Gemma",
        "Write tests with Gemma",
    ]
    assert {a.kind for a in actions} == {"refactor", "quickfix", "refactor.rewrite", "refactor.extract"}
    assert all(list(a.tags) == [lsp.CodeActionTag.LlmGenerated] for a in actions)
    assert all(a.command and a.command.command == protocol.ACTION_RUN for a in actions)
    assert (await session.stats())["requests"] == 0 and elapsed < 2  # no model work to list them


async def test_a_diagnostic_without_a_selection_offers_the_fix(editor):
    session, uri = editor
    here = lsp.Range(start=lsp.Position(line=4, character=4), end=lsp.Position(line=4, character=4))
    problem = lsp.Diagnostic(range=lsp.Range(start=lsp.Position(line=4, character=11), end=lsp.Position(line=4, character=31)),
                             message="the area is pi r squared")
    actions = await session.code_actions(uri, here, [problem])
    assert [a.title for a in actions] == ["Fix with Gemma"] and list(actions[0].diagnostics) == [problem]
    argument = actions[0].command.arguments[0]
    assert argument["diagnostics"][0]["message"] == "the area is pi r squared"


async def test_an_edit_is_applied_as_minimal_edits_inside_the_selection(editor):
    session, uri = editor
    action = next(a for a in await session.code_actions(uri, SELECTION) if a.title == "Add documentation with Gemma")
    try:
        result = await session.execute(action.command.command, action.command.arguments[0])
    except JsonRpcException as exc:  # the random model's answer may hold no change at all
        assert "no change" in str(exc)
        return
    assert result["applied"] and len(session.applied) == 1
    change = session.applied[0].document_changes[0]
    assert change.text_document.uri == uri and change.text_document.version == 1
    start, end = offsets(CODE, SELECTION)
    for edit in change.edits:
        s, e = offsets(CODE, edit.range)
        assert start <= s <= e <= end  # nothing outside the selection moves
    changes = [TextChange(*offsets(CODE, e.range), e.new_text) for e in change.edits]
    new = apply(CODE, changes)
    assert new[:start] == CODE[:start] and new.endswith(CODE[end:])
    assert any(p.startswith("begin: Add documentation with Gemma") for p in session.progress)


async def test_write_tests_inserts_below_the_selection(editor):
    session, uri = editor
    action = next(a for a in await session.code_actions(uri, SELECTION) if a.title == "Write tests with Gemma")
    result = await session.execute(action.command.command, action.command.arguments[0])
    assert result == {"applied": True, "edits": 1}
    edit = session.applied[0].document_changes[0].edits[0]
    assert edit.range.start == edit.range.end == lsp.Position(line=5, character=0) and edit.new_text.strip()


async def test_explain_answers_as_a_chat_turn(editor):
    session, uri = editor
    action = next(a for a in await session.code_actions(uri, SELECTION) if a.title == "Explain with Gemma")
    answer = await session.execute(action.command.command, action.command.arguments[0])
    assert answer["text"] and answer["session"] and not session.applied
    history = await session.request(protocol.CHAT_HISTORY, {"session": answer["session"]})
    assert history["turns"][0]["text"] == "Explain this code."


async def test_clients_that_resolve_get_the_edit_from_code_action_resolve(tmp_path, tiny_model):
    session, uri = await started(tmp_path, tiny_model, resolve_edits=True)
    try:
        action = next(a for a in await session.code_actions(uri, SELECTION) if a.title == "Write tests with Gemma")
        assert action.command is None and action.edit is None and action.data["action"] == "tests"
        resolved = await session.client.code_action_resolve_async(action)
        edits = resolved.edit.document_changes[0].edits
        assert len(edits) == 1 and edits[0].range.start == lsp.Position(line=5, character=0)
        assert not session.applied  # the client applies a resolved edit itself
    finally:
        await session.stop()


async def test_a_bad_action_is_named(editor):
    session, uri = editor
    with pytest.raises(JsonRpcException, match="gemma.action.run: action: Input should be 'ask', 'explain', 'fix', 'document' or 'tests'"):
        await session.execute(protocol.ACTION_RUN, {"action": "refactor-everything", "uri": uri})
    with pytest.raises(JsonRpcException, match="is not open"):
        await session.execute(protocol.ACTION_RUN, {"action": "fix", "uri": "file:///nope.py",
                                                    "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}})


@pytest.mark.parametrize(
    ("argument", "said"),
    [
        ({"action": "fix"}, "gemma.action.run: uri: Field required"),
        ({"action": "fix", "uri": "URI"}, "gemma.action.run: range: Field required"),
        ({"action": "ask", "uri": "URI", "range": "RANGE", "question": 5}, "gemma.action.run: question: Input should be a valid string"),
        ({"action": "document", "uri": "URI", "range": {"start": {"line": 90, "character": 0}, "end": {"line": 91, "character": 0}}},
         "outside .* which has 9 lines"),
    ],
)
async def test_each_missing_or_bad_argument_is_named(editor, argument, said):
    session, uri = editor
    rng = {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}}
    argument = {k: (uri if v == "URI" else rng if v == "RANGE" else v) for k, v in argument.items()}
    with pytest.raises(JsonRpcException, match=said):
        await session.execute(protocol.ACTION_RUN, argument)
