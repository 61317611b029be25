"""The message loop: frames in (``framing.py``), every request answered exactly once, a clean exit.

pygls's own loop trusts its input: a message it cannot read is logged, shown to the user as
"Error in server" and never answered, and a bad frame leaves it deaf. Here each message is
checked before pygls sees it, as JSON-RPC 2.0 says:

- not UTF-8 → read with U+FFFD in place of the bad bytes (the request is still answered);
- a lone surrogate (``"\\ud800"``: valid JSON, not valid Unicode) → U+FFFD, one UTF-16 unit like
  it, so positions still agree; nothing past this point ever meets one (one used to poison
  every later completion: the text could not be encoded for the model);
- not JSON (or nested too deep) → -32700 Parse error, id null;
- not a JSON-RPC 2.0 object (a batch, no/wrong ``jsonrpc``, a bad ``id`` or ``method``) → -32600;
- params that do not fit the method's types (a negative position, a string for a number) → -32602
  naming the field;
- a request after ``shutdown`` → -32600.

What the client got wrong goes to the log, never to a pop-up. ``exit`` stops the loop with 0
after ``shutdown`` and 1 without (the LSP's rule); SIGTERM and SIGINT answer every request still
in flight, close the services and exit the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import stat
import sys
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from cattrs import ClassValidationError, transform_error
from pygls.io_ import StdoutWriter

from .framing import NOT_PARSED, FrameReader

if TYPE_CHECKING:
    from .server import GemmaLanguageServer

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, REQUEST_CANCELLED = -32700, -32600, -32602, -32800
CLOSE_SECONDS = 2.0
"""At most this long is spent closing the services at exit; the process ends regardless."""


def _problem(message: Any) -> tuple[int, str] | None:
    """What makes ``message`` not a JSON-RPC 2.0 message, as (code, sentence); None when it is one."""
    if isinstance(message, list):
        return INVALID_REQUEST, "Batches of JSON-RPC messages are not supported; send one message per frame."
    if not isinstance(message, dict):
        return INVALID_REQUEST, f"A JSON-RPC message must be an object, not {type(message).__name__}."
    if message.get("jsonrpc") != "2.0":
        got = "missing" if "jsonrpc" not in message else repr(message["jsonrpc"])[:40]
        return INVALID_REQUEST, f'The "jsonrpc" member must be "2.0" (it is {got}).'
    if "id" in message and not _valid_id(message["id"]):
        return INVALID_REQUEST, "The id must be a string or an integer."
    if "method" in message:
        if not isinstance(message["method"], str):
            return INVALID_REQUEST, "The method must be a string."
        params = message.get("params")
        if params is not None and not isinstance(params, (dict, list)):
            return INVALID_REQUEST, f"The params of {message['method'][:80]} must be an object or an array."
    elif "id" not in message or not ("result" in message or "error" in message):
        return INVALID_REQUEST, "A message needs a method (request or notification) or a result or error (response)."
    return None


_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _fields(exc: BaseException, method: str) -> str:
    """One sentence naming what in the params did not fit, from cattrs' account of it."""
    try:
        details = transform_error(exc, path="params") if isinstance(exc, ClassValidationError) else [str(exc)]
    except Exception:  # noqa: BLE001 - a description of an error must not fail
        details = [str(exc)]
    details = [d.replace(" @ $.", " at ").replace(" @ $", "") for d in details]
    shown = "; ".join(details[:3]) + ("; ..." if len(details) > 3 else "")
    return f"Invalid params for {method}: {shown}."


