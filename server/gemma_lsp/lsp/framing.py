"""Base-protocol framing that survives bad input: one wrong frame never makes the server deaf.

LSP messages are ``Content-Length: N\\r\\n\\r\\n`` + N bytes of JSON. Editors get this right;
a buggy client, a proxy or a fuzzer does not, and a reader that trusts every header then reads
the following messages as the body of a broken one (the length was too large), parses the tail
of a message as headers (too small), or waits forever (huge, zero, missing). This reader:

- takes header names in any case and lines ending in LF alone;
- treats the length as a claim to check, not a promise: a body that is complete JSON before
  the claimed end (the next message's header follows it, or the stream pauses) is taken as it
  is, and a header line hidden in the tail of a short body starts the next message;
- reads a body with no usable length (missing, zero, negative, not a number, over the cap, or
  a JSON object with no header at all) up to the end of its JSON value;
- skips bytes that are neither a header nor a body until the next ``Content-Length:``.

Every frame that was not as the protocol says carries a ``problem`` (one sentence), so the
message loop can log it and answer a parse error. Never more than ``max_body`` bytes are held.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

MAX_BODY = 64 << 20
"""The largest message accepted (64 MiB): a 5 MB line or a 50,000-line file fits many times."""

MAX_HEADER_LINE = 8192
STALL_SECONDS = 0.25
"""How long the stream may pause inside a body before the bytes so far are checked as a whole message."""

_MARKER = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
_HEADER = re.compile(rb"^[A-Za-z0-9!#$%&'*+.^_`|~-]+[ \t]*:")


NOT_PARSED = object()


@dataclass(frozen=True)
class Frame:
    body: bytes
    problem: str | None = None
    """Why the frame was not as the protocol says (the body may still be a good message)."""
    message: Any = NOT_PARSED
    """The body as parsed JSON, when the reader parsed it already (a correct frame's body is
    parsed once, here; the message loop then skips its own parse)."""


def _parse(data: bytes) -> Any:
    """``data`` as JSON, or NOT_PARSED (not JSON, not UTF-8, nested too deeply)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return NOT_PARSED


def _is_json(data: bytes) -> bool:
    return _parse(data) is not NOT_PARSED


def _json_end(data: bytes) -> int | None:
    """Where the JSON value at the start of ``data`` ends (a byte offset), or None."""
    text = data.decode("latin-1")  # one character per byte: offsets stay byte offsets
    start = len(text) - len(text.lstrip())
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    return end


