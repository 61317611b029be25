"""``gemma-lsp bench quality``: how right and how fast inline completions are on real code.

**Cases.** Cut from real Python nobody here wrote: the sources of numpy, pygls and jinja2 as
installed next to gemma-lsp. The ``.py`` files of those packages (sorted; ``tests`` / ``test``
folders skipped) are visited in an order drawn with ``random.Random(--seed)`` that takes the
three packages in turn (numpy alone has most of the files); a file is used
when it can be read as UTF-8 and has 40 to 3,000 lines, and each file gives at most one case
(so no document of the run holds another case's answer). In the file one line is drawn among
the lines that are real code: not blank, not a comment, ASCII and printable, at least 12
characters after the indentation, and not inside or on the edge of a triple-quoted string (a
toggle on ``\"\"\"`` / ``'''``: as far as that simple check can tell). The cut point is drawn
inside the line's content: at least 2 characters after the indentation and at least 4 before
the (right-stripped) line end. The expected answer is the rest of the line. ``--cases`` cases
(40 by default); a held-back set is another ``--seed``.

**Ours.** Every case runs through the real server (``gemma-lsp serve`` over stdio, driven by
``lsp.client.EditorSession``; one server process for the whole run; settings: ``--model``,
``idle_unload_seconds: 0``, a ``--config`` that does not exist so the user's config is not read,
and whatever ``--settings`` adds). Each case gets its own document URI (``<tmp>/<mode>/<package
path>``; with no workspace the server names it by its file name) and its document is closed after
use; the server's answer cache is emptied between modes, so no mode is answered from another's
(the same file at the same cursor has the same cache key in both). Modes:

* ``cold``: the file is opened with the cut line ending at the cut point (the rest of that line
  removed, the lines after it kept), and an inline completion is asked at once at the cut point.
* ``typed``: the file is opened with the cut line holding only its indentation; one request at
  the end of the indentation (not measured), then the line's text from the indentation up to
  the cut is inserted as one edit and the request at the cut point is measured.

Per answer: the suggestion (the inline item's ``insert_text``; when the item's range starts
before the cursor, the text from the cursor on), its first line, the client-side latency
(request sent -> response received) and ``gemma/stats`` -> ``completion.last`` (source,
engine_ms, prefill_ms, decode_ms, tokens evaluated and generated, stop reason, prompt form).

**Peer.** The same cases and modes as a plain prefix completion, which is what lsp-ai and llm-ls
send for a model without FIM tokens: ``llama_cpp.Llama.create_completion(prompt=prefix,
max_tokens=64, temperature=0.0)`` in this process (``engine.peer.PlainCompletion``: one ``Llama``
for the whole run, n_ctx 8192, the server's thread count, llama-cpp-python's own KV prefix
cache between calls). The prefix is the document text before the cursor cut to its last 1,024
tokens (the server's default ``completion.prefix_tokens``); in ``typed`` mode the same two calls
are made and the second is measured. As the prefix window slides with the typed text, its start
moves, so the second call often cannot reuse the first one's cache: that is how such a client
behaves. The peer's answer is the first line of its text. Its prefill/decode figures are
llama.cpp's counters (decodes of several tokens / of one token).

**Metrics** per mode, for ours and the peer alike:

* ``exact_line``: share of cases where the line's start + the answer's first line, right-stripped,
  equals the original line right-stripped;
* ``edit_similarity``: mean ``difflib.SequenceMatcher`` ratio between the first line and the
  expected rest, both right-stripped (an empty answer scores 0);
* ``empty_rate``: share of answers whose first line is blank;
* ``fragment_rate``: share of answers that end in the middle of a word: a one-line, non-empty
  answer whose generation stopped at the time or token limit, whose last character is a letter,
  digit or underscore, and the expected text has such a character right after it;
* ``latency_ms`` p50/p95 (client side for ours; the ``create_completion`` call for the peer);
* ``prefill_tokens_per_s`` / ``decode_tokens_per_s``: sum of tokens evaluated / sum of prefill
  time, sum of tokens generated / sum of decode time, over the answers the engine produced;
* ``prompt_mode``, ``sources`` and ``stop_reasons`` counted, ``ranges_before_cursor`` (items whose
  range started before the cursor: their text was taken from the cursor on); ``worst``: the least
  similar answers.

``ratios`` divides ours by the peer's: exact_line per mode, latency p50 per mode.

**Sampler share.** Before the server starts, the model is loaded in this process
(``LlamaCppBackend``, n_ctx 2048, the server's thread count), the first 300 tokens of the first
case's file are evaluated, and 32 tokens are generated greedily, timing each ``extend([token])``
(the decode time of one token) and keeping the 32 logit vectors. For every built-in sampler
preset (``Settings().sampling.presets``) the chain from ``sampling.build_sampler(specs, seed=0)``
then samples those 32 real vectors (``sample`` + ``accept``, after a 3-token warm-up):
``sampler_ms_p50`` and ``share_of_decode`` = sampler p50 / decode p50.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import importlib.util
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import SuiteRun, no_config, percentiles, suite_settings

PACKAGES = ("numpy", "pygls", "jinja2")
SKIP_FOLDERS = {"tests", "test"}
MIN_FILE_LINES, MAX_FILE_LINES = 40, 3000
MIN_CONTENT = 12  # characters of a line after its indentation
CUT_AFTER_INDENT, CUT_BEFORE_END = 2, 4
MODES = ("cold", "typed")
PEER_MAX_TOKENS = 64
PEER_N_CTX = 8192
PREFIX_TOKENS = 1024  # the server's default completion.prefix_tokens
SAMPLER_PROMPT_TOKENS = 300
SAMPLER_TOKENS = 32
SAMPLER_WARMUP = 3
WORST = 3
_QUOTES = ('"""', "'''")

