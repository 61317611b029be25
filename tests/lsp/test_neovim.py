"""Neovim as a real client: Debian's headless Neovim drives ``gemma-lsp serve`` over stdio.

tests/lsp/nvim/lsp_roundtrip.lua starts the server with ``vim.lsp.start_client`` (Neovim 0.7+),
opens a Python file, asks for ``textDocument/completion`` and ``textDocument/inlineCompletion``,
edits the buffer three ways (``nvim_buf_set_lines``, ``nvim_buf_set_text``, applying the
completion's text edit) and asks again after each; Neovim sends didOpen/didChange itself. The
script writes what it saw as JSON; the checks are here. Neovim runs twice per module: speaking
UTF-16 columns (what 0.7 speaks) and offering UTF-8 first (as newer Neovims do by default).

test_the_documented_config_completes_through_omnifunc loads the 0.7 – 0.11 config from
docs/neovim.md verbatim as init.lua and completes with <C-x><C-o> (tests/lsp/nvim/omnifunc_check.lua).

Without ``nvim`` the tests are skipped, unless ``$CI`` is set: then they fail (``make test``
installs Neovim).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_support import SERVER_COMMAND

SCRIPT = Path(__file__).parent / "nvim" / "lsp_roundtrip.lua"
OMNIFUNC_SCRIPT = Path(__file__).parent / "nvim" / "omnifunc_check.lua"
DOCS = Path(__file__).parents[2] / "docs" / "neovim.md"
DOCS_CONFIG_MARK = "-- gemma-lsp: Neovim 0.7 – 0.11"
DOCS_MODEL = Path("models") / "gemma-3-1b-it-q4_0.gguf"  # under $HOME, as the docs' config says
WAIT_MS = 20_000  # every single wait inside Neovim
RUN_TIMEOUT_S = 90  # the whole Neovim run
MIN_VERSION = (0, 7)

TEXT = 'import os\n\n\ndef greet(name: str) -> str:\n    """Say hello."""\n    return f"hello {name}"\n\n\ndef main():\n    \n'
# The buffer after each of the script's edits (Neovim's lines joined with "\n", no final newline).
OPENED = TEXT[:-1]
SET_LINES = OPENED[: -len("    ")] + '    name = "wörld 😀"\n    greeting = greet(name)\n    print(greeting, "é😀", '
SET_TEXT = SET_LINES.replace("    print(greeting", '    print("ß") or print(greeting')
CURSORS = {  # (row 1-based, byte column) as the script places the cursor
    "opened": (10, 4),
    "set_lines": (12, len('    print(greeting, "é😀", '.encode())),
    "set_text": (12, len('    print("ß") or print(greeting, "é😀", '.encode())),
}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _nvim() -> str:
    nvim = shutil.which("nvim")
    if nvim is None:
        if _in_ci():
            pytest.fail("nvim is not installed but $CI is set: `make test` must install Neovim (apt-get install neovim)")
        pytest.skip("nvim is not installed (apt-get install neovim, or run `make test`); under $CI this fails")
    version = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"NVIM v(\d+)\.(\d+)", version)
    assert found, f"cannot read the Neovim version from: {version[:200]!r}"
    assert tuple(map(int, found.groups())) >= MIN_VERSION, f"Neovim {found.group(0)} is older than 0.7"
    return nvim


def _character(line: str, byte_col: int, encoding: str) -> int:
    """The LSP character of a byte column in ``encoding``'s code units, computed without Neovim."""
    before = line.encode()[:byte_col].decode()
    return {"utf-8": len(before.encode()), "utf-16": len(before.encode("utf-16-le")) // 2}[encoding]


def _run_nvim(command: list[str], env: dict[str, str], cwd: Path, what: str, log: Path) -> tuple[int, str, str]:
    """Run Neovim in its own process group; on a hang kill it and the server it started."""
    proc = subprocess.Popen(
        command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{what}: Neovim did not finish within {RUN_TIMEOUT_S} s\nstderr: {stderr}\nlog:\n{_tail(log)}")
    return proc.returncode, stdout, stderr


def run_script(nvim: str, script: Path, env: dict[str, str], work: Path, server_log: Path) -> dict[str, Any]:
    """Run a Lua script in headless Neovim and read the JSON result it wrote to
    ``$GEMMA_NVIM_RESULT``, with the server's and Neovim's LSP logs added; fails with the context."""
    result_path = Path(env["GEMMA_NVIM_RESULT"])
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "nvim-cache"), "XDG_STATE_HOME": str(work / "nvim-state"), **env}
    command = [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {script}"]
    returncode, stdout, stderr = _run_nvim(command, env, work, script.name, server_log)
    context = f"exit code {returncode}\nstderr: {stderr}\nstdout: {stdout}\nserver log:\n{_tail(server_log)}"
    assert result_path.exists(), f"the script wrote no result\n{context}"
    result = json.loads(result_path.read_text())
    assert returncode == 0 and result["ok"], (
        f"the script failed: {result['errors']}\nserver messages: {result['messages']}\n"
        f"notifications: {result.get('notifications')}\n{context}"
    )
    result["server_log"] = server_log.read_text() if server_log.exists() else ""
    log = Path(result["nvim_lsp_log"]) if result.get("nvim_lsp_log") else None
    result["nvim_lsp_log_text"] = log.read_text() if log and log.exists() else ""
    return result


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no file)"


