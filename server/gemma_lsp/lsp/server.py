"""The pygls server: lifecycle, documents, configuration, progress and messages.

Only this package imports pygls and lsprotocol. Features live in their own modules and turn
LSP params into plain calls on the domain layers (``completion/``, ``engine/``) and back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from gemma_lsp import __version__
from gemma_lsp.completion import CompletionService
from gemma_lsp.config import CompletionSettings, Settings, apply_layer, load_file
from gemma_lsp.engine import EngineManager
from gemma_lsp.errors import ConfigError, ModelUnavailable
from gemma_lsp.prompts import library_for
from gemma_lsp.sampling import Sampler
from gemma_lsp.sampling.build import build_sampler

from .documents import DocumentStore
from .protocol import GemmaProtocol

log = logging.getLogger(__name__)

CONFIG_SECTION = "gemma"


class GemmaLanguageServer(LanguageServer):
    """Holds the server's state as typed attributes; features reach it through ``ls``."""

    def __init__(
        self,
        config_path: Path | None = None,
        overrides: dict[str, Any] | None = None,
        cli_log_level: int = logging.WARNING,
    ) -> None:
        super().__init__(
            "gemma-lsp",
            __version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            protocol_cls=GemmaProtocol,
        )
        self.documents = DocumentStore()
        self.config_path = config_path
        self.cli_overrides = overrides or {}
        self.cli_log_level = cli_log_level
        self.settings = Settings()
        self.engine = EngineManager(self.settings.model)
        self.completions = CompletionService(self.engine, lambda: self.settings.completion, self._completion_sampler)
        self._load_task: asyncio.Task | None = None
        self._reported_load_error: str | None = None
        self._root: Path | None = None
        self.last_completed_uri: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self.memory = None  # the workspace's MemoryService, made at initialize (lsp/memory.py)
        self.prompts = library_for(self.settings.prompts)

    def _completion_sampler(self, completion: CompletionSettings) -> Sampler:
        """The sampler chain of the completion's preset, seeded (the same prompt gives the same text)."""
        specs = self.settings.sampling.preset_for("completion", completion.preset)
        return build_sampler(specs, seed=completion.seed if completion.seed is not None else 0)

    # --------------------------------------------------------------- messages
    def tell(self, message: str, kind: lsp.MessageType = lsp.MessageType.Error) -> None:
        """One sentence to the user (window/showMessage) and to the log."""
        (log.error if kind == lsp.MessageType.Error else log.warning if kind == lsp.MessageType.Warning else log.info)(
            message
        )
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=f"gemma-lsp: {message}"))

    # ----------------------------------------------------------------- config
    def set_root(self, root_uri: str | None, root_path: str | None) -> None:
        if root_uri and root_uri.startswith("file:"):
            self._root = Path(unquote(urlparse(root_uri).path))
        elif root_path:
            self._root = Path(root_path)

    def initial_settings(self, init_options: Any) -> None:
        """defaults <- TOML file <- command-line overrides <- initializationOptions."""

        settings = Settings()
        for name, layer in (
            ("config file", lambda: load_file(self.config_path) if self.config_path else {}),
            ("command line", lambda: self.cli_overrides),
            ("initializationOptions", lambda: _section(init_options)),
        ):
            try:
                settings = apply_layer(settings, layer())
            except ConfigError as exc:
                self.tell(f"{exc} ({name}; using the previous values)")
        self.adopt(settings)
        self.engine.configure(settings.model)

    def adopt(self, settings: Settings) -> None:
        if settings.prompts.dirs != self.settings.prompts.dirs:
            self.prompts = library_for(settings.prompts)
        self.settings = settings
        # The more verbose of log.level and the command line's -v wins.
        level = min(logging.getLevelName(settings.log.level.upper()), self.cli_log_level)
        logging.getLogger("gemma_lsp").setLevel(level)

    async def change_settings(self, layer: Any) -> None:
        try:
            settings = apply_layer(self.settings, _section(layer))
        except ConfigError as exc:
            self.tell(f"{exc} The previous settings stay in force.")
            return
        model_changed = settings.model != self.settings.model
        self.adopt(settings)
        self.completions.clear_cache()  # any setting may change what the model would write
        if model_changed and await self.engine.reconfigure(settings.model):
            self._reported_load_error = None
            self.start_loading()

    def background(self, coroutine) -> asyncio.Task:
        """Run ``coroutine`` as a task the server keeps a reference to until it ends."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def display_path(self, uri: str) -> str | None:
        """The document's path as the model sees it: relative to the workspace root when inside it."""
        if not uri.startswith("file:"):
            return None
        path = Path(unquote(urlparse(uri).path))
        root = self._root
        if root is not None:
            try:
                return path.relative_to(root).as_posix()
            except ValueError:
                pass
        return path.name

    def note_file(self, uri: str, line: int, prefetch: bool = True) -> None:
        """Offer a chunk of an open document to the completion's extra context."""
        doc = self.documents.get(uri)
        path = self.display_path(uri)
        if doc is not None and path is not None:
            self.completions.note_file(path, doc.text, line, prefetch)

    # ------------------------------------------------------------ model load
    def start_loading(self) -> None:
        """Load the model in the background with work-done progress; never blocks a request."""
        if self._load_task is None or self._load_task.done():
            self._load_task = asyncio.ensure_future(self._load_with_progress())

    async def _load_with_progress(self) -> None:
        token = f"gemma-lsp/load/{uuid.uuid4()}"
        path = self.settings.model.path
        progress = path is not None and await self.begin_progress(token, f"Loading {path.name}")
        loop = asyncio.get_running_loop()

        def report(message: str, percentage: int) -> None:
            if progress:
                loop.call_soon_threadsafe(
                    self.work_done_progress.report,
                    token,
                    lsp.WorkDoneProgressReport(message=message, percentage=percentage),
                )

        self.engine.set_progress_callback(report)
        try:
            info = await self.engine.load()
            end = f"{info.architecture}, {info.n_params / 1e6:.1f}M parameters, context {info.n_ctx}"
        except ModelUnavailable as exc:
            end = "failed"
            self.report_unavailable(exc)
        finally:
            self.engine.set_progress_callback(None)
        if progress:
            self.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=end))

    async def begin_progress(self, token: str, title: str) -> bool:
        caps = self.client_capabilities
        if not (caps and caps.window and caps.window.work_done_progress):
            return False
        try:
            await self.work_done_progress.create_async(token)
        except Exception as exc:  # the client refused: go on without progress
            log.debug("work done progress refused: %s", exc)
            return False
        self.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(title=title, percentage=0, cancellable=False))
        return True

    def report_unavailable(self, exc: ModelUnavailable) -> None:
        """Say once per distinct problem why there are no completions."""
        message = str(exc)
        if message != self._reported_load_error:
            self._reported_load_error = message
            self.tell(message)


def _section(options: Any) -> dict[str, Any]:
    """Settings from initializationOptions or didChangeConfiguration: ``{"gemma": {...}}`` or flat."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ConfigError(f"Invalid settings: expected an object, got {type(options).__name__}.")
    if CONFIG_SECTION in options:
        inner = options[CONFIG_SECTION]
        return inner if isinstance(inner, dict) else {}
    return options