class FrameReader:
    """Frames from ``read(n)`` (an awaitable that returns at most ``n`` bytes, ``b""`` at the end)."""

    def __init__(
        self,
        read: Callable[[int], Awaitable[bytes]],
        *,
        max_body: int = MAX_BODY,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self._read = read
        self._buf = bytearray()
        self._eof = False
        self.max_body = max_body
        self.stall_seconds = stall_seconds
        self.skipped_bytes = 0
        """Bytes thrown away as neither header nor body, over the reader's life."""

    # ------------------------------------------------------------------ input
    async def _fill(self, timeout: float | None = None) -> bool:
        """Read more; False at the end of input or when ``timeout`` passed with nothing new."""
        if self._eof:
            return False
        try:
            if timeout is None:
                chunk = await self._read(1 << 16)
            else:
                chunk = await asyncio.wait_for(self._read(1 << 16), timeout)
        except asyncio.TimeoutError:
            return False
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _skip(self, n: int) -> None:
        self.skipped_bytes += n
        del self._buf[:n]

    # ----------------------------------------------------------------- frames
    async def next(self) -> Frame | None:
        """The next frame, or None at the end of input."""
        headers: dict[bytes, bytes] = {}
        problems: list[str] = []
        while True:
            start = len(self._buf) - len(self._buf.lstrip())
            if start < len(self._buf) and not headers and self._buf[start:start + 1] in (b"{", b"["):
                self._skip(start)
                problems.append("A message came without a Content-Length header.")
                return await self._unframed(problems)
            newline = self._buf.find(b"\n")
            if newline < 0:
                if len(self._buf) > MAX_HEADER_LINE:
                    self._resync_in(len(self._buf) - 16, problems)
                    continue
                if not await self._fill():
                    return self._at_end(headers, problems)
                continue
            line = bytes(self._buf[:newline + 1])
            text = line.strip()
            if not text:
                del self._buf[:newline + 1]
                if headers:
                    break
                continue
            if not _HEADER.match(text) or len(line) > MAX_HEADER_LINE:
                self._resync_in(newline + 1, problems)
                continue
            del self._buf[:newline + 1]
            name, _, value = text.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = self._length(headers.get(b"content-length"), problems)
        if length is None:
            return await self._unframed(problems)
        return await self._framed(length, problems)

    def _at_end(self, headers: dict, problems: list[str]) -> None:
        if self._buf.strip() or headers:
            self.skipped_bytes += len(self._buf)
        self._buf.clear()
        return None

    def _resync_in(self, end: int, problems: list[str]) -> None:
        """Drop bytes up to ``end``, or up to a ``Content-Length:`` found inside them."""
        match = _MARKER.search(self._buf, 1, end + 16)
        cut = match.start() if match and match.start() < end else end
        if not problems:
            problems.append("Bytes that are neither a header nor a message were skipped.")
        self._skip(cut)

    def _length(self, raw: bytes | None, problems: list[str]) -> int | None:
        if raw is None:
            problems.append("A message came without a Content-Length header.")
            return None
        try:
            value = int(raw)
        except ValueError:
            problems.append(f"Content-Length {raw[:40].decode('latin-1')!r} is not a number.")
            return None
        if value <= 0:
            problems.append(f"Content-Length {value} is not a positive length.")
            return None
        if value > self.max_body:
            problems.append(f"Content-Length {value} is over the {self.max_body}-byte limit.")
            return None
        return value

    async def _framed(self, length: int, problems: list[str]) -> Frame:
        """``length`` bytes, unless the JSON ends earlier (the claim was too large)."""
        scanned = 1
        while True:
            window = min(len(self._buf), length + 20)
            match = _MARKER.search(self._buf, max(1, scanned - 20), window)
            while match is not None and match.start() < length:
                if _is_json(self._buf[:match.start()]):
                    problems.append(f"Content-Length {length} was larger than the message ({match.start()} bytes).")
                    return Frame(self._take(match.start()), " ".join(problems))
                match = _MARKER.search(self._buf, match.end(), window)
            scanned = window
            if len(self._buf) >= length:
                break
            if not await self._fill(self.stall_seconds):
                if self._eof or (self._buf.rstrip().endswith((b"}", b"]")) and _is_json(self._buf)):
                    if self._buf.strip():
                        problems.append(f"Content-Length {length} was larger than the message ({len(self._buf)} bytes).")
                    return Frame(self._take(len(self._buf)), " ".join(problems) or None)
        body = self._take(length)
        if (message := _parse(body)) is not NOT_PARSED:
            return Frame(body, " ".join(problems) or None, message)
        end = _json_end(body)
        if end is not None and body[end:].lstrip()[:1].isalpha():
            # The claim was too large: what follows the JSON is the next message's header.
            self._buf[0:0] = body[end:]
            problems.append(f"Content-Length {length} was larger than the message ({end} bytes).")
            return Frame(body[:end], " ".join(problems))
        # Too small a claim: the rest of this message comes before the next header.
        while True:
            match = _MARKER.search(self._buf)
            rest = self._buf[:match.start()] if match else self._buf
            if rest and _is_json(body + rest):
                problems.append(f"Content-Length {length} was smaller than the message ({length + len(rest)} bytes).")
                return Frame(body + self._take(len(rest)), " ".join(problems))
            if match is not None or len(self._buf) > self.max_body or not await self._fill(self.stall_seconds):
                break
        return Frame(body, " ".join(problems) or None)

    async def _unframed(self, problems: list[str]) -> Frame:
        """A body with no usable length: up to the end of its JSON value (or the next header)."""
        while True:
            match = _MARKER.search(self._buf, 1)
            end = match.start() if match else len(self._buf)
            if match is not None or (self._buf.rstrip().endswith((b"}", b"]")) and _is_json(self._buf)):
                return Frame(self._take(end), " ".join(problems))
            if len(self._buf) > self.max_body:
                self._skip(len(self._buf))
                problems.append(f"A message of over {self.max_body} bytes with no usable length was dropped.")
                return Frame(b"", " ".join(problems))
            if not await self._fill():
                return Frame(self._take(len(self._buf)), " ".join(problems))