Log = Callable[[str], None]


# ------------------------------------------------------------------------------------ cases


@dataclass(frozen=True)
class Case:
    """One line of a real file, cut at ``cut``: the model is asked for the rest of it."""

    rel: str  # the file's path from its package's parent, e.g. "jinja2/utils.py"
    line: int  # 0-based
    indent: int  # characters of indentation
    cut: int  # the cursor's column: indent + 2 <= cut <= len(original) - 4
    text: str = field(repr=False)  # the whole file, "\n" line ends

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def original(self) -> str:
        """The cut line as in the file, right-stripped."""
        return self.lines[self.line].rstrip()

    @property
    def start(self) -> str:
        """The line up to the cut (indentation included)."""
        return self.original[: self.cut]

    @property
    def expected(self) -> str:
        """The rest of the line after the cut."""
        return self.original[self.cut :]

    @property
    def typed(self) -> str:
        """What typed mode inserts: the line from its indentation up to the cut."""
        return self.original[self.indent : self.cut]

    @property
    def where(self) -> str:
        return f"{self.rel}:{self.line + 1}"

    def document(self, head: str) -> str:
        """The file with the cut line replaced by ``head`` (the lines after it kept)."""
        lines = self.lines
        lines[self.line] = head
        return "\n".join(lines)

    def prefix(self, head: str) -> str:
        """The text before the cursor when the cut line holds ``head`` and the cursor ends it."""
        before = self.lines[: self.line]
        return "\n".join([*before, head])


def source_files(packages: Iterable[str] = PACKAGES) -> list[tuple[str, Path]]:
    """(path from the package's parent, file) of every .py file of the installed packages,
    sorted, without tests folders."""
    found: list[tuple[str, Path]] = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            root = Path(location)
            for path in root.rglob("*.py"):
                rel = path.relative_to(root.parent)
                if SKIP_FOLDERS.isdisjoint(rel.parts[:-1]):
                    found.append((rel.as_posix(), path))
    return sorted(set(found))


def code_lines(lines: list[str]) -> list[int]:
    """Indices of the lines a case may cut (see the module docstring)."""
    out: list[int] = []
    inside: str | None = None  # the quote of the triple-quoted string we are in
    for i, line in enumerate(lines):
        if inside is not None:
            if line.count(inside) % 2 == 1:
                inside = None
            continue
        quotes = [q for q in _QUOTES if q in line]
        if quotes:
            first = min(quotes, key=line.index)
            if line.count(first) % 2 == 1:
                inside = first
            continue
        if _is_code(line):
            out.append(i)
    return out


def _is_code(line: str) -> bool:
    content = line.strip()
    return (
        len(content) >= MIN_CONTENT
        and not content.startswith("#")
        and line.isascii()
        and content.isprintable()
    )


