"""A language feature: one object per concern, with lifecycle hooks that do nothing by default.

The server registers every LSP method once and fans lifecycle events out to each feature,
catching a feature's error so that the others keep serving. A feature also owns requests and
commands, marked on its methods:

    class Memory(LanguageFeature):
        @command(protocol.MEMORY_SEARCH)
        async def search(self, arg: dict) -> list: ...

        @request(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions())
        async def complete(self, params: lsp.CompletionParams): ...

A command method gets the command's one object argument as a plain dict. Document hooks are
synchronous (they run on every keystroke); work that waits goes to ``self.server.background``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types as lsp

if TYPE_CHECKING:
    from gemma_lsp.app import Applied, Services

    from .server import GemmaLanguageServer

F = TypeVar("F", bound=Callable[..., Any])

HOOKS = (
    "initialize", "initialized", "settings_changed", "document_opened", "document_changed",
    "document_saved", "document_closed", "shutdown",
)  # fmt: skip


def request(method: str, options: Any = None) -> Callable[[F], F]:
    """Mark a feature method as the handler of LSP request or notification ``method``."""

    def mark(fn: F) -> F:
        fn.__gemma_handler__ = ("request", method, options)  # type: ignore[attr-defined]
        return fn

    return mark


def command(name: str) -> Callable[[F], F]:
    """Mark a feature method as the handler of ``workspace/executeCommand`` ``name``."""

    def mark(fn: F) -> F:
        fn.__gemma_handler__ = ("command", name, None)  # type: ignore[attr-defined]
        return fn

    return mark


class LanguageFeature:
    """Base of every feature; override only the hooks that matter to it."""

    name = "feature"

    def __init__(self, server: "GemmaLanguageServer") -> None:
        self.server = server

    @property
    def services(self) -> "Services":
        return self.server.services

    def handlers(self) -> list[tuple[str, str, Any, Callable[..., Any]]]:
        """(kind, method or command name, options, bound method) for every marked method."""
        found = []
        for attr in dir(type(self)):
            mark = getattr(getattr(type(self), attr), "__gemma_handler__", None)
            if mark is not None:
                kind, name, options = mark
                found.append((kind, name, options, getattr(self, attr)))
        return found

    # ------------------------------------------------------------- lifecycle hooks
    def initialize(self, params: lsp.InitializeParams) -> None:
        """The services exist and the settings are merged; nothing is loaded yet."""

    def initialized(self) -> None:
        """The client is ready: start background work (loading, indexing)."""

    async def settings_changed(self, applied: "Applied") -> None:
        """The services have adopted new settings; ``applied`` says what changed."""

    def document_opened(self, uri: str) -> None: ...

    def document_changed(self, uri: str) -> None: ...

    def document_saved(self, uri: str) -> None: ...

    def document_closed(self, uri: str) -> None: ...

    async def shutdown(self) -> None: ...
