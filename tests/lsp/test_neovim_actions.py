"""Code actions and chat from a real Neovim 0.7: Debian's headless Neovim drives ``gemma-lsp serve``.

tests/lsp/nvim/actions_chat.lua starts the server with Neovim's own client capabilities, lists the
code actions of a selection, runs "Write tests with Gemma" twice: once as a command through
``workspace/executeCommand`` (the server's ``workspace/applyEdit`` is applied by Neovim's own
handler), once picked from ``vim.lsp.buf.range_code_action()``'s menu as a user does (Neovim 0.7
offers resolveSupport for ``edit``, so it resolves the action and applies the edit itself). Then
it loads the chat snippet of docs/neovim.md verbatim, picks "Explain with Gemma" (which the
snippet streams into a chat buffer), chats with ``:GemmaChat`` and a follow-up in the same
session, and stops a long answer with the snippet's ``<C-c>``. The script writes what it saw as
JSON; the checks are here. One Neovim run (a few seconds) serves every test of the module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lsp_support import SERVER_COMMAND
from test_neovim import DOCS, WAIT_MS, _nvim, run_script

SCRIPT = Path(__file__).parent / "nvim" / "actions_chat.lua"
SNIPPET_MARK = "-- gemma-lsp: chat into a scratch buffer"

CODE = (
    "def circle_area(radius):\n"
    '    """The area of a circle of this radius."""\n'
    "    return math.pi * radius * 2\n"
    "\n"
    "\n"
    "print(circle_area(2))\n"
)
LINES = CODE.split("\n")[:-1]  # the buffer's lines
TITLES = [
    "Ask Gemma about this…", "Explain with Gemma", "Fix with Gemma", "Add documentation with Gemma",
    "Write tests with Gemma",
]


def _docs_snippet() -> str:
    """The chat block of docs/neovim.md, exactly as a user would copy it."""
    blocks = re.findall(r"```lua\n(.*?)```", DOCS.read_text(), flags=re.S)
    found = [block for block in blocks if block.startswith(SNIPPET_MARK)]
    assert len(found) == 1, f"docs/neovim.md needs one ```lua block starting with {SNIPPET_MARK!r}"
    return found[0]


def _inserted(text: str, line: int, new_text: str) -> str:
    """``text`` with ``new_text`` inserted at the start of ``line``."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    return text[: starts[line]] + new_text + text[starts[line] :]


def _buffer(text: str) -> str:
    """A document's text as the script reports a buffer: lines joined with \\n, no final one."""
    assert text.endswith("\n")
    return text[:-1]


@pytest.fixture(scope="module")
def run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    nvim = _nvim()
    work = tmp_path_factory.mktemp("nvim-actions")
    source = work / "geometry.py"
    source.write_text(CODE)
    snippet = work / "chat_snippet.lua"
    snippet.write_text(_docs_snippet())
    result_path = work / "result.json"
    server_log = work / "server.log"
    settings = {
        "model": {"path": str(tiny_model), "idle_unload_seconds": 0},
        "chat": {"max_tokens": 48},
        "index": {"enabled": False},
        "memory": {"sqlite_path": str(work / "memory.sqlite3"), "journal_dir": str(work / "journal")},
    }
    env = {
        "GEMMA_NVIM_CMD": json.dumps(
            [*SERVER_COMMAND, "--log-file", str(server_log)]
        ),
        "GEMMA_NVIM_INIT": json.dumps({"gemma": settings}),
        "GEMMA_NVIM_FILE": str(source),
        "GEMMA_NVIM_SNIPPET": str(snippet),
        "GEMMA_NVIM_RESULT": str(result_path),
        "GEMMA_NVIM_TIMEOUT_MS": str(WAIT_MS),
    }
    return run_script(nvim, SCRIPT, env, work, server_log)


def test_a_selection_lists_the_five_actions(run):
    assert run["nvim_version"].startswith("0.")
    assert run["code_action_provider"]["resolveProvider"] is True
    actions = run["actions"]
    assert [a["title"] for a in actions] == TITLES
    by_title = {a["title"]: a for a in actions}
    # Neovim 0.7 resolves edits: the editing actions carry data, ask and explain a command.
    for title in ("Fix with Gemma", "Add documentation with Gemma", "Write tests with Gemma"):
        assert "command" not in by_title[title] and by_title[title]["data"]["uri"].endswith("geometry.py")
    for title in ("Ask Gemma about this…", "Explain with Gemma"):
        assert by_title[title]["command"]["command"] == "gemma.action.run"
    tests = by_title["Write tests with Gemma"]
    assert tests["kind"] == "refactor.extract"
    assert tests["data"]["range"] == {"start": {"line": 0, "character": 0}, "end": {"line": 3, "character": 0}}