def _read(path: Path) -> str | None:
    """The file's text with "\\n" line ends, or None when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8").replace("\r\n", "\n")
    except (OSError, UnicodeDecodeError):
        return None


def _by_package_in_turn(files: list[tuple[str, Path]], rng: random.Random) -> list[tuple[str, Path]]:
    """The files in a seeded order that takes the packages in turn (numpy has most files, but
    each package gets its share of the cases)."""
    groups: dict[str, list[tuple[str, Path]]] = {}
    for item in files:
        groups.setdefault(item[0].split("/")[0], []).append(item)
    shuffled = [rng.sample(group, len(group)) for _, group in sorted(groups.items())]
    return [group[i] for i in range(max(map(len, shuffled), default=0)) for group in shuffled if i < len(group)]


def pick_cases(n: int, seed: int, files: list[tuple[str, Path]] | None = None) -> list[Case]:
    """``n`` cases (fewer if the files run out), the same ones for the same seed and files."""
    files = source_files() if files is None else files
    rng = random.Random(seed)
    cases: list[Case] = []
    for rel, path in _by_package_in_turn(files, rng):
        if len(cases) >= n:
            break
        text = _read(path)
        if text is None or not MIN_FILE_LINES <= len(text.splitlines()) <= MAX_FILE_LINES:
            continue
        lines = text.split("\n")
        candidates = code_lines(lines)
        if not candidates:
            continue
        i = rng.choice(candidates)
        line = lines[i].rstrip()
        indent = len(line) - len(line.lstrip())
        cut = rng.randint(indent + CUT_AFTER_INDENT, len(line) - CUT_BEFORE_END)
        cases.append(Case(rel, i, indent, cut, text))
    return cases


# ---------------------------------------------------------------------------------- answers


@dataclass
class Answer:
    """What one measured request gave: the suggestion from the cursor on, its time, its figures."""

    text: str
    ms: float
    figures: dict[str, Any] = field(default_factory=dict)  # completion.last, or the peer's equivalent

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def score(case: Case, answer: Answer) -> dict[str, Any]:
    """The per-answer metrics of the module docstring."""
    got = answer.first_line.rstrip()
    expected = case.expected
    raw = answer.first_line
    cut_word = (
        bool(raw)
        and "\n" not in answer.text
        and answer.figures.get("stop_reason") in ("time_limit", "max_tokens")
        and _is_word(raw[-1])
        and len(raw) < len(expected)
        and _is_word(expected[len(raw)])
    )
    return {
        "exact": (case.start + got).rstrip() == case.original,
        "similarity": difflib.SequenceMatcher(None, got, expected).ratio() if got else 0.0,
        "empty": not got,
        "fragment": cut_word,
    }


def _rate(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _per_second(tokens: Iterable[float], ms: Iterable[float]) -> float | None:
    total_ms = sum(ms)
    return round(sum(tokens) / total_ms * 1000, 1) if total_ms > 0 else None


def summarise(cases: list[Case], answers: list[Answer]) -> dict[str, Any]:
    """One mode's metrics over its answers (``answers[i]`` answers ``cases[i]``)."""
    scores = [score(c, a) for c, a in zip(cases, answers)]
    engine = [a.figures for a in answers if a.figures.get("source") == "engine"]
    worst = sorted(range(len(scores)), key=lambda i: (scores[i]["similarity"], i))[:WORST]
    return {
        "cases": len(answers),
        "exact_line": _rate([s["exact"] for s in scores]),
        "edit_similarity": _rate([s["similarity"] for s in scores]),
        "empty_rate": _rate([s["empty"] for s in scores]),
        "fragment_rate": _rate([s["fragment"] for s in scores]),
        "latency_ms": percentiles([a.ms for a in answers]),
        "latency_samples_ms": [round(a.ms, 3) for a in answers],
        "tokens_evaluated": percentiles([f.get("tokens_evaluated", 0) for f in engine]),
        "prefill_tokens_per_s": _per_second(
            (f.get("tokens_evaluated", 0) for f in engine), (f.get("prefill_ms") or 0 for f in engine)
        ),
        "decode_tokens_per_s": _per_second(
            (f.get("tokens_generated", 0) for f in engine), (f.get("decode_ms") or 0 for f in engine)
        ),
        "prompt_mode": dict(Counter(str(f.get("prompt_mode")) for f in engine)),
        "sources": dict(Counter(str(a.figures.get("source")) for a in answers)),
        "stop_reasons": dict(Counter(str(f.get("stop_reason")) for f in engine)),
        "threads": dict(Counter(str(f.get("threads")) for f in engine)),  # the server's choice per request
        "ranges_before_cursor": sum(1 for a in answers if a.figures.get("range_before_cursor")),
        "worst": [
            {
                "where": cases[i].where,
                "before": cases[i].start.lstrip(),
                "expected": cases[i].expected,
                "got": answers[i].first_line,
                "similarity": round(scores[i]["similarity"], 3),
            }
            for i in worst
        ],
    }


