"""Prompt templates over LSP: list them, and render one exactly as the model would receive it.

``gemma.prompt.render`` fills a template in for the selection ``range`` of the open document
``uri`` (or ``text``), with ``rag_context`` and ``rag_recent`` from the workspace's memories.
Template authors use it to see what a prompt really says; the code actions and chat render
through the same path (``Services.render``). Templates are re-read whenever their files change.

The template folders are watched (``prompts/watch.py``) from ``initialized`` to ``shutdown``: a
template saved broken is checked at once, logged once, and reported as a diagnostic on its line
while the file is open in the editor (also when it is opened later); saved fixed, the
diagnostic is cleared.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from gemma_lsp import protocol
from gemma_lsp.prompts import PromptError, PromptInputs
from gemma_lsp.prompts.library import SUFFIX
from gemma_lsp.prompts.watch import TemplateWatcher
from gemma_lsp.uri import uri_to_path

from .feature import LanguageFeature, command
from .values import selected_text

log = logging.getLogger(__name__)


def _key(path: Path) -> Path:
    """A template file's identity: its folder's real path and its own name (the file may be a link)."""
    return Path(os.path.realpath(path.parent)) / path.name


class PromptsFeature(LanguageFeature):
    name = "prompts"

    def __init__(self, server) -> None:
        super().__init__(server)
        self._watcher: TemplateWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: dict[Path, str] = {}  # template file -> the URI the editor opened it as
        self._problems: dict[Path, str] = {}  # template file -> its problem, as last logged

    # ------------------------------------------------------------------ lifecycle
    def initialized(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._watch()
        self.server.background(asyncio.to_thread(self.services.prompts.warm))  # the first render need not wait

    async def settings_changed(self, applied) -> None:
        if applied.prompts:
            self._watch()
            self._check(set(self._open))

    async def shutdown(self) -> None:
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.stop)
            self._watcher = None

    def document_opened(self, uri: str) -> None:
        path = self._template_file(uri)
        if path is not None:
            self._open[path] = uri
            self._check({path}, publish_clean=False)

    def document_closed(self, uri: str) -> None:
        path = self._template_file(uri)
        if path is not None and self._open.pop(path, None) is not None and path in self._problems:
            self._publish(uri, None)

    # ------------------------------------------------------------------ watching
    def _watch(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        loop = self._loop
        if loop is None:
            return
        self._watcher = TemplateWatcher(
            self.services.prompts.dirs, lambda paths: loop.call_soon_threadsafe(self._check, paths)
        )
        watched = self._watcher.start()
        log.debug("watching the prompt folders %s", ", ".join(map(str, watched)) or "(none exist)")

    def _template_file(self, uri: str) -> Path | None:
        path = uri_to_path(uri)
        if path is None or not path.name.endswith(SUFFIX):
            return None
        folders = {Path(os.path.realpath(d)) for d in self.services.prompts.dirs}
        key = _key(path)
        return key if key.parent in folders else None

    def _check(self, paths: set[Path], *, publish_clean: bool = True) -> None:
        """Check each template file as it is on disk now; log a new problem once, and tell the
        editor about the files it has open."""
        library = self.services.prompts
        for path in map(_key, paths):
            problem = library.check(path) if path.exists() else None
            before = self._problems.pop(path, None)
            if problem is not None:
                self._problems[path] = problem[0]
                if problem[0] != before:
                    log.warning("%s", problem[0])
            elif before is not None:
                log.info("the prompt template %s is fixed", path)
            uri = self._open.get(path)
            if uri is not None and (problem is not None or before is not None or publish_clean):
                self._publish(uri, problem)

    def _publish(self, uri: str, problem: tuple[str, int] | None) -> None:
        diagnostics = []
        if problem is not None:
            message, line = problem
            diagnostics.append(lsp.Diagnostic(
                range=lsp.Range(start=lsp.Position(line=max(line - 1, 0), character=0),
                                end=lsp.Position(line=max(line, 1), character=0)),
                message=message, severity=lsp.DiagnosticSeverity.Error, source="gemma-lsp",
            ))  # fmt: skip
        self.server.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))

    @command(protocol.PROMPT_LIST)
    async def list_prompts(self, arg: dict) -> list[dict]:
        try:
            return self.services.prompts.status()
        except PromptError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    @command(protocol.PROMPT_RENDER)
    async def render(self, arg: dict) -> dict:
        name = arg.get("template")
        if not isinstance(name, str) or not name:
            raise JsonRpcInvalidParams(
                f"{protocol.PROMPT_RENDER} needs template: the name of a prompt template (see {protocol.PROMPT_LIST})."
            )
        inputs = prompt_inputs(self.server, protocol.PROMPT_RENDER, arg)
        try:
            rendered = await self.services.render(name, inputs)
        except PromptError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        return rendered.to_json()


def prompt_inputs(server, name: str, arg: dict) -> PromptInputs:
    """A template's inputs from ``{uri?, range?, text?, question?}``: the selection of an open
    document (or ``text``), its path and language; one clear error for each bad value."""
    question = arg.get("question") or ""
    if not isinstance(question, str):
        raise JsonRpcInvalidParams(f"{name}: question must be a string.")
    uri = arg.get("uri")
    text, start_line, end_line, path, language = arg.get("text") or "", 0, 0, "", ""
    if not isinstance(text, str):
        raise JsonRpcInvalidParams(f"{name}: text must be a string.")
    if uri is not None and not isinstance(uri, str):
        raise JsonRpcInvalidParams(f"{name}: uri must be a string.")
    if uri:
        doc = server.documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"{name}: {uri} is not open.")
        path, language = server.display_path(uri) or uri, doc.language_id
        if arg.get("range") is not None and not text:
            text, start_line, end_line = selected_text(server.documents, name, uri, arg["range"])
    elif arg.get("range") is not None:
        raise JsonRpcInvalidParams(f"{name}: a range needs the uri of the open document it is in.")
    return PromptInputs(
        selection=text, question=question, path=path, language=language, start_line=start_line,
        end_line=end_line, uri=uri or "",
    )
