"""``gemma-lsp bench soak``: the real server fed every class of bad input, counted.

Per class of input: messages sent, requests sent, crashes, requests never answered, wrong answers
(a result where an error was due, an internal error where a clear one was due, a second answer),
the slowest answer, and the server's RSS growth. The targets: 0 crashes, 0 unanswered, 0 secrets
stored, RSS growth <= 50 MB over the mixed requests, every bad input answered within 1 s.

The same classes run in ``make test`` at a small scale (``tests/test_reliability.py``); the soak
runs them bigger (``--requests 10000`` mixed requests by default).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from gemma_lsp import protocol
from gemma_lsp.memory.redis_server import RedisServer, free_port

from .common import SuiteRun, no_config, suite_settings
from .wire import WireServer, frame, notification, request

INVALID = {-32700, -32600, -32601, -32602}
"""The codes of a clear answer to a bad request (an internal error -32603 is not one)."""
CANCELLED = -32800
TARGET_RSS_MB = 50
TARGET_ANSWER_S = 1.0


@dataclass
class ClassResult:
    name: str
    sent: int = 0  # messages (or inputs) sent
    requests: int = 0  # of them, requests that must be answered
    crashes: int = 0
    unanswered: int = 0
    wrong: int = 0
    slowest_ms: float = 0.0
    rss_growth_mb: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < 8:
            self.notes.append(text)

    @property
    def ok(self) -> bool:
        return not (self.crashes or self.unanswered or self.wrong)


class Soak:
    """One run: a work folder, the model, the scale; ``run_all()`` gives a result per class."""

    def __init__(self, model: str | None, workdir: Path, scale: float = 1.0, requests: int = 10_000,
                 seed: int = 0, log: Callable[[str], None] = lambda m: None) -> None:
        self.model, self.workdir, self.scale, self.requests = model, workdir, scale, requests
        self.rng = random.Random(seed)
        self.log = log
        self._n = 0

    # ---------------------------------------------------------------- helpers
    def n(self, count: int) -> int:
        return max(1, int(count * self.scale))

    def next_id(self, prefix: str = "r") -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def settings(self, **extra: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "model": {"path": self.model} if self.model else {"path": str(self.workdir / "no-model.gguf")},
            "completion": {"max_tokens": 8},
            "chat": {"max_tokens": 8},
            "index": {"enabled": False},
            "memory": {"sqlite_path": str(self.workdir / "memories.sqlite3"), "journal_dir": str(self.workdir / "journal")},
        }
        for key, value in extra.items():
            base[key] = {**base.get(key, {}), **value}
        return base

    def start(self, name: str, root: Path | None = None, **settings: Any) -> WireServer:
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        wire = WireServer(["-v", *no_config(folder)], cwd=folder, stderr_path=folder / "server.log")
        wire.initialize(self.settings(**settings), root=root)
        if self.model:
            wire.call(self.next_id("load"), "gemma/stats", {}, timeout=120)
        return wire

    def expect(self, wire: WireServer, result: ClassResult, msg_id: Any, data: bytes, ok: Callable[[dict], bool],
               timeout: float = 30.0) -> dict | None:
        """Send ``data`` (holding request ``msg_id``) and check its one answer with ``ok``."""
        before = len(wire.answers.get(msg_id, []))
        started = time.perf_counter()
        wire.send(data)
        result.sent += 1
        result.requests += 1
        deadline = time.monotonic() + timeout
        while len(wire.answers.get(msg_id, [])) <= before:
            if time.monotonic() > deadline or wire.closed:
                result.unanswered += 1
                result.note(f"no answer to {data[:120]!r}")
                return None
            time.sleep(0.001)
        result.slowest_ms = max(result.slowest_ms, (time.perf_counter() - started) * 1000)
        answer = wire.answers[msg_id][before]
        if not ok(answer):
            result.wrong += 1
            result.note(f"{data[:100]!r} -> {json.dumps(answer)[:200]}" if b"inlineCompletion" not in data and b"textDocument/completion" not in data else f"{data[-160:]!r} -> {json.dumps(answer)[:120]}")
        return answer

    def probe(self, wire: WireServer, result: ClassResult) -> None:
        """The server still answers a good request."""
        msg_id = self.next_id("probe")
        self.expect(wire, result, msg_id, frame(request(msg_id, "gemma/stats", {})), lambda a: "result" in a)

    def finish(self, wire: WireServer, result: ClassResult, rss_before: int) -> None:
        if wire.proc.poll() is not None:
            result.crashes += 1
            result.note(f"the server died (exit code {wire.proc.returncode})")
        else:
            self.probe(wire, result)
            result.rss_growth_mb = round(max(0, wire.rss_kb() - rss_before) / 1024, 1)
            code = wire.stop()
            if code != 0:
                result.crashes += 1
                result.note(f"shutdown + exit gave exit code {code}")
        if wire.bad_output:
            result.wrong += len(wire.bad_output)
            result.note(f"bad output from the server: {wire.bad_output[:2]}")
        popups = [m["params"]["message"] for m in wire.messages("window/showMessage") if "Error in server" in m["params"]["message"]]
        if popups:
            result.wrong += len(popups)
            result.note(f"{len(popups)} 'Error in server' pop-ups")

    def run_class(self, name: str, body: Callable[[ClassResult], None]) -> ClassResult:
        result = ClassResult(name)
        started = time.perf_counter()
        self.log(f"soak: {name}")
        try:
            body(result)
        except Exception as exc:  # noqa: BLE001 - a broken class is a finding, not the end of the run
            result.wrong += 1
            result.note(f"the class stopped: {type(exc).__name__}: {exc}")
        result.seconds = round(time.perf_counter() - started, 2)
        result.slowest_ms = round(result.slowest_ms, 1)
        return result

    # ----------------------------------------------------------------- classes
    def framing(self, result: ClassResult) -> None:
        wire = self.start("framing")
        rss = wire.rss_kb()
        for i in range(self.n(12)):
            msg_id = self.next_id("frame")
            body = json.dumps(request(msg_id, "gemma/stats", {})).encode()
            variants = [
                b"Content-Length: %d\r\n\r\n" % (len(body) + self.rng.randint(1, 500)) + body,
                b"Content-Length: %d\r\n\r\n" % (len(body) - self.rng.randint(1, len(body) - 1)) + body,
                b"Content-Length: 0\r\n\r\n" + body,
                b"Content-Length: -%d\r\n\r\n" % self.rng.randint(1, 99) + body,
                b"Content-Length: %d\r\n\r\n" % self.rng.randint(1 << 40, 1 << 60) + body,
                b"Content-Length: x%d\r\n\r\n" % i + body,
                body,
                b"\r\n" + body,
                b"content-length: %d\r\n\r\n" % len(body) + body,
                b"Content-Length: %d\n\n" % len(body) + body,
                b"CONTENT-LENGTH: %d\r\nContent-Type: x\r\n\r\n" % len(body) + body,
                bytes(self.rng.randrange(256) for _ in range(300)) + b"Content-Length: %d\r\n\r\n" % len(body) + body,
            ]
            self.expect(wire, result, msg_id, variants[i % len(variants)], lambda a: "result" in a)
            self.probe(wire, result)
        self.finish(wire, result, rss)

    def json_messages(self, result: ClassResult) -> None:
        wire = self.start("json")
        rss = wire.rss_kb()
        null_id = None
        bodies: list[tuple[bytes, Any, int]] = [
            (b'{"jsonrpc": "2.0", "id": 1, "method": ', null_id, -32700),
            (b"[" * 50_000 + b"]" * 50_000, null_id, -32700),
            (b'{"jsonrpc": "2.0", "id": "deep", "params": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}", null_id, -32700),
            (json.dumps([request(1, "gemma/stats")]).encode(), null_id, -32600),
            (b"12345", null_id, -32600),
            (b"null", null_id, -32600),
        ]
        for i in range(self.n(60)):
            msg_id = self.next_id("json")
            kind = i % 9
            if kind < len(bodies):
                body, answer_id, code = bodies[kind]
            elif kind == 6:
                body, answer_id, code = json.dumps({"id": msg_id, "method": "gemma/stats"}).encode(), msg_id, -32600
            elif kind == 7:
                body, answer_id, code = json.dumps({"jsonrpc": "1.0", "id": msg_id, "method": "gemma/stats"}).encode(), msg_id, -32600
            else:
                body = b'{"jsonrpc": "2.0", "id": "%s", "method": "gemma/stats", "params": {"\xff\xfe": "\xc3"}}' % msg_id.encode()
                answer_id, code = msg_id, -32602  # read (as U+FFFD), then refused: stats takes no such field
            self.expect(wire, result, answer_id, b"Content-Length: %d\r\n\r\n" % len(body) + body,
                        lambda a, code=code: a.get("error", {}).get("code") == code)
        self.finish(wire, result, rss)

    def _bad_values(self) -> list[Any]:
        return [None, True, -1, 1.5, 2**31, 2**64, "x", "", [], [1, "a"], {}, {"a": {"b": None}}, "\ud800", "é" * 100]

    def param_types(self, result: ClassResult) -> None:
        wire = self.start("params")
        rss = wire.rss_kb()
        good = {"textDocument": {"uri": "file:///w/a.py"}, "position": {"line": 0, "character": 0},
                "context": {"triggerKind": 2}}
        methods = ["textDocument/inlineCompletion", "textDocument/completion"]
        for i in range(self.n(120)):
            method = methods[i % len(methods)]
            params = json.loads(json.dumps(good))
            path = self.rng.choice([("textDocument",), ("textDocument", "uri"), ("position",), ("position", "line"),
                                    ("position", "character")])
            target = params
            for key in path[:-1]:
                target = target[key]
            value = self.rng.choice(self._bad_values())
            target[path[-1]] = value
            if isinstance(value, int) and not isinstance(value, bool) and path[-1] in ("line", "character") and 0 <= value < 2**31:
                continue  # a valid position after all
            msg_id = self.next_id("param")
            if path[-1] == "uri" and isinstance(value, str):  # any string is a URI: a document not open
                self.expect(wire, result, msg_id, frame(request(msg_id, method, params)), lambda a: "result" in a)
                continue
            self.expect(wire, result, msg_id, frame(request(msg_id, method, params)),
                        lambda a: a.get("error", {}).get("code") == -32602)
        self.finish(wire, result, rss)

    def positions(self, result: ClassResult) -> None:
        wire = self.start("positions")
        rss = wire.rss_kb()
        uri = "file:///w/pos.py"
        wire.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                              "text": "def f(x):\n    return x\n"}})
        for i in range(self.n(60)):
            line = self.rng.choice([-1, -(2**31), 2**31, 2**53, 0, 1, 2, 3, 10**6])
            character = self.rng.choice([-5, 2**31, 0, 4, 10**6])
            valid = 0 <= line < 2**31 and 0 <= character < 2**31
            msg_id = self.next_id("pos")
            params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 2}}
            self.expect(wire, result, msg_id, frame(request(msg_id, "textDocument/inlineCompletion", params)),
                        (lambda a: "result" in a or a["error"]["code"] == CANCELLED) if valid
                        else (lambda a: a.get("error", {}).get("code") == -32602))
        self.finish(wire, result, rss)

    def unknown_methods(self, result: ClassResult) -> None:
        wire = self.start("unknown")
        rss = wire.rss_kb()
        for i in range(self.n(40)):
            method = self.rng.choice(["gemma/nothing", "textDocument/nothing", "$/custom", "x" * 1000, "", "workspace/🙂"])
            msg_id = self.next_id("unknown")
            self.expect(wire, result, msg_id, frame(request(msg_id, method, {})),
                        lambda a: a.get("error", {}).get("code") == -32601)
            wire.send(frame(notification(method, {"x": i})))
            result.sent += 1
        self.finish(wire, result, rss)

    def hostile_documents(self, result: ClassResult) -> None:
        wire = self.start("documents")
        rss = wire.rss_kb()
        big = self.scale >= 1
        texts = {
            "surrogates.py": "x = '\ud800'\ndef f(\udfff):\n    ",
            "long-line.py": "value = " + "a" * (5_000_000 if big else 300_000),
            "long-line-utf8.py": "s = '" + "é😀" * (1_000_000 if big else 60_000),
            "many-lines.py": "".join(f"def f{i}(a):\n    return a * {i}\n" for i in range(25_000 if big else 5_000)),
            "nul-and-controls.py": "a = 1\x00\x01\x1b[31m\n\r\r\n\u2028x = ",
        }
        for name, text in texts.items():
            uri = f"file:///w/{name}"
            wire.send(frame(notification("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "python", "version": 1, "text": text}})))
            result.sent += 1
            lines = text.split("\n")
            for line, character in ((len(lines) - 1, len(lines[-1])), (0, 3), (len(lines) // 2, 1)):
                msg_id = self.next_id("doc")
                params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 2}}
                self.expect(wire, result, msg_id, frame(request(msg_id, "textDocument/inlineCompletion", params)),
                            lambda a: "result" in a or a["error"]["code"] == CANCELLED, timeout=60)
            edit = {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
                {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "z"}]}
            wire.send(frame(notification("textDocument/didChange", edit)))
            wire.send(frame(notification("textDocument/didClose", {"textDocument": {"uri": uri}})))
            result.sent += 2
        # invalid UTF-8 in a document
        body = (b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": "file:///w/latin1.py",'
                b' "languageId": "python", "version": 1, "text": "caf\xe9 = \xff\xfe\\n"}}}')
        wire.send(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        result.sent += 1
        msg_id = self.next_id("doc")
        params = {"textDocument": {"uri": "file:///w/latin1.py"}, "position": {"line": 1, "character": 0}, "context": {"triggerKind": 2}}
        self.expect(wire, result, msg_id, frame(request(msg_id, "textDocument/inlineCompletion", params)),
                    lambda a: "result" in a or a["error"]["code"] == CANCELLED)
        self.finish(wire, result, rss)

    def config_fuzz(self, result: ClassResult) -> None:
        wire = self.start("config")
        rss = wire.rss_kb()
        junk: list[Any] = [
            "oops", 5, None, [], {"gemma": "oops"}, {"gemma": []}, {"gemma": {"completion": {"time_limit_ms": 1e308}}},
            {"gemma": {"completion": {"max_tokens": True}}}, {"gemma": {"completion": {"max_tokens": -4}}},
            {"gemma": {"model": {"path": 12}}}, {"gemma": {"model": {"path": "/nonexistent/x.gguf"}}},
            {"gemma": {"sampling": {"presets": {"x": [{"type": "nope"}]}}}}, {"gemma": {"nothing": {"a": 1}}},
            {"gemma": {"completion": {"max_tokens": "12"}}}, {"gemma": {"memory": {"backend": "cassandra"}}},
            {"gemma": {"log": {"level": "LOUD"}}}, {"gemma": {"completion": {"prefix_tokens": 10**12}}},
        ]
        for i in range(self.n(len(junk) * 3)):
            wire.send(frame(notification("workspace/didChangeConfiguration", {"settings": junk[i % len(junk)]})))
            result.sent += 1
            msg_id = self.next_id("cfg")
            self.expect(wire, result, msg_id, frame(request(msg_id, "gemma/stats", {})), lambda a: "result" in a)
        if self.model:  # the working model still serves after all that
            uri = "file:///w/after-config.py"
            wire.send(frame(notification("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "python", "version": 1, "text": "def add(a, b):\n    return "}})))
            msg_id = self.next_id("cfg")
            params = {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 11}, "context": {"triggerKind": 2}}
            answer = self.expect(wire, result, msg_id, frame(request(msg_id, "textDocument/inlineCompletion", params)),
                                 lambda a: "result" in a)
            if answer and "result" in answer and not answer["result"]["items"]:
                result.wrong += 1
                result.note("no completion from the working model after the bad settings")
        self.finish(wire, result, rss)

    def command_arguments(self, result: ClassResult) -> None:
        wire = self.start("commands")
        rss = wire.rss_kb()
        commands = [m.name for m in protocol.MESSAGES if m.kind == "command"]
        for i in range(self.n(150)):
            command = commands[i % len(commands)]
            argument = self.rng.choice([
                5, "text", [1, 2], True, {"text": 12345}, {"text": ["a", "b"]}, {"tags": "abc"}, {"k": True},
                {"ids": [1]}, {"uri": 5}, {"range": {"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}}},
                {"text": "x" * 200_000}, {"unknown_field": 1}, {"query": None},
            ])
            msg_id = self.next_id("cmd")
            params = {"command": command, "arguments": [argument] if self.rng.random() < 0.9 else [argument, argument]}
            self.expect(wire, result, msg_id, frame(request(msg_id, "workspace/executeCommand", params)),
                        lambda a: a.get("error", {}).get("code") in (-32602, CANCELLED) or "result" in a)
        self.finish(wire, result, rss)

    def hostile_workspace(self, result: ClassResult) -> None:
        root = self.workdir / "hostile-ws"
        _hostile_workspace(root)
        db = self.workdir / "hostile-ws-memories.sqlite3"
        wire = self.start("workspace", root=root, index={"enabled": True},
                          memory={"sqlite_path": str(db)})
        rss = wire.rss_kb()
        msg_id = self.next_id("ws")
        self.expect(wire, result, msg_id, frame(request(msg_id, "workspace/executeCommand",
                                                        {"command": protocol.INDEX_REBUILD, "arguments": []})),
                    lambda a: "result" in a or a["error"]["code"] == CANCELLED, timeout=120)
        self.finish(wire, result, rss)
        stored = _bytes_of(db)
        found = [marker for marker in _SECRET_MARKERS if marker.encode() in stored]
        if found:
            result.wrong += len(found)
            result.note(f"secrets stored: {found}")
        result.sent += 1

    def hostile_templates(self, result: ClassResult) -> None:
        root = self.workdir / "template-ws"
        prompts = root / ".gemma" / "prompts"
        prompts.mkdir(parents=True, exist_ok=True)
        bombs = {
            "repeat": "{{ selection * 100000000 }}",
            "power": "{{ (selection|length + 9) ** (9 ** 9) }}",
            "ranges": "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
            "format": "{{ '%999999999s'|format('x') }}",
            "center": "{{ 'x'|center(1000000000) }}",
            "recursion": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
            "link": None,
        }
        for name, text in bombs.items():
            path = prompts / f"{name}.jinja"
            if text is None:
                if not path.exists() and not path.is_symlink():
                    path.symlink_to("/etc/passwd")
            else:
                path.write_text(text)
        wire = self.start("templates", root=root, prompts={"dirs": [str(prompts)]})
        rss = wire.rss_kb()
        uri = (root / "a.py").as_uri()
        wire.send(frame(notification("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": "def f(x):\n    return x\n"}})))
        for name in bombs:
            msg_id = self.next_id("tpl")
            self.expect(wire, result, msg_id, frame(request(msg_id, "workspace/executeCommand", {
                "command": protocol.PROMPT_RENDER, "arguments": [{"template": name, "uri": uri, "text": "x = 1"}]})),
                lambda a: "error" in a and a["error"]["code"] != -32603 or "result" in a and "root:" not in json.dumps(a),
                timeout=30)
            self.probe(wire, result)
        self.finish(wire, result, rss)

    def store_outage(self, result: ClassResult) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            result.note("redis-server is not installed: skipped")
            return
        port, folder = free_port(), self.workdir / "redis"
        redis = RedisServer(binary, port, folder).start()
        try:
            wire = self.start("outage", memory={"backend": "redis", "url": redis.url})
            rss = wire.rss_kb()
            count = self.n(40)
            for i in range(count):
                if i == count // 3:
                    redis.kill()  # gone mid-run, as a crash would do
                if i == 2 * count // 3:
                    redis = RedisServer(binary, port, folder).start()  # back, empty (no persistence)
                command, argument = ((protocol.MEMORY_REMEMBER, {"text": f"note {i}", "tags": ["soak"]}) if i % 2 == 0
                                     else (protocol.MEMORY_SEARCH, {"query": "note", "k": 3}))
                msg_id = self.next_id("outage")
                self.expect(wire, result, msg_id, frame(request(msg_id, "workspace/executeCommand",
                                                                {"command": command, "arguments": [argument]})),
                            lambda a: "result" in a or a["error"]["code"] != -32603, timeout=30)
            self.finish(wire, result, rss)
        finally:
            redis.stop()

    def abrupt_exits(self, result: ClassResult) -> None:
        for how in ("exit without shutdown", "end of input", "SIGTERM", "SIGINT", "shutdown + exit"):
            for _ in range(self.n(2)):
                wire = self.start("exits")
                children = _children(wire.proc.pid)
                started = time.perf_counter()
                if how == "exit without shutdown":
                    wire.notify("exit")
                elif how == "end of input":
                    wire.proc.stdin.close()
                elif how == "SIGTERM":
                    wire.proc.send_signal(signal.SIGTERM)
                elif how == "SIGINT":
                    wire.proc.send_signal(signal.SIGINT)
                else:
                    wire.call(self.next_id("exit"), "shutdown")
                    started = time.perf_counter()
                    wire.notify("exit")
                code = wire.wait(timeout=10)
                took = time.perf_counter() - started
                result.sent += 1
                result.slowest_ms = max(result.slowest_ms, took * 1000)
                expected = 0 if how == "shutdown + exit" else 1
                gone_by = time.monotonic() + TARGET_ANSWER_S  # a child ends when it reads the end of its pipe
                while (left := [pid for pid in children if _alive(pid)]) and time.monotonic() < gone_by:
                    time.sleep(0.02)
                if code != expected or "Traceback" in wire.stderr_text() or left or took > TARGET_ANSWER_S:
                    result.wrong += 1
                    result.note(f"{how}: exit code {code} (want {expected}), {took:.2f} s, children left {left}, "
                                f"traceback {'Traceback' in wire.stderr_text()}")

    def mixed(self, result: ClassResult) -> None:
        wire = self.start("mixed")
        rss = wire.rss_kb()
        uris = [f"file:///w/mixed{i}.py" for i in range(4)]
        texts = {u: "import os\n\n\ndef main(args):\n    total = 0\n    for a in args:\n        " for u in uris}
        versions = {u: 1 for u in uris}
        for u in uris:
            wire.notify("textDocument/didOpen", {"textDocument": {"uri": u, "languageId": "python", "version": 1, "text": texts[u]}})
        pending: list[str] = []
        peak = rss
        while result.requests < self.requests:
            u = self.rng.choice(uris)
            lines = texts[u].split("\n")
            roll = self.rng.random()
            if roll < 0.35:  # type a character at the end
                ch = self.rng.choice("abcdefgh(). _=\n")
                versions[u] += 1
                line, col = len(lines) - 1, len(lines[-1])
                wire.notify("textDocument/didChange", {"textDocument": {"uri": u, "version": versions[u]}, "contentChanges": [
                    {"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}, "text": ch}]})
                texts[u] += ch
                result.sent += 1
                continue
            msg_id = self.next_id("mix")
            if roll < 0.8:
                line = len(lines) - 1
                params = {"textDocument": {"uri": u}, "position": {"line": line, "character": len(lines[-1])}, "context": {"triggerKind": 2}}
                wire.send(frame(request(msg_id, "textDocument/inlineCompletion", params)))
            elif roll < 0.9:
                wire.send(frame(request(msg_id, "gemma/stats", {})))
            else:
                wire.send(frame(request(msg_id, "textDocument/completion", {
                    "textDocument": {"uri": u}, "position": {"line": len(lines) - 1, "character": len(lines[-1])}})))
            pending.append(msg_id)
            result.sent += 1
            result.requests += 1
            if self.rng.random() < 0.15:
                wire.notify("$/cancelRequest", {"id": msg_id})
                result.sent += 1
            if len(texts[u]) > 4000:  # start the document over, as a new file would
                versions[u] += 1
                texts[u] = "def again():\n    "
                wire.notify("textDocument/didChange", {"textDocument": {"uri": u, "version": versions[u]},
                                                       "contentChanges": [{"text": texts[u]}]})
            if len(pending) >= 32:
                self._settle(wire, result, pending)
                peak = max(peak, wire.rss_kb())
        self._settle(wire, result, pending)
        self.finish(wire, result, rss)
        result.note(f"peak RSS {peak // 1024} MB (started at {rss // 1024} MB)")

    def _settle(self, wire: WireServer, result: ClassResult, pending: list[str]) -> None:
        deadline = time.monotonic() + 60
        for msg_id in pending:
            answer = wire.answer(msg_id, timeout=max(0.0, deadline - time.monotonic()))
            if answer is None:
                result.unanswered += 1
                result.note(f"no answer to {msg_id}")
            elif len(wire.answers[msg_id]) > 1:
                result.wrong += 1
                result.note(f"{msg_id} answered {len(wire.answers[msg_id])} times")
            elif "error" in answer and answer["error"]["code"] not in (CANCELLED,):
                result.wrong += 1
                result.note(f"{msg_id}: {answer['error']}")
        pending.clear()

    CLASSES = ("framing", "json_messages", "param_types", "positions", "unknown_methods", "hostile_documents",
               "config_fuzz", "command_arguments", "hostile_workspace", "hostile_templates", "store_outage",
               "abrupt_exits", "mixed")

    def run_all(self, only: list[str] | None = None) -> list[ClassResult]:
        return [self.run_class(name, getattr(self, name)) for name in self.CLASSES if not only or name in only]


# ---------------------------------------------------------------------------------------------
_SECRET_MARKERS = ["AKIAZZZZSOAKSECRET01", "ghp_soakSECRETsoakSECRETsoakSECRETsoak12", "SOAK-PRIVATE-KEY-BODY",
                   "soak-netrc-password", "soak-tfstate-secret", "soak-envrc-secret"]


def _hostile_workspace(root: Path) -> None:
    """Secrets under names and in contents, a symlink loop, a link out of the workspace, a big and a
    binary file, an unreadable one, deep folders."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "app.py": "def handler(event):\n    return event\n",
        ".envrc": "export TOKEN=soak-envrc-secret\n",
        ".netrc": "machine example.com login me password soak-netrc-password\n",
        "infra/terraform.tfstate": '{"secret": "soak-tfstate-secret"}\n',
        "keys/SERVER.PEM": "-----BEGIN RSA PRIVATE KEY-----\nSOAK-PRIVATE-KEY-BODY\n-----END RSA PRIVATE KEY-----\n",
        "notes/innocent.txt": "aws_access_key_id = AKIAZZZZSOAKSECRET01\n",
        "src/config.py": 'GITHUB = "ghp_soakSECRETsoakSECRETsoakSECRETsoak12"\n',
        "big.py": "x = 1\n" * 400_000,
        "blob.bin": "".join(chr(i % 256) for i in range(5000)),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, errors="surrogateescape")
    deep = root
    for i in range(40):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True, exist_ok=True)
    (deep / "deep.py").write_text("DEEP = 1\n")
    for link, target in (("loop", "."), ("outside", "/etc")):
        path = root / link
        if not path.is_symlink():
            path.symlink_to(target)
    locked = root / "locked.py"
    locked.write_text("SECRET = 'locked'\n")
    locked.chmod(0)