# ------------------------------------------------------------------------------------- ours

_FIGURES = (
    "source", "engine_ms", "prefill_ms", "decode_ms", "tokens_evaluated", "tokens_generated", "stop_reason",
    "prompt_mode", "prefix_window", "threads",
)  # fmt: skip


def _offset(text: str, line: int, character: int) -> int:
    """The str index of (line, character); the cut line is ASCII, so columns are characters."""
    start = 0
    for _ in range(line):
        start = text.index("\n", start) + 1
    return start + character


def suggestion_text(result: Any, document: str, line: int, character: int) -> tuple[str, int]:
    """The first inline item's text from the cursor on ("" when there is none), and how many
    characters before the cursor its range starts (0: at the cursor, as expected)."""
    items = getattr(result, "items", None) or []
    if not items:
        return "", 0
    item = items[0]
    text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
    rng = item.range
    if rng is not None:
        start = _offset(document, rng.start.line, rng.start.character)
        before = _offset(document, line, character) - start
        if before > 0:
            return text[before:], before
    return text, 0


class OursDriver:
    """The real server over stdio, one process for the whole run, asked as an editor asks."""

    def __init__(self, session, file_uri: Callable[[Path], str], workdir: Path) -> None:
        self.session = session
        self._file_uri = file_uri
        self._workdir = workdir
        self._requests = 0

    async def ask(self, uri: str, document: str, line: int, character: int) -> Answer:
        """One inline completion request, timed, with ``completion.last`` when it reached the service."""
        started = time.perf_counter()
        try:
            result = await self.session.inline(uri, line, character)
            error = None
        except Exception as exc:  # noqa: BLE001 - a failed request is an empty answer, reported
            result, error = None, f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - started) * 1000
        completion = (await self.session.stats())["completion"]
        fresh = completion["requests"] != self._requests
        self._requests = completion["requests"]
        figures = {k: completion["last"].get(k) for k in _FIGURES} if fresh else {"source": "none"}
        if error:
            figures = {"source": "error", "error": error}
        text, figures["range_before_cursor"] = suggestion_text(result, document, line, character)
        return Answer(text, ms, figures)

    def _notify(self, method: str, params: dict[str, Any]) -> None:
        """A notification EditorSession has no call for, its parameters given as JSON."""
        protocol = self.session.client.protocol
        message = protocol.structure_message({"jsonrpc": "2.0", "method": method, "params": params})
        protocol.notify(method, message.params)

    def _close(self, uri: str) -> None:
        self._notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    async def forget_answers(self) -> None:
        """Empty the server's answer cache: the same settings sent again (any settings change
        empties it). Without a workspace the prompt names a file by its name only, so the last
        document of one mode has the same cache key as the first of another."""
        self._notify("workspace/didChangeConfiguration", {"settings": {"gemma": self.session.settings}})
        await self.session.stats()  # handled after the notification

    async def run(self, case: Case, mode: str) -> Answer:
        uri = self._file_uri(self._workdir / mode / case.rel)
        if mode == "cold":
            document = case.document(case.start)
            self.session.open(uri, document)
        else:
            self.session.open(uri, case.document(case.original[: case.indent]))
            await self.ask(uri, case.document(case.original[: case.indent]), case.line, case.indent)
            self.session.replace(uri, (case.line, case.indent), (case.line, case.indent), case.typed)
            document = case.document(case.start)
        try:
            return await self.ask(uri, document, case.line, case.cut)
        finally:
            self._close(uri)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested dicts key by key."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