@pytest.fixture(scope="module", params=["utf-16", "utf-8"])
def nvim_run(request, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    nvim = _nvim()
    encoding = request.param
    work = tmp_path_factory.mktemp(f"nvim-{encoding}")
    source = work / "sample.py"
    source.write_text(TEXT)
    result_path = work / "result.json"
    server_log = work / "server.log"
    env = {  # Neovim's own lsp.log goes to stdpath('cache') (0.7) or stdpath('log') (0.8+): run_script sets both
        "GEMMA_NVIM_CMD": json.dumps([*SERVER_COMMAND, "--log-file", str(server_log)]),
        "GEMMA_NVIM_INIT": json.dumps({"gemma": {"model": {"path": str(tiny_model)}, "completion": {"max_tokens": 16}}}),
        "GEMMA_NVIM_FILE": str(source),
        "GEMMA_NVIM_RESULT": str(result_path),
        "GEMMA_NVIM_TIMEOUT_MS": str(WAIT_MS),
        "GEMMA_NVIM_ENCODING": encoding,
    }
    result = run_script(nvim, SCRIPT, env, work, server_log)
    result["encoding"] = encoding
    return result


def _round(result: dict[str, Any], label: str) -> dict[str, Any]:
    rounds = {r["label"]: r for r in result["rounds"]}
    assert label in rounds, f"no round {label!r}: {list(rounds)}"
    return rounds[label]


def test_neovim_starts_and_stops_the_server_cleanly(nvim_run):
    caps = nvim_run["server_capabilities"]
    assert "inlineCompletionProvider" in caps and "completionProvider" in caps, caps
    # 0.7 offers no positionEncodings: the LSP default, UTF-16. Offered UTF-8 first, the server takes it.
    assert caps["positionEncoding"] == nvim_run["offset_encoding"] == nvim_run["encoding"]
    # The model load is reported with work-done progress, which Neovim 0.7 accepts.
    kinds = [p.get("kind") for p in nvim_run["progress"]]
    assert kinds[0] == "begin" and kinds[-1] == "end", nvim_run["progress"]
    assert "Loading" in nvim_run["progress"][0]["title"]
    assert nvim_run["messages"] == [], "the server told the user something went wrong"
    assert nvim_run["server_exit"] == {"code": 0, "signal": 0}


@pytest.mark.parametrize("label", ["opened", "set_lines", "set_text", "applied"])
def test_both_methods_answer_with_text_at_the_cursor(nvim_run, label):
    rnd = _round(nvim_run, label)
    row, col = rnd["cursor"]["row"], rnd["cursor"]["col"]
    lines = rnd["buffer"].split("\n")
    assert rnd["line"] == lines[row - 1]
    at_cursor = {"line": row - 1, "character": _character(rnd["line"], col, nvim_run["encoding"])}
    assert rnd["position"] == at_cursor, "Neovim sent a different position than the cursor's"

    completion = rnd["completion"]["items"]
    assert len(completion) == 1, rnd["completion"]
    edit = completion[0]["textEdit"]
    assert edit["newText"].strip(), "empty completion"
    assert edit["range"] == {"start": at_cursor, "end": at_cursor}

    inline = rnd["inline"]["items"]
    assert len(inline) >= 1, rnd["inline"]
    assert inline[0]["insertText"].strip(), "empty inline completion"
    assert inline[0]["range"] == {"start": at_cursor, "end": at_cursor}
    # Same document, same cursor, greedy decoding: the two methods agree.
    assert inline[0]["insertText"] == edit["newText"]
    assert rnd["stats"]["loaded"] is True


def test_the_buffer_and_cursor_are_what_the_edits_made(nvim_run):
    for label, buffer in (("opened", OPENED), ("set_lines", SET_LINES), ("set_text", SET_TEXT)):
        rnd = _round(nvim_run, label)
        assert rnd["buffer"] == buffer, label
        assert (rnd["cursor"]["row"], rnd["cursor"]["col"]) == CURSORS[label], label
    # The cursor lines hold characters whose UTF-8, UTF-16 and codepoint columns all differ.
    line = _round(nvim_run, "set_text")["line"]
    assert len({_character(line, len(line.encode()), enc) for enc in ("utf-8", "utf-16")} | {len(line)}) == 3
    # Accepting round 3's completion inserted its text edit verbatim at the cursor.
    applied = nvim_run["applied"]
    assert applied["buffer"] == SET_TEXT + applied["new_text"]
    assert _round(nvim_run, "applied")["buffer"] == applied["buffer"]


def test_the_server_saw_every_edit(nvim_run):
    """Neovim's didChange reached the server: each edit changed the prompt the engine evaluated."""
    prompts = [_round(nvim_run, label)["stats"]["last"]["prompt_tokens"] for label in ("opened", "set_lines", "set_text")]
    assert prompts[0] < prompts[1] < prompts[2], prompts  # each edit only added text
    # After the accepted completion the cursor, and the range the server answered at (checked
    # above), lie beyond the end of the text the server had before that edit.
    before = _round(nvim_run, "set_text")["position"]  # the cursor was at the end of the document
    after = _round(nvim_run, "applied")["position"]
    assert (after["line"], after["character"]) > (before["line"], before["character"])


def test_no_errors_in_the_logs(nvim_run):
    server_log = nvim_run["server_log"]
    assert "model loaded" in server_log, "run the server with -v: the log should show the load"
    bad = [line for line in server_log.splitlines() if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line)]
    assert bad == [], "\n".join(bad)
    # Neovim logs the server's stderr and its own LSP errors as [ERROR] in lsp.log.
    nvim_errors = [line for line in nvim_run["nvim_lsp_log_text"].splitlines() if "[ERROR]" in line]
    assert nvim_errors == [], "\n".join(nvim_errors)


