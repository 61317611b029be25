"""The model: loaded in the background with work-done progress, reloaded when its settings
change; ``gemma/stats`` reports the engine's counters and the last request's figures."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

from lsprotocol import types as lsp

from gemma_lsp import protocol
from gemma_lsp.app import Applied
from gemma_lsp.errors import ModelUnavailable

from .feature import LanguageFeature, request
from .values import plain, validated


class ModelFeature(LanguageFeature):
    name = "model"

    def __init__(self, server) -> None:
        super().__init__(server)
        self._load_task: asyncio.Task | None = None

    def initialized(self) -> None:
        # The initialize answer never waits for the model: it loads now, in the background.
        self.start_loading()

    async def settings_changed(self, applied: Applied) -> None:
        if applied.model:
            self.start_loading()

    def start_loading(self) -> None:
        """Load the model in the background with work-done progress; never blocks a request."""
        if self._load_task is None or self._load_task.done():
            self._load_task = self.server.background(self._load_with_progress())

    async def _load_with_progress(self) -> None:
        server, engine = self.server, self.services.engine
        token = f"gemma-lsp/load/{uuid.uuid4()}"
        label = (engine.pending or engine.settings).label
        progress = label is not None and await server.begin_progress(token, f"Loading {label}")
        loop = asyncio.get_running_loop()

        def report(message: str, percentage: int) -> None:
            if progress:
                loop.call_soon_threadsafe(
                    server.work_done_progress.report,
                    token,
                    lsp.WorkDoneProgressReport(message=message, percentage=percentage),
                )

        engine.set_progress_callback(report)
        try:
            info = await engine.load()
            end = f"{info.architecture}, {info.n_params / 1e6:.1f}M parameters, context {info.n_ctx}"
            if not info.n_params:  # a remote server's model: where it is served
                end = f"served by {info.path}, context {info.n_ctx}"
        except ModelUnavailable as exc:
            end = "failed"
            server.report_unavailable(exc)
        finally:
            engine.set_progress_callback(None)
        if progress:
            server.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=end))

    @request(protocol.STATS)
    def stats(self, params: Any) -> dict[str, Any]:
        """Engine counters and the last request's figures (used by tests and benchmarks)."""
        validated(protocol.STATS, plain(params) if params is not None else None)
        engine = self.services.engine
        info = engine.info
        return {
            "loaded": engine.loaded,
            "backend": engine.settings.backend,
            "remote": engine.status(),
            "model": dataclasses.asdict(info) if info else None,
            "load_error": engine.load_error,
            **dataclasses.asdict(engine.stats),
            "completion": dataclasses.asdict(self.services.completions.stats),
        }