async def run_ours(
    model: str, cases: list[Case], modes: list[str], extra: dict[str, Any], workdir: Path, log: Log
) -> tuple[dict[str, list[Answer]], dict[str, Any]]:
    """Every case in every mode through one server; also returns the server's model info."""
    from gemma_lsp.lsp.client import EditorSession, file_uri

    settings = _merge({"model": {"path": model, "idle_unload_seconds": 0}}, extra)
    session = EditorSession(settings=settings, server_args=no_config(workdir))
    await session.start()
    answers: dict[str, list[Answer]] = {}
    try:
        stats = await session.wait_until_loaded()
        if stats.get("load_error"):
            raise RuntimeError(stats["load_error"])
        driver = OursDriver(session, file_uri, workdir)
        for mode in modes:
            await driver.forget_answers()
            answers[mode] = []
            for k, case in enumerate(cases):
                answer = await driver.run(case, mode)
                answers[mode].append(answer)
                _log_answer(log, "ours", mode, k, len(cases), case, answer)
    finally:
        await session.stop()
    return answers, stats.get("model") or {}


def _log_answer(log: Log, who: str, mode: str, k: int, n: int, case: Case, answer: Answer) -> None:
    mark = "=" if score(case, answer)["exact"] else "x"
    f = answer.figures
    detail = f"eval {f.get('tokens_evaluated')} gen {f.get('tokens_generated')} {f.get('stop_reason')}"
    log(
        f"{who} {mode} {k + 1}/{n} {case.where} {mark} {answer.ms:.0f} ms ({detail}): "
        f"{answer.first_line.strip()[:50]!r} want {case.expected.strip()[:50]!r}"
    )


# ------------------------------------------------------------------------------------- peer


def run_peer(
    model: str, cases: list[Case], modes: list[str], threads: int, log: Log
) -> tuple[dict[str, list[Answer]], dict[str, Any]]:
    """Every case in every mode as a plain prefix completion (module docstring, **Peer**)."""
    from gemma_lsp.engine.peer import PlainCompletion

    peer = PlainCompletion(model, threads, PEER_N_CTX)
    answers: dict[str, list[Answer]] = {}
    try:
        for mode in modes:
            answers[mode] = []
            for k, case in enumerate(cases):
                if mode == "typed":
                    peer.complete(peer.tail(case.prefix(case.original[: case.indent]), PREFIX_TOKENS), PEER_MAX_TOKENS)
                plain = peer.complete(peer.tail(case.prefix(case.start), PREFIX_TOKENS), PEER_MAX_TOKENS)
                figures = {
                    "source": "engine",
                    "engine_ms": plain.ms,
                    "prefill_ms": plain.prefill_ms,
                    "decode_ms": plain.decode_ms,
                    "tokens_evaluated": plain.tokens_evaluated,
                    "tokens_generated": plain.tokens_generated,
                    "stop_reason": plain.stop_reason,
                    "prompt_mode": "prefix",
                }
                answer = Answer(plain.text, plain.ms, figures)
                answers[mode].append(answer)
                _log_answer(log, "peer", mode, k, len(cases), case, answer)
        setup = {
            "call": "llama_cpp.Llama.create_completion(prompt=prefix, max_tokens=64, temperature=0.0)",
            "n_ctx": PEER_N_CTX,
            "prefix_tokens": PREFIX_TOKENS,
            "n_threads": threads,
            "swa_full": peer.swa_full,
            "model_file": str(peer.path),
        }
    finally:
        peer.close()
    return answers, setup


# ---------------------------------------------------------------------------------- sampler