def _docs_config() -> str:
    """The 0.7 – 0.11 config block of docs/neovim.md, exactly as a user would copy it."""
    blocks = re.findall(r"```lua\n(.*?)```", DOCS.read_text(), flags=re.S)
    found = [block for block in blocks if block.startswith(DOCS_CONFIG_MARK)]
    assert len(found) == 1, f"docs/neovim.md needs one ```lua block starting with {DOCS_CONFIG_MARK!r}"
    return found[0]


def test_the_documented_config_completes_through_omnifunc(tiny_model, tmp_path):
    nvim = _nvim()
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "gemma-lsp").exists(), f"no gemma-lsp command next to {sys.executable}"
    home = tmp_path / "home"
    (home / DOCS_MODEL).parent.mkdir(parents=True)
    (home / DOCS_MODEL).symlink_to(tiny_model)
    init = tmp_path / "init.lua"
    init.write_text(_docs_config())
    project = tmp_path / "project"
    project.mkdir()
    (project / "sample.py").write_text(TEXT)
    result_path = tmp_path / "result.json"
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_CACHE_HOME": str(tmp_path / "nvim-cache"),
        "XDG_STATE_HOME": str(tmp_path / "nvim-state"),
        "GEMMA_NVIM_RESULT": str(result_path),
        "GEMMA_NVIM_TIMEOUT_MS": str(WAIT_MS),
    }
    # -u init.lua keeps Neovim's defaults (filetype detection): the FileType autocmd fires.
    command = [nvim, "--headless", "-u", str(init), "-i", "NONE", "-n", "sample.py", "-c", f"luafile {OMNIFUNC_SCRIPT}"]
    nvim_log = tmp_path / "nvim-cache" / "nvim" / "lsp.log"
    returncode, stdout, stderr = _run_nvim(command, env, project, "omnifunc_check.lua", nvim_log)
    context = f"exit code {returncode}\nstderr: {stderr}\nNeovim's lsp.log:\n{_tail(nvim_log)}"
    assert result_path.exists(), f"the script wrote no result\n{context}"
    result = json.loads(result_path.read_text())
    assert returncode == 0 and result["ok"], f"the script failed: {result['errors']}\n{context}"

    assert result["filetype"] == "python"
    assert result["clients"] == ["gemma-lsp"]
    assert result["omnifunc"] == "v:lua.vim.lsp.omnifunc"
    assert result["stats"]["loaded"] is True, result["stats"]
    assert result["stats"]["model"]["path"] == str(home / DOCS_MODEL)

    items = result["complete_info"]["items"]
    assert len(items) == 1, items
    word = items[0]["word"]
    edit = items[0]["user_data"]["nvim"]["lsp"]["completion_item"]["textEdit"]
    assert word == edit["newText"] and word.strip()
    assert "\n" not in word, "the docs' config asks for max_lines = 1"
    cursor = {"line": result["row"] - 1, "character": len(result["line_before"])}  # ASCII line
    assert edit["range"] == {"start": cursor, "end": cursor}
    assert result["line_after"] == result["line_before"] + word
