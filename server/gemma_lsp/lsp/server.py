"""The pygls server: settings, the services, messages and progress, and the fan-out to features.

Only this package imports pygls and lsprotocol. The server builds no service itself: at
``initialize`` it merges the settings and asks ``gemma_lsp.app.Services`` for them. Each LSP
method is registered once; lifecycle events reach every feature (``lsp/feature.py``), and an
error in one feature is logged and reported once while the others keep serving.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer

from gemma_lsp import __version__
from gemma_lsp.app import Services
from gemma_lsp.config import Settings, apply_layer, load_file
from gemma_lsp.errors import Cancelled, ConfigError, ModelUnavailable, PromptTooLong
from gemma_lsp.uri import relative_display_path, uri_to_path

from .documents import DocumentStore
from .feature import HOOKS, LanguageFeature
from .protocol import GemmaProtocol, strict_converter
from .values import command_argument

log = logging.getLogger(__name__)

CONFIG_SECTION = "gemma"
SHUTDOWN_SECONDS = 10.0
"""The shutdown request waits this long for the services to close before answering."""
_LEVELS = {"error": lsp.MessageType.Error, "warning": lsp.MessageType.Warning, "info": lsp.MessageType.Info}


class GemmaLanguageServer(LanguageServer):
    """Holds the server's state as typed attributes; features reach it through ``self.server``."""

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
            converter_factory=strict_converter,
        )
        self.documents = DocumentStore()
        self.config_path = config_path
        self.cli_overrides = overrides or {}
        self.cli_log_level = cli_log_level
        self.settings = Settings()
        self.root: Path | None = None
        self._services: Services | None = None
        self.features: list[LanguageFeature] = []
        self._tasks: set[asyncio.Task] = set()
        self._reported: set[str] = set()
        self._reported_load_error: str | None = None
        self.message_loop = None  # transport.MessageLoop, set when serving
        self.shutdown_requested = False
        self._closing: asyncio.Future | None = None
        self._register_lifecycle()

    @property
    def services(self) -> Services:
        if self._services is None:
            raise JsonRpcInternalError("The server has not been initialized yet.")
        return self._services

    # --------------------------------------------------------------- features
    def add_feature(self, feature: LanguageFeature) -> None:
        """Register ``feature``'s requests and commands; each name may have only one owner."""
        self.features.append(feature)
        for kind, name, options, method in feature.handlers():
            if kind == "command":
                self.command(name)(self._command_handler(feature, name, method))
            else:
                self.feature(name, options)(self._request_handler(feature, name, method))

    def _request_handler(self, feature: LanguageFeature, name: str, method):
        if inspect.iscoroutinefunction(method):

            async def handle(ls: GemmaLanguageServer, params: Any) -> Any:
                try:
                    return await method(params)
                except Exception as exc:  # noqa: BLE001 - sorted out by _failed
                    raise self._failed(feature, name, exc) from None

        else:

            def handle(ls: GemmaLanguageServer, params: Any) -> Any:
                try:
                    return method(params)
                except Exception as exc:  # noqa: BLE001
                    raise self._failed(feature, name, exc) from None

        return handle

    def _command_handler(self, feature: LanguageFeature, name: str, method):
        async def handle(ls: GemmaLanguageServer, *args: Any) -> Any:
            try:
                return await method(command_argument(args, name))
            except Exception as exc:  # noqa: BLE001
                raise self._failed(feature, name, exc) from None

        return handle

    def _failed(self, feature: LanguageFeature, where: str, exc: Exception) -> Exception:
        """The error to answer with; an unexpected one is logged and told to the user once."""
        if isinstance(exc, JsonRpcException):
            return exc  # a deliberate answer: invalid params, cancelled, ...
        if isinstance(exc, Cancelled):
            return JsonRpcRequestCancelled(str(exc))
        if isinstance(exc, PromptTooLong):  # the user's text, not the server, is the problem
            return JsonRpcInvalidParams(f"{where}: {exc}")
        log.error("%s failed in %s", feature.name, where, exc_info=exc)
        message = f"The {feature.name} feature failed in {where}: {exc or type(exc).__name__}."
        if message not in self._reported:
            self._reported.add(message)
            self.tell(f"{message} Other features keep working; the log has the details.")
        return JsonRpcInternalError(message)

    def _register_lifecycle(self) -> None:
        """One handler per lifecycle method, fanning out to every feature."""

        @self.feature(lsp.INITIALIZE)
        def initialize(ls: GemmaLanguageServer, params: lsp.InitializeParams) -> None:
            # The same choice pygls advertises in the initialize answer.
            encoding = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
            ls.documents.encoding = str(getattr(encoding, "value", encoding))
            ls._set_root(params)
            ls._adopt(ls._initial_settings(params.initialization_options))
            ls._services = Services.from_settings(ls.settings, ls.root, notify=ls._notify)
            ls._fan_out("initialize", params)

        @self.feature(lsp.INITIALIZED)
        def initialized(ls: GemmaLanguageServer, params: lsp.InitializedParams) -> None:
            ls._fan_out("initialized")

        @self.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
        async def did_change_configuration(ls: GemmaLanguageServer, params: lsp.DidChangeConfigurationParams) -> None:
            try:
                settings = apply_layer(ls.settings, _section(params.settings))
            except ConfigError as exc:
                ls.tell(f"{exc} (didChangeConfiguration; the previous settings stay in force)", lsp.MessageType.Warning)
                return
            ls._adopt(settings)
            applied = await ls.services.apply(settings)
            if applied.model:
                ls._reported_load_error = None
            await ls._fan_out_async("settings_changed", applied)

        @self.feature(lsp.SHUTDOWN)
        async def shutdown(ls: GemmaLanguageServer, params: Any) -> None:
            ls.shutdown_requested = True
            await ls.close_services(SHUTDOWN_SECONDS)

        for method, hook in (
            (lsp.TEXT_DOCUMENT_DID_OPEN, "document_opened"),
            (lsp.TEXT_DOCUMENT_DID_CHANGE, "document_changed"),
            (lsp.TEXT_DOCUMENT_DID_SAVE, "document_saved"),
            (lsp.TEXT_DOCUMENT_DID_CLOSE, "document_closed"),
        ):
            self.feature(method)(self._document_handler(hook))

    def _document_handler(self, hook: str):
        def handle(ls: GemmaLanguageServer, params: Any) -> None:
            ls._fan_out(hook, params.text_document.uri)

        return handle

    def _fan_out(self, hook: str, *args: Any) -> None:
        assert hook in HOOKS
        for feature in self.features:
            try:
                getattr(feature, hook)(*args)
            except Exception as exc:  # noqa: BLE001 - one feature never takes the others down
                self._failed(feature, hook, exc)

    async def _fan_out_async(self, hook: str, *args: Any) -> None:
        for feature in self.features:
            try:
                result = getattr(feature, hook)(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001
                self._failed(feature, hook, exc)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls's hook for what went wrong outside a request: the log, never a pop-up. A
        client's malformed message is not the user's problem; a feature's own failure is told
        once by ``_failed``."""
        log.warning("%s: %s", getattr(source, "__name__", source), error)

    async def close_services(self, timeout: float) -> None:
        """The features' shutdown hooks, then the services (engine, memory store), once, within
        ``timeout`` seconds (``shutdown``, ``exit`` without it, the end of input or a signal)."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close_all())
        try:
            await asyncio.wait_for(asyncio.shield(self._closing), timeout)
        except asyncio.TimeoutError:
            log.warning("Closing the services took over %.1f s; going on without waiting.", timeout)
        except Exception:  # noqa: BLE001 - closing goes on regardless
            log.exception("closing the services failed")

    async def _close_all(self) -> None:
        await self._fan_out_async("shutdown")
        if self._services is not None:
            await self._services.close()

    # --------------------------------------------------------------- messages
    def tell(self, message: str, kind: lsp.MessageType = lsp.MessageType.Error) -> None:
        """One sentence to the user (window/showMessage) and to the log."""
        (log.error if kind == lsp.MessageType.Error else log.warning if kind == lsp.MessageType.Warning else log.info)(
            message
        )
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=f"gemma-lsp: {message}"))

    def _notify(self, level: str, message: str) -> None:
        """The services' notices (memory degraded, ...), which may come from any thread."""
        loop = getattr(self, "loop", None)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self.tell, message, _LEVELS[level])
        else:
            self.tell(message, _LEVELS[level])

    def report_unavailable(self, exc: ModelUnavailable) -> None:
        """Say once per distinct problem why there are no answers from the model."""
        message = str(exc)
        if message != self._reported_load_error:
            self._reported_load_error = message
            self.tell(message)

    def background(self, coroutine) -> asyncio.Task:
        """Run ``coroutine`` as a task the server keeps a reference to until it ends."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def begin_progress(self, token: str, title: str, cancellable: bool = False) -> bool:
        """Start work-done progress ``token`` if the client supports it; False when it does not."""
        caps = self.client_capabilities
        if not (caps and caps.window and caps.window.work_done_progress):
            return False
        try:
            await self.work_done_progress.create_async(token)
        except Exception as exc:  # the client refused: go on without progress
            log.debug("work done progress refused: %s", exc)
            return False
        self.work_done_progress.begin(
            token, lsp.WorkDoneProgressBegin(title=title, percentage=0, cancellable=cancellable)
        )
        return True

    # ----------------------------------------------------------------- config
    def display_path(self, uri: str) -> str | None:
        """The document's path as the model sees it: relative to the workspace root when inside it."""
        return relative_display_path(uri, self.root)

    def _set_root(self, params: lsp.InitializeParams) -> None:
        uri = params.root_uri or (params.workspace_folders[0].uri if params.workspace_folders else None)
        self.root = uri_to_path(uri) if uri else None
        if self.root is None and params.root_path:
            self.root = Path(params.root_path)

    def _initial_settings(self, init_options: Any) -> Settings:
        """defaults <- TOML file <- command-line overrides <- initializationOptions."""
        settings = Settings()
        for name, layer in (
            ("config file", lambda: load_file(self.config_path, self._config_notice) if self.config_path else {}),
            ("command line", lambda: self.cli_overrides),
            ("initializationOptions", lambda: _section(init_options)),
        ):
            try:
                settings = apply_layer(settings, layer())
            except ConfigError as exc:  # this layer is left out; the others still apply
                self.tell(f"{exc} ({name}; using the previous values)", lsp.MessageType.Warning)
        return settings

    def _config_notice(self, message: str) -> None:
        """What loading the config file has to say (a migration): told once, as information."""
        self.tell(message, lsp.MessageType.Info)

    def _adopt(self, settings: Settings) -> None:
        self.settings = settings
        # The more verbose of log.level and the command line's -v wins.
        level = min(logging.getLevelName(settings.log.level.upper()), self.cli_log_level)
        logging.getLogger("gemma_lsp").setLevel(level)


def _section(options: Any) -> dict[str, Any]:
    """Settings from initializationOptions or didChangeConfiguration: ``{"gemma": {...}}`` or flat.

    Keys beside a ``gemma`` section belong to other tools and are left alone; without one, every key
    must be a setting's section (an unknown one is named by ``apply_layer``). Anything that is not an
    object of settings is :class:`ConfigError`, one sentence saying what came instead.
    """
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ConfigError(f"Invalid settings: expected an object of settings, got {_shape(options)}.")
    if CONFIG_SECTION in options:
        inner = options[CONFIG_SECTION]
        if inner is None:
            return {}
        if not isinstance(inner, dict):
            raise ConfigError(
                f"Invalid settings: the {CONFIG_SECTION!r} section must be an object of settings, got {_shape(inner)}."
            )
        return inner
    return options


def _shape(value: Any) -> str:
    """What a client sent, in JSON's words: ``a string ('oops')``, ``a list``."""
    kind = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list"}.get(type(value))
    if kind is None:
        return type(value).__name__
    return f"{kind} ({value!r})" if not isinstance(value, list) else kind
