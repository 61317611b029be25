"""Prompt templates: ``*.jinja`` files read from folders, checked when loaded, reloaded when edited.

A template is data the user owns: ``prompts/explain.jinja`` renders the message the model gets for
"explain this". It may start with TOML front matter between ``+++`` lines::

    +++
    description = "Explain the selected code"
    rag_budget_tokens = 1024     # tokens of retrieved memories; default from [prompts]
    recent_budget_tokens = 256   # tokens of recent episodic memories
    +++
    {% if rag_context %}Code and notes from this workspace:
    {{ rag_context }}
    {% endif %}Explain this {{ language }} code from {{ path }}:
    {{ selection }}

Folders are searched in order and the first file of a name wins, so a user's folder placed
before the built-in one overrides single templates. Every lookup checks the files' modification
times (a few ``stat`` calls), so an edited template is used at once, without a restart.

Templates run in a bounded Jinja sandbox (``sandbox.py``: no Python objects, no huge values),
in a worker process with a deadline and a memory limit (``worker.py``), and may only use the
variables in :data:`VARIABLES`; a typo such as ``{{ selecton }}`` is reported when the file is
loaded, not silently rendered as nothing. A template file (or an included one) whose real path
is outside its folder, through a link, is refused. Every problem is one :class:`PromptError`
sentence naming the file and, where there is one, the line.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from gemma_lsp.errors import GemmaLspError

from .sandbox import DEFAULT_MAX_CHARS, BoundedEnvironment, TemplateLimit, confined
from .worker import ENVIRONMENT_OPTIONS, RenderFailed, RenderPool

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUFFIX = ".jinja"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

# What every template may use. All are always defined (empty when there is nothing to say), so a
# template can test them with ``{% if rag_context %}``.
VARIABLES: dict[str, str] = {
    "selection": "the selected text (or the code the action is about), without trailing line breaks",
    "question": "what the user asked, for chat and 'ask about this'",
    "path": "the file's path, relative to the workspace root",
    "language": "the file's language id (python, typescript, ...)",
    "start_line": "first line of the selection, 1-based (0 without a selection)",
    "end_line": "last line of the selection, 1-based (0 without a selection)",
    "lines": "the selection's lines as words: 'line 7' or 'lines 7-12' ('' without a selection)",
    "rag_context": "retrieved workspace memories (code chunks, notes) under source headers",
    "rag_recent": "recent episodic memories (chat turns, accepted completions), oldest first",
}
MEMORY_VARIABLES = ("rag_context", "rag_recent")
_FRONT_MATTER_KEYS = {"description": str, "rag_budget_tokens": int, "recent_budget_tokens": int}


class PromptError(GemmaLspError):
    """A template is missing, invalid, or failed to render; the message names the file."""


def builtin_prompt_dir() -> Path:
    """The project's own ``prompts/`` folder (next to ``server/`` in the checkout)."""
    return Path(__file__).resolve().parents[3] / "prompts"


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    description: str
    variables: frozenset[str]
    rag_budget_tokens: int | None = None
    recent_budget_tokens: int | None = None
    body_line: int = 1  # the file line the template body starts on (after any front matter)
    source: str = field(default="", repr=False, compare=False)  # the body, as rendered

    @property
    def uses_memories(self) -> bool:
        return any(v in self.variables for v in MEMORY_VARIABLES)


@dataclass(frozen=True)
class _Entry:
    stamp: tuple[int, int]  # (mtime_ns, size) when loaded
    template: Template | None
    error: str | None
    line: int = 1  # the file line the error is on (1 when it is about the whole file)


