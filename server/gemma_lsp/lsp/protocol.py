"""The JSON-RPC side: our document store in place of pygls's, and a thread-free stdio transport."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import threading
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.io_ import StdoutWriter, run_async
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

if TYPE_CHECKING:
    from .server import GemmaLanguageServer

log = logging.getLogger(__name__)


class GemmaProtocol(LanguageServerProtocol):
    """Keeps open documents in :class:`~gemma_lsp.lsp.documents.DocumentStore` (see there why)."""

    _server: "GemmaLanguageServer"

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


def stdin_is_a_private_pipe() -> bool:
    """True when stdin is a pipe or socket of its own (what editors give a server).

    Only then may it be switched to non-blocking mode: a terminal shares its file description
    with stdout, which must stay blocking.
    """
    try:
        st_in, st_out = os.fstat(0), os.fstat(1)
    except OSError:
        return False
    if not (stat.S_ISFIFO(st_in.st_mode) or stat.S_ISSOCK(st_in.st_mode)):
        return False
    return not os.path.samestat(st_in, st_out)


def serve_stdio(server: "GemmaLanguageServer") -> None:
    """Serve over stdio, reading stdin on the event loop itself.

    pygls's stdio reader hands every header line and body to a thread pool: three thread
    round trips per message, each a wake-up and a GIL hand-over, on every keystroke. Reading
    the pipe with asyncio's own transport costs none of that. Falls back to pygls's reader
    when stdin is not a private pipe.
    """
    if not stdin_is_a_private_pipe():
        server.start_io()
        return
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 26)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
        await run_async(
            stop_event=server._stop_event,
            reader=_Reader(reader),
            protocol=server.protocol,
            logger=log,
            error_handler=server.report_server_error,
        )

    try:
        asyncio.run(main())
    except BrokenPipeError:
        log.error("Connection to the client is lost; shutting down.")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


class _Reader:
    """pygls's reader interface over an asyncio StreamReader; end of input reads as b""."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def readline(self) -> bytes:
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError:
            return b""
