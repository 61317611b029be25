"""The JSON-RPC side: our document store in place of pygls's, and every request answered once.

The message loop that feeds this protocol is ``transport.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import sys
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcRequestCancelled
from pygls.protocol import LanguageServerProtocol, default_converter
from pygls.protocol.json_rpc import JsonRPCResponseMessage, ResponseError, ResponseErrorMessage
from pygls.protocol.language_server import lsp_method

if TYPE_CHECKING:
    from .server import GemmaLanguageServer

log = logging.getLogger(__name__)


def strict_converter():
    """lsprotocol's converter, without its quiet coercions: ``"5"`` is not a line number, ``5``
    is not a URI, ``true`` is not 1 and ``1.5`` is not 1. A client that sends them gets -32602."""
    converter = default_converter()

    def exact(kind: type):
        def structure(value: Any, target: Any) -> Any:
            if type(value) is kind or (kind is float and type(value) is int):
                return target(value) if target is not kind else value  # an IntEnum / StrEnum member
            raise TypeError(f"expected {_JSON_NAMES[kind]}, got {_json_name(value)}")

        return structure

    for kind in (str, int, float, bool):  # also reached by their subclasses: lsprotocol's enums
        converter.register_structure_hook(kind, exact(kind))
    return converter


_JSON_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _json_name(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", int: "an integer", float: "a fraction", bool: "a boolean", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


class GemmaProtocol(LanguageServerProtocol):
    """Keeps open documents in :class:`~gemma_lsp.lsp.documents.DocumentStore` (see there why)."""

    _server: "GemmaLanguageServer"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: set[Any] = set()
        """Ids of the client's requests not answered yet: each is answered exactly once."""
        self._guards: dict[Any, Callable[[], str | None]] = {}
        self._received: dict[Any, str] = {}  # request id -> its document's text when it arrived

    # ------------------------------------------------------------ answering
    def expect_answer(self, msg_id: Any, uri: Any = None) -> None:
        """Note a request that must be answered; with ``uri``, its document's text as it is now."""
        self._pending.add(msg_id)
        if isinstance(uri, str) and (document := self._server.documents.get(uri)) is not None:
            self._received[msg_id] = document.text

    def text_when_received(self) -> str | None:
        """The current request's document text when the request arrived (edits read after it
        belong to a newer version than the one its position refers to)."""
        return self._received.get(self.msg_id)

    def guard(self, stale: Callable[[], str | None]) -> None:
        """Check ``stale()`` when the current request's answer is written, not before: a document
        edit read meanwhile turns the answer into RequestCancelled with the reason it returns."""
        msg_id = self.msg_id
        if msg_id is not None:
            self._guards[msg_id] = stale

    def reject(self, msg_id: Any, code: int, message: str) -> None:
        """The error answer to a message that never reached a handler (id null when unknown)."""
        self._send_data(ResponseErrorMessage(id=msg_id, error=ResponseError(code=code, message=message)))

    def answer_pending(self, reason: str) -> None:
        """Answer every request still in flight (the server is stopping)."""
        for msg_id in list(self._pending):
            self._send_response(msg_id, error=ResponseError(code=JsonRpcRequestCancelled.CODE, message=reason))

    def _send_response(self, msg_id: Any, result: Any | None = None, error: ResponseError | None = None) -> None:
        if msg_id not in self._pending:
            log.debug("not answering request %r again", msg_id)
            return
        self._pending.discard(msg_id)
        self._received.pop(msg_id, None)
        stale = self._guards.pop(msg_id, None)
        if error is None and stale is not None and (reason := stale()):
            error = JsonRpcRequestCancelled(reason).to_response_error()
        if error is not None:
            self._result_types.pop(msg_id, None)
            self._send_data(ResponseErrorMessage(id=msg_id, error=error))
            return
        response_type = self._result_types.pop(msg_id, JsonRPCResponseMessage)
        if not self._send_data(response_type(id=msg_id, result=result, jsonrpc=self.VERSION)):
            error = JsonRpcInternalError("The answer could not be written (the log has why).").to_response_error()
            self._send_data(ResponseErrorMessage(id=msg_id, error=error))

    def _send_data(self, data: Any) -> bool:
        """pygls's, saying whether the message was written: an answer that cannot be serialized
        is replaced by an error answer instead of leaving the request unanswered."""
        if not data:
            return True
        if self.writer is None:
            log.error("Unable to send data, no available transport!")
            return False
        try:
            body = json.dumps(data, default=self._serialize_message)
        except Exception:  # noqa: BLE001
            log.exception("a message could not be serialized")
            return False
        header = f"Content-Length: {len(body)}\r\nContent-Type: {self.CONTENT_TYPE}; charset={self.CHARSET}\r\n\r\n"
        try:
            written = self.writer.write((header + body).encode(self.CHARSET))
            if inspect.isawaitable(written):
                asyncio.ensure_future(written)
        except BrokenPipeError:
            log.error("The client closed the connection; a message was not delivered.")
            raise
        return True

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        """pygls's, without a logged traceback for deliberate errors (cancelled, invalid params)."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self._send_response(msg_id, error=JsonRpcRequestCancelled(f"Request {msg_id} was cancelled.").to_response_error())
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
        elif isinstance(exc, JsonRpcException):
            log.debug("request %r answered with %s", msg_id, exc)
            self._send_response(msg_id, error=exc.to_response_error())
        else:
            log.error("request %r failed", msg_id, exc_info=exc)
            self._send_response(msg_id, error=JsonRpcInternalError(f"{type(exc).__name__}: {exc}").to_response_error())

    @lsp_method(lsp.EXIT)
    def lsp_exit(self, *args: Any):
        """Stop the message loop; the process exits with 0 after ``shutdown`` and 1 without."""
        loop = getattr(self._server, "message_loop", None)
        if loop is None:
            sys.exit(0 if self._shutdown else 1)
        loop.stopped.set()
        yield from ()

    def structure_message(self, data: dict[str, Any]):
        """JSON-RPC lets a request or notification leave ``params`` out (vscode-languageclient
        does for ``sendRequest('gemma/stats')``); pygls's message classes require the field, and
        a request they cannot read is never answered. A missing ``params`` is read as null."""
        if isinstance(data, dict) and "method" in data and "params" not in data and "jsonrpc" in data:
            data = {**data, "params": None}
        return super().structure_message(data)

    @lsp_method(lsp.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: lsp.DidOpenTextDocumentParams):
        self._server.documents.open(params.text_document)
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams):
        self._server.documents.change(params)
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: lsp.DidCloseTextDocumentParams):
        self._server.documents.close(params.text_document.uri)
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None