def test_the_tests_command_is_applied_by_neovim_through_workspace_apply_edit(run):
    response = run["command_path"]["response"]
    assert "err" not in response and response["result"] == {"applied": True, "edits": 1}, response
    assert len(run["apply_edits"]) == 1
    apply = run["apply_edits"][0]
    assert apply["answer"]["applied"] is True, apply
    assert apply["params"]["label"] == "Write tests with Gemma"
    change = apply["params"]["edit"]["documentChanges"][0]
    assert change["textDocument"]["version"] == 0  # Neovim 0.7 opens at version 0 and has not changed it
    (edit,) = change["edits"]
    assert edit["range"] == {"start": {"line": 3, "character": 0}, "end": {"line": 3, "character": 0}}
    new_text = edit["newText"]
    assert new_text.startswith("\n") and new_text.endswith("\n") and new_text.strip()
    buffer = run["command_path"]["buffer"]
    assert buffer == _buffer(_inserted(CODE, 3, new_text))
    assert buffer.split("\n")[:4] == LINES[:3] + [""]  # the selection untouched, a blank line, then tests


def test_picking_write_tests_in_the_menu_resolves_and_neovim_applies_the_edit(run):
    assert run["restored"] == _buffer(CODE)
    path = run["menu_path"]
    assert path["menu"] == TITLES and path["menu_kind"] == "codeaction"
    assert path["requests"] == ["textDocument/codeAction", "codeAction/resolve"]
    assert path["apply_edits"] == 0  # the edit came with the resolved action, not as a request
    lines = path["buffer"].split("\n")
    assert lines[:4] == LINES[:3] + [""]
    assert lines[-3:] == LINES[3:]  # the rest follows the inserted tests
    inserted = "\n".join(lines[4:-3])
    assert inserted.strip(), path["buffer"]
    assert run["notifications"] == []


def test_explain_from_the_menu_streams_into_a_chat_buffer(run):
    explain = run["explain"]
    assert explain["menu"] == TITLES
    result = explain["result"]
    assert result["text"] and result["stats"]["template"] == "explain"
    assert explain["session"] == result["session"]
    assert explain["buffer"] == "> Explain this code.\n\n" + result["text"]
    assert explain["buftype"] == "nofile"


def test_the_documented_chat_snippet_streams_the_answer_into_a_scratch_buffer(run):
    chat = run["chat"]
    first, second = chat["first"]["result"], chat["second"]["result"]
    assert chat["code_buffer_before"] == chat["code_buffer_after"] == _buffer(CODE)
    assert chat["first"]["buffer"] == "> What does circle_area return?\n\n" + first["text"]
    assert first["text"].strip() and first["stats"]["tokens_generated"] > 0
    # The follow-up, typed in the chat buffer, goes on in the same buffer and session.
    assert chat["same_buffer"] and second["session"] == first["session"]
    assert chat["second"]["buffer"] == chat["first"]["buffer"] + "\n\n> And why?\n\n" + second["text"]
    turns = chat["history"]["turns"]
    assert [(t["role"], t["cut"]) for t in turns] == [("user", False), ("assistant", False)] * 2
    assert [t["text"] for t in turns] == ["What does circle_area return?", first["text"], "And why?", second["text"]]
    # The pieces came as $/progress partial results with the snippet's tokens, several per answer.
    pieces = run["partial_tokens"]
    assert set(pieces) == {"gemma-chat-1", "gemma-chat-2", "gemma-chat-3", "gemma-chat-4"}  # 4: the cancelled one
    assert all(pieces[f"gemma-chat-{n}"] >= 2 for n in (1, 2, 3)), pieces


def test_work_done_progress_and_a_clean_shutdown(run):
    titles = [p.get("title") for p in run["progress"] if p.get("kind") == "begin"]
    assert titles.count("Write tests with Gemma") == 2, titles
    assert run["messages"] == [], "the server told the user something went wrong"
    assert run["server_exit"] == {"code": 0, "signal": 0}
    bad = [line for line in run["server_log"].splitlines() if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line)]
    assert bad == [], "\n".join(bad)
    nvim_errors = [line for line in run["nvim_lsp_log_text"].splitlines() if "[ERROR]" in line]
    assert nvim_errors == [], "\n".join(nvim_errors)


def test_ctrl_c_in_the_chat_buffer_stops_the_answer_and_the_server_keeps_it_cut(run):
    cancel = run["cancel"]
    last = cancel["last_turn"]
    assert last["role"] == "assistant" and last["cut"] is True and last["text"], last
    assert cancel["stats"]["cancelled"] >= 1 and cancel["stats"]["max_tokens_after_cancel"] <= 1
    prefix = cancel["before"] + "\n\n> Tell me a long story.\n\n"
    assert cancel["buffer"].startswith(prefix) and cancel["buffer"].endswith(" [stopped]")
    shown = cancel["buffer"][len(prefix) : -len(" [stopped]")]
    # The buffer shows what streamed before <C-c>; the server kept that, and at most a piece more.
    assert shown and last["text"].startswith(shown), (shown, last["text"])
    assert len(last["text"]) < 4000 and cancel["pieces"] >= 3
    assert "result" not in cancel  # Neovim 0.7 never calls a cancelled request's handler