def run_sampler(model: str, prompt_text: str, threads: int, log: Log) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per built-in preset: the sampler's time per token on real logits, and its share of decoding."""
    import numpy as np

    from gemma_lsp.config import LlamaCppModelSettings, Settings
    from gemma_lsp.engine.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend.load(LlamaCppModelSettings(path=model, n_ctx=2048, n_threads=threads))
    try:
        prompt = [backend.special.bos, *backend.tokenize(prompt_text)[:SAMPLER_PROMPT_TOKENS]]
        logits = backend.eval(prompt).logits
        vectors, decode_ms = [], []
        for _ in range(SAMPLER_TOKENS):
            token = int(np.argmax(logits))
            started = time.perf_counter()
            logits = backend.extend([token]).logits
            decode_ms.append((time.perf_counter() - started) * 1000)
            vectors.append(logits)
        vocab = backend.n_vocab
    finally:
        backend.close()
    decode_p50 = statistics.median(decode_ms)
    log(f"sampler: decode p50 {decode_p50:.2f} ms/token over {SAMPLER_TOKENS} tokens, vocabulary {vocab}")
    presets = {}
    for name, specs in Settings().sampling.presets.items():
        ms = _time_sampler(specs, vectors)
        p50 = statistics.median(ms)
        presets[name] = {
            "sampler_ms_p50": round(p50, 4),
            "sampler_ms_p95": percentiles(ms)["p95"],
            "share_of_decode": round(p50 / decode_p50, 4),
        }
    setup = {"prompt_tokens": len(prompt), "tokens": SAMPLER_TOKENS, "vocab": vocab, "decode_ms": percentiles(decode_ms)}
    return presets, setup


def _time_sampler(specs: list[Any], vectors: list[Any]) -> list[float]:
    """Milliseconds of ``sample`` + ``accept`` per logit vector, after a short warm-up."""
    from gemma_lsp.sampling import build_sampler

    sampler = build_sampler(specs, seed=0)
    for logits in vectors[:SAMPLER_WARMUP]:
        sampler.accept(sampler.sample(logits))
    sampler.reset()
    ms = []
    for logits in vectors:
        started = time.perf_counter()
        sampler.accept(sampler.sample(logits))
        ms.append((time.perf_counter() - started) * 1000)
    return ms


# ----------------------------------------------------------------------------------- report


def _ratio(ours: float | None, peer: float | None) -> float | None:
    return round(ours / peer, 3) if ours is not None and peer else None


def ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    """Ours divided by the peer's: exact_line and latency p50, per mode."""
    out: dict[str, float | None] = {}
    for mode in ours:
        if mode in peer:
            out[f"exact_line_{mode}"] = _ratio(ours[mode]["exact_line"], peer[mode]["exact_line"])
            out[f"latency_p50_{mode}"] = _ratio(ours[mode]["latency_ms"]["p50"], peer[mode]["latency_ms"]["p50"])
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count()}