def _bytes_of(db: Path) -> bytes:
    data = b""
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            data += path.read_bytes()
    return data


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and ") Z" not in stat.read_text()


# --------------------------------------------------------------------------------------------- CLI
def summary(results: list[ClassResult], requests: int) -> dict[str, Any]:
    totals = {key: sum(getattr(r, key) for r in results) for key in ("sent", "requests", "crashes", "unanswered", "wrong")}
    mixed = next((r for r in results if r.name == "mixed"), None)
    workspace = next((r for r in results if r.name == "hostile_workspace"), None)
    bad_input = [r for r in results if r.name not in ("mixed", "hostile_documents", "hostile_workspace", "abrupt_exits")]
    slowest = max((r.slowest_ms for r in bad_input), default=0.0)
    targets = {
        "no_crashes": totals["crashes"] == 0,
        "no_unanswered_requests": totals["unanswered"] == 0,
        "no_wrong_answers": totals["wrong"] == 0,
        "no_secrets_stored": workspace is None or not any("secrets stored" in n for n in workspace.notes),
        "rss_growth_le_50mb_over_mixed": mixed is None or mixed.rss_growth_mb <= TARGET_RSS_MB,
        "bad_input_answered_within_1s": slowest <= TARGET_ANSWER_S * 1000,
    }
    return {"suite": "soak", "mixed_requests": requests, "classes": [asdict(r) for r in results], "totals": totals,
            "slowest_bad_input_answer_ms": slowest, "targets": targets}