class MessageLoop:
    """Reads frames, checks each message, hands good ones to pygls, answers the rest."""

    def __init__(self, server: "GemmaLanguageServer", read: Callable[[int], Awaitable[bytes]]) -> None:
        self.server = server
        self.protocol = server.protocol
        self.frames = FrameReader(read)
        self.stopped = asyncio.Event()
        self._warned: set[str] = set()

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)
        else:
            log.debug("%s", message)

    def error(self, msg_id: Any, code: int, message: str) -> None:
        """Answer a message pygls never saw (id null when it has none that JSON-RPC allows)."""
        self.protocol.reject(msg_id if _valid_id(msg_id) else None, code, message)

    async def run(self) -> None:
        while not self.stopped.is_set():
            frame = await self.frames.next()
            if frame is None:
                log.info("The client closed the input stream.")
                return
            if frame.problem:
                self.warn_once(frame.problem.split(" ")[0], f"Bad framing from the client: {frame.problem}")
            self.dispatch(frame.body, frame.message)

    def dispatch(self, body: bytes, message: Any = NOT_PARSED) -> None:
        if message is NOT_PARSED:  # the reader could not parse it: say why, or read it with U+FFFD
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.warn_once("utf8", f"A message was not valid UTF-8 (byte {exc.start}); bad bytes read as U+FFFD.")
                text = body.decode("utf-8", errors="replace")
            try:
                message = json.loads(text)
            except RecursionError:
                self.error(None, PARSE_ERROR, "The message is nested too deeply to read.")
                return
            except ValueError as exc:
                self.error(None, PARSE_ERROR, f"The message is not valid JSON: {exc}.")
                return
        if _ESCAPED_SURROGATE.search(body):
            message = _without_lone_surrogates(message)
        problem = _problem(message)
        msg_id = message.get("id") if isinstance(message, dict) else None
        if problem is not None:
            code, sentence = problem
            self.warn_once(sentence, f"Invalid message from the client: {sentence}")
            a_response = isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message)
            if not a_response:  # a bad response to one of the server's requests is only logged
                self.error(msg_id, code, sentence)
            return
        method = message.get("method")
        is_request = method is not None and "id" in message
        if self.server.shutdown_requested and method is not None and method != "exit":
            if is_request:
                self.error(msg_id, INVALID_REQUEST, f"The server is shutting down; {method} was not run.")
            return
        try:
            structured = self.protocol.structure_message(message)
        except Exception as exc:  # noqa: BLE001 - whatever the client sent, it gets an answer
            sentence = _fields(exc.__cause__ or exc, method or "a response")
            self.warn_once(f"params:{method}", sentence)
            if is_request:
                self.error(msg_id, INVALID_PARAMS, sentence)
            return
        if is_request:
            params = message.get("params")
            document = params.get("textDocument") if isinstance(params, dict) else None
            self.protocol.expect_answer(msg_id, document.get("uri") if isinstance(document, dict) else None)
        try:
            self.protocol.handle_message(structured)
        except SystemExit:
            raise
        except Exception as exc:  # noqa: BLE001
            log.exception("handling %s failed", method)
            if is_request:
                self.error(msg_id, -32603, f"{method} failed: {exc}")


async def _serve(server: "GemmaLanguageServer", read: Callable[[int], Awaitable[bytes]]) -> int:
    loop = asyncio.get_running_loop()
    messages = MessageLoop(server, read)
    server.message_loop = messages
    reading = asyncio.ensure_future(messages.run())
    stopping = asyncio.ensure_future(messages.stopped.wait())
    signalled: list[str] = []

    def on_signal(name: str) -> None:
        signalled.append(name)
        messages.stopped.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in (reading, stopping):
        task.cancel()
    if reading.done() and not reading.cancelled() and reading.exception() is not None:
        log.error("The message loop failed", exc_info=reading.exception())
    why = f"{signalled[0]} received" if signalled else "the client ended the session"
    server.protocol.answer_pending(f"The server is stopping: {why}.")
    loop.set_exception_handler(_quiet_cancellations)  # requests cut short now are answered already
    await server.close_services(CLOSE_SECONDS)
    return 0 if server.shutdown_requested else 1


def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def _run(server: "GemmaLanguageServer", main: Callable[[], Awaitable[int]]) -> int:
    """Run ``main`` on a new event loop; then give the tasks left half a second to end, not more.

    ``asyncio.run`` waits for every task to finish cancelling, and a task waiting on work in a
    thread (a prompt being tokenized, a model loading) can keep it for minutes.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    except BrokenPipeError:
        log.error("Connection to the client is lost; shutting down.")
        return 1
    except KeyboardInterrupt:
        return 1
    finally:
        loop.set_exception_handler(_quiet_cancellations)
        left = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=0.5))
        loop.close()
        server.shutdown()


def exit_now(code: int) -> None:
    """End the process with ``code`` once the log and stdout are flushed, without waiting for
    worker threads still inside a native call (the services were closed or given up on)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


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


def serve_stdio(server: "GemmaLanguageServer") -> int:
    """Serve over stdio until ``exit``, the end of input or a signal; the process's exit code.

    stdin is read by asyncio's own pipe transport when it is a private pipe (pygls's reader
    hands every header line and body to a thread pool: three thread round trips per message);
    otherwise (a terminal, a file) by a thread.
    """
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def main() -> int:
        loop = asyncio.get_running_loop()
        if stdin_is_a_private_pipe():
            reader = asyncio.StreamReader(limit=1 << 26)
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
            read = reader.read
        else:
            fd = sys.stdin.fileno()

            async def read(n: int) -> bytes:
                return await loop.run_in_executor(None, os.read, fd, n)

        return await _serve(server, read)

    return _run(server, main)


def serve_tcp(server: "GemmaLanguageServer", host: str, port: int) -> int:
    """Serve one client over TCP (the first to connect), with the same loop as stdio."""
    server._stop_event = threading.Event()

    async def main() -> int:
        connected: asyncio.Future = asyncio.get_running_loop().create_future()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if connected.done():
                writer.close()
                return
            connected.set_result((reader, writer))

        listener = await asyncio.start_server(on_client, host, port)
        log.info("Listening on %s:%s", host, port)
        try:
            reader, writer = await connected
        finally:
            listener.close()
        server.protocol.set_writer(_SocketWriter(writer))
        code = await _serve(server, reader.read)
        writer.close()
        return code

    return _run(server, main)


class _SocketWriter:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    def close(self) -> None:
        self._writer.close()