class PromptLibrary:
    """The templates of some folders, by name, always as they are on disk now."""

    def __init__(
        self,
        dirs: list[Path | str],
        *,
        timeout_seconds: float = 3.0,
        memory_mb: int = 512,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        """``timeout_seconds``, ``memory_mb`` and ``max_chars`` bound one render: its time, the
        worker's memory, and the size of every string it makes (its output included)."""
        self.dirs = [Path(d).expanduser() for d in dirs]
        self.max_chars = max_chars
        self._env = BoundedEnvironment(self.dirs, max_chars, **ENVIRONMENT_OPTIONS)  # parses; never renders
        self._pool = RenderPool(seconds=timeout_seconds, memory_mb=memory_mb)
        self._entries: dict[Path, _Entry] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lookups
    def names(self) -> list[str]:
        return sorted(self._files())

    def get(self, name: str) -> Template:
        """The template ``name``, reloaded if its file changed; raises PromptError if it is missing or
        invalid."""
        if not NAME.match(name or ""):
            raise PromptError(
                f"{name!r} is not a template name: use lowercase letters, digits, '-' and '_' (e.g. 'explain')."
            )
        path = self._files().get(name)
        if path is None:
            known = ", ".join(self.names()) or "none"
            where = ", ".join(str(d) for d in self.dirs) or "no folder"
            raise PromptError(f"There is no prompt template {name!r} in {where} (templates: {known}).")
        entry = self._load(path)
        if entry.error is not None:
            raise PromptError(entry.error)
        assert entry.template is not None
        return entry.template

    def status(self) -> list[dict[str, Any]]:
        """Every template with its file, description, and the error that stops it, if any."""
        out = []
        for name, path in sorted(self._files().items()):
            entry = self._load(path)
            template = entry.template
            out.append({
                "name": name,
                "path": str(path),
                "description": template.description if template else "",
                "variables": sorted(template.variables) if template else [],
                "error": entry.error,
            })
        return out

    def render(self, name: str, values: dict[str, Any]) -> str:
        return self.render_template(self.get(name), values)

    def render_template(self, template: Template, values: dict[str, Any]) -> str:
        """``template`` filled in with ``values``, in a worker process within the limits; blocks
        (call it from a thread in async code). Raises PromptError naming the file and the limit."""
        job = {
            "dirs": [str(d) for d in self.dirs],
            "source": template.source,
            "values": {name: values.get(name, "") for name in VARIABLES},
            "max_chars": self.max_chars,
        }
        try:
            return self._pool.render(job)
        except RenderFailed as exc:
            where = f", line {exc.line + template.body_line - 1}" if exc.line else ""
            raise PromptError(f"{template.path}{where}: {exc.reason.rstrip('.')}.") from None

    def warm(self) -> None:
        """Start a render worker now (the first render then does not wait for one)."""
        self._pool.warm()

    def close(self) -> None:
        """Stop the render workers; the library may not render afterwards."""
        self._pool.close()

    def check(self, path: Path) -> tuple[str, int] | None:
        """The problem of the template file ``path`` as it is on disk now, and the line it is on
        (None when the file loads)."""
        entry = self._load(Path(path))
        return (entry.error, entry.line) if entry.error is not None else None

    # ------------------------------------------------------------------ loading
    def _files(self) -> dict[str, Path]:
        """name -> file, the first folder having it winning."""
        found: dict[str, Path] = {}
        for folder in self.dirs:
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise PromptError(f"Cannot read the prompt folder {folder}: {exc.strerror or exc}.") from None
            for e in sorted(entries, key=lambda e: e.name):
                if e.name.endswith(SUFFIX) and e.is_file():
                    name = e.name[: -len(SUFFIX)]
                    if NAME.match(name):
                        found.setdefault(name, Path(e.path))
        return found

    def _load(self, path: Path) -> _Entry:
        try:
            confined(path, path.parent)
            st = path.stat()
        except TemplateLimit as exc:
            return _Entry((0, 0), None, f"{exc}.")
        except OSError as exc:
            return _Entry((0, 0), None, f"Cannot read the prompt template {path}: {exc.strerror or exc}.")
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            entry = self._entries.get(path)
            if entry is None or entry.stamp != stamp:
                entry = self._entries[path] = self._parse(path, stamp)
        return entry

    def _parse(self, path: Path, stamp: tuple[int, int]) -> _Entry:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return _Entry(stamp, None, f"The prompt template {path} is not UTF-8 text.")
        except OSError as exc:
            return _Entry(stamp, None, f"Cannot read the prompt template {path}: {exc.strerror or exc}.")
        try:
            meta, body, body_line = _front_matter(text, path)
            ast = self._env.parse(body)
        except PromptError as exc:
            return _Entry(stamp, None, str(exc))
        except jinja2.TemplateSyntaxError as exc:
            line = (exc.lineno or 1) + body_line - 1
            return _Entry(stamp, None, f"{path}, line {line}: {_reason(exc)}", line)
        unknown = sorted(jinja2.meta.find_undeclared_variables(ast) - set(VARIABLES))
        if unknown:
            names = ", ".join(unknown)
            first = re.search(rf"\b{re.escape(unknown[0])}\b", body)
            return _Entry(
                stamp, None,
                f"{path} uses {names}, which no prompt receives; the variables are {', '.join(VARIABLES)}.",
                body.count("\n", 0, first.start()) + body_line if first else body_line,
            )
        template = Template(
            name=path.name[: -len(SUFFIX)],
            path=path,
            description=meta.get("description", ""),
            variables=frozenset(jinja2.meta.find_undeclared_variables(ast)),
            rag_budget_tokens=meta.get("rag_budget_tokens"),
            recent_budget_tokens=meta.get("recent_budget_tokens"),
            body_line=body_line,
            source=body,
        )
        return _Entry(stamp, template, None)


def _front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    """(metadata, body, the file line the body starts on)."""
    if not text.startswith("+++"):
        return {}, text, 1
    lines = text.split("\n")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    except StopIteration:
        raise PromptError(f"{path}: the front matter opened by '+++' on line 1 is never closed.") from None
    try:
        meta = tomllib.loads("\n".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        raise PromptError(f"{path}: the front matter is not valid TOML ({exc}).") from None
    for key, value in meta.items():
        kind = _FRONT_MATTER_KEYS.get(key)
        if kind is None:
            raise PromptError(
                f"{path}: unknown front matter key {key!r} (known: {', '.join(_FRONT_MATTER_KEYS)})."
            )
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and not 0 <= value <= 65536):
            wanted = "a string" if kind is str else "a whole number from 0 to 65536"
            raise PromptError(f"{path}: front matter {key} must be {wanted}, got {value!r}.")
    return meta, "\n".join(lines[end + 1 :]), end + 2


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message.rstrip(".") + "."