def _text(report: dict[str, Any]) -> str:
    rows = ["class                 sent  requests  crashes  unanswered  wrong  slowest ms  RSS +MB   seconds"]
    for r in report["classes"]:
        rows.append(f"{r['name']:20s} {r['sent']:6d} {r['requests']:9d} {r['crashes']:8d} {r['unanswered']:11d} "
                    f"{r['wrong']:6d} {r['slowest_ms']:11.1f} {r['rss_growth_mb']:8.1f} {r['seconds']:9.1f}")
        rows.extend(f"    {note}" for note in r["notes"])
    rows.append("targets: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in report["targets"].items()))
    return "\n".join(rows)


def run(argv: list[str] | None = None) -> SuiteRun:
    parser = argparse.ArgumentParser(prog="gemma-lsp bench soak", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a GGUF file (default: a tiny random-weight test model made for the run)")
    parser.add_argument("--requests", type=int, default=10_000, help="mixed requests, beside the edits and cancels (default 10000)")
    parser.add_argument("--scale", type=float, default=1.0, help="how many inputs of each other class, relative (default 1)")
    parser.add_argument("--only", nargs="*", choices=Soak.CLASSES, help="run only these classes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory(prefix="gemma-lsp-soak-") as tmp:
        workdir = Path(tmp)
        model = args.model
        if model is None:
            from gemma_lsp.engine.testmodel import write_test_model

            model = str(write_test_model(workdir / "tiny.gguf", arch="gemma3", preset="tiny"))
        soak = Soak(model, workdir, scale=args.scale, requests=args.requests, seed=args.seed, log=log)
        results = soak.run_all(args.only)
        for locked in workdir.rglob("locked.py"):
            locked.chmod(0o600)
    report = summary(results, args.requests)
    return SuiteRun("soak", report, _text(report), as_json=args.json, model=args.model, settings=suite_settings(args))
