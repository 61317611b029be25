"""Hostile templates through the real server: a render, a chat turn and a code action each get one
sentence naming the template and the limit, while completions and gemma/stats keep being answered."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from pygls.exceptions import JsonRpcException

from gemma_lsp import protocol
from gemma_lsp.lsp.client import EditorSession, file_uri

CODE = "def area(radius):\n    return 3.14159 * radius ** 2\n\n\ndef perimeter(radius):\n    return 2 * "
SELECTION = {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


@pytest.fixture
async def editor(tmp_path, tiny_model):
    hostile = tmp_path / "prompts"
    hostile.mkdir()
    # a deadline bomb no size check sees: 2**40 macro calls
    (hostile / "explain.jinja").write_text(
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}{{ selection }}\n"
    )
    (hostile / "chat.jinja").write_text("{{ question }}\n{{ selection * 100000000 }}\n")  # 7 GB, unbounded
    (hostile / "fix.jinja").write_text("Fix:\n{{ (selection|length + 9) ** (9 ** 9) }}\n")  # a core at 100 %
    root = tmp_path / "ws"
    root.mkdir()
    (root / "geometry.py").write_text(CODE)
    settings = {
        "model": {"path": str(tiny_model), "idle_unload_seconds": 0},
        "completion": {"max_tokens": 8},
        "memory": {"sqlite_path": str(tmp_path / "m.sqlite3"), "journal_dir": str(tmp_path / "j")},
        "index": {"enabled": False},
        "prompts": {"dirs": [str(hostile)], "render_timeout_seconds": 2},
    }
    session = EditorSession(settings=settings, root=root)
    await session.start()
    await session.wait_until_loaded()
    uri = file_uri(root / "geometry.py")
    session.open(uri, CODE)
    yield session, uri, hostile
    await session.stop()


async def test_bombs_are_named_while_completions_and_stats_keep_being_answered(editor):
    session, uri, hostile = editor
    pid = session.client._server.pid  # the server process
    await session.inline(uri, 5, 15)  # warm: the first completion pays for the model's warm-up
    before = _rss_mb(pid)

    started = time.monotonic()
    render = asyncio.ensure_future(session.execute(protocol.PROMPT_RENDER, {"template": "explain", "uri": uri, "range": SELECTION}))
    latencies = []
    answered_while_rendering = 0
    while not render.done():
        t = time.monotonic()
        stats = await session.stats()
        completion = await session.inline(uri, 5, 15)
        latencies.append(time.monotonic() - t)
        assert stats["loaded"] and completion is not None
        answered_while_rendering += not render.done()
        await asyncio.sleep(0.05)
    with pytest.raises(JsonRpcException) as err:
        await render
    took = time.monotonic() - started
    assert f"{hostile / 'explain.jinja'}: rendering took longer than 2 s, the most a template may take" in str(err.value)
    assert took < 4.0
    assert answered_while_rendering >= 5 and max(latencies) < 1.0, latencies
    print(f"deadline bomb refused in {took:.2f} s; {answered_while_rendering} stats+completion pairs answered "
          f"meanwhile, slowest {max(latencies) * 1000:.0f} ms")

    with pytest.raises(JsonRpcException) as err:
        await session.chat("Why?", uri=uri, range=SELECTION)
    assert f"{hostile / 'chat.jinja'}, line 2: repeating a str 100,000,000 times" in str(err.value)

    with pytest.raises(JsonRpcException) as err:
        await session.execute(protocol.ACTION_RUN, {"action": "fix", "uri": uri, "range": SELECTION})
    assert f"{hostile / 'fix.jinja'}, line 2: raising a number to the power 387,420,489" in str(err.value)

    assert _rss_mb(pid) - before < 50  # the server's own memory did not grow with the bombs
    assert (await session.stats())["loaded"]
    rendered = await session.execute(protocol.PROMPT_RENDER, {"template": "document", "uri": uri, "range": SELECTION})
    assert "def area(radius)" in rendered["text"]  # a built-in template still renders
    assert not any("failed" in m for m in session.messages), session.messages


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
async def test_a_killed_render_leaves_no_busy_process(editor):
    session, uri, hostile = editor
    server = session.client._server.pid
    with pytest.raises(JsonRpcException, match="rendering took longer than 2 s"):
        await session.execute(protocol.PROMPT_RENDER, {"template": "explain", "text": "x"})
    await asyncio.sleep(0.2)
    children = [int(p) for p in open(f"/proc/{server}/task/{server}/children").read().split()]
    busy = []
    for child in children:
        with open(f"/proc/{child}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        if fields[0] == "R":
            busy.append(child)
    assert not busy, f"still running: {busy}"