def run_quality(
    model: str = "gemma3-270m",
    cases: int = 40,
    seed: int = 0,
    modes: list[str] | None = None,
    peer: bool = True,
    sampler: bool = True,
    extra_settings: dict[str, Any] | None = None,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """The whole suite: sampler share, then ours through the server, then the peer."""
    started = time.perf_counter()
    modes = list(modes or MODES)
    extra = extra_settings or {}
    threads = _threads(extra)
    picked = pick_cases(cases, seed)
    log(f"{len(picked)} cases from {', '.join(PACKAGES)} (seed {seed}), {threads} thread(s)")
    durations: dict[str, float] = {}
    report: dict[str, Any] = {
        "suite": "quality", "model": model, "cases": len(picked), "seed": seed, "modes": modes, "threads": threads,
    }  # fmt: skip

    if sampler:
        t0 = time.perf_counter()
        report["sampler"], report["sampler_setup"] = run_sampler(model, picked[0].text if picked else "", threads, log)
        durations["sampler"] = round(time.perf_counter() - t0, 1)

    workdir = Path(tempfile.mkdtemp(prefix="gemma-lsp-quality-"))
    try:
        t0 = time.perf_counter()
        ours, info = asyncio.run(run_ours(model, picked, modes, extra, workdir, log))
        durations["ours"] = round(time.perf_counter() - t0, 1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report["model_file"] = info.get("path")
    report["ours"] = {mode: summarise(picked, ours[mode]) for mode in modes}

    if peer:
        t0 = time.perf_counter()
        theirs, report["peer_setup"] = run_peer(model, picked, modes, threads, log)
        durations["peer"] = round(time.perf_counter() - t0, 1)
        report["peer"] = {mode: summarise(picked, theirs[mode]) for mode in modes}
        report["ratios"] = ratios(report["ours"], report["peer"])
    report["machine"] = machine()
    durations["total"] = round(time.perf_counter() - started, 1)
    report["duration_s"] = durations
    return report


def _threads(extra: dict[str, Any]) -> int:
    from gemma_lsp.engine.peer import server_threads

    model = extra.get("model")
    return server_threads(model.get("n_threads") if isinstance(model, dict) else None)


def format_table(report: dict[str, Any]) -> str:
    """The report as a readable table: one row per side and mode, then ratios, sampler, examples."""
    head = (
        f"quality: {report['model']} ({report.get('model_file')}), {report['cases']} cases, seed {report['seed']}, "
        f"{report['threads']} thread(s), {report['machine']['cpu']} x{report['machine']['cores']}"
    )
    columns = (
        f"{'':12}{'exact':>7}{'similar':>9}{'empty':>7}{'fragm.':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'prefill/s':>11}{'decode/s':>10}  prompt"
    )
    rows = [head, "", columns]
    for side in ("ours", "peer"):
        for mode, m in report.get(side, {}).items():
            rows.append(
                f"{side + ' ' + mode:12}{_fmt(m['exact_line']):>7}{_fmt(m['edit_similarity']):>9}"
                f"{_fmt(m['empty_rate']):>7}{_fmt(m['fragment_rate']):>8}{_fmt(m['latency_ms']['p50'], 0):>9}"
                f"{_fmt(m['latency_ms']['p95'], 0):>9}{_fmt(m['prefill_tokens_per_s'], 0):>11}"
                f"{_fmt(m['decode_tokens_per_s'], 0):>10}  {m['prompt_mode']}"
            )
    if report.get("ratios"):
        rows += ["", "ours / peer: " + ", ".join(f"{k} {_fmt(v)}" for k, v in report["ratios"].items())]
    if report.get("sampler"):
        decode = report["sampler_setup"]["decode_ms"]["p50"]
        rows += ["", f"sampler per token (decode p50 {decode} ms/token):"]
        rows += [
            f"  {name:10} p50 {s['sampler_ms_p50']:8.3f} ms  {s['share_of_decode'] * 100:6.1f}% of decode"
            for name, s in report["sampler"].items()
        ]
    for mode, m in report.get("ours", {}).items():
        rows += ["", f"least similar, ours {mode}:"]
        for w in m["worst"]:
            rows += [
                f"  {w['where']}: {w['before'][-60:]!r}",
                f"      expected {w['expected'][:90]!r}",
                f"      got      {w['got'][:90]!r}",
            ]
    rows += ["", f"took {report['duration_s']}"]
    return "\n".join(rows)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run(argv: list[str] | None = None) -> SuiteRun:
    p = argparse.ArgumentParser(prog="gemma-lsp bench quality", description="Completion quality and speed on real code.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--model", default="gemma3-270m", help="a named model or a Gemma GGUF (default: gemma3-270m)")
    p.add_argument("--cases", type=int, default=40)
    p.add_argument("--seed", type=int, default=0, help="which cases (another seed: a held-back set)")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: cold, typed")
    p.add_argument("--no-peer", action="store_true", help="skip the plain llama-cpp-python baseline")
    p.add_argument("--no-sampler", action="store_true", help="skip the sampler share")
    p.add_argument("--settings", default="{}", help="JSON merged into the server's settings")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        p.error(f"--modes takes a comma-separated list of {', '.join(MODES)}")
    try:
        extra = json.loads(args.settings)
    except json.JSONDecodeError as exc:
        p.error(f"--settings is not JSON: {exc}")
    if not isinstance(extra, dict):
        p.error("--settings must be a JSON object")
    log: Log = (lambda m: None) if args.quiet else (lambda m: print(f"[bench quality] {m}", file=sys.stderr, flush=True))
    report = run_quality(
        args.model, args.cases, args.seed, modes, not args.no_peer, not args.no_sampler, extra, log
    )
    from gemma_lsp.config import LlamaCppModelSettings

    model_settings = extra.get("model") if isinstance(extra.get("model"), dict) else {}
    n_ctx = model_settings.get("n_ctx") or LlamaCppModelSettings().n_ctx
    settings = suite_settings(args) | {"settings": extra}
    return SuiteRun("quality", report, format_table(report), args.json, model=args.model, settings=settings, n_ctx=n_ctx)


def main(argv: list[str] | None = None) -> int:
    print(run(argv).output())
    return 0


if __name__ == "__main__":
    sys.exit(main())
