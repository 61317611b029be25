"""An HTTP server that answers like a broken or strict inference server, on purpose.

The real server of the tests (llama-cpp-python's) cannot be made to send garbage, hang, answer
500 or reject a field the way OpenAI's API does; this stdlib server does exactly that, one
``mode`` at a time, and records every request it receives.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Misbehaving:
    """``mode``: "ok" (a proper stream), "garbage", "not_json", "slow", "status", "reject",
    "cut" (a stream that stops without its end), "redirect" (to ``location``), "health_500"."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.status = 500
        self.status_body = '{"error": {"message": "the GPU caught fire"}}'
        self.delay_s = 5.0
        self.rejects = "top_k"  # the field "reject" refuses
        self.location = ""  # where "redirect" sends a request
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.endswith("/health"):
                    if owner.mode == "health_500":
                        self._send(500, '{"error": "unhealthy"}')
                    else:
                        self._send(200, '{"status": "ok"}')
                elif self.path.endswith("/models"):
                    self._send(200, '{"object": "list", "data": [{"id": "strict-model"}]}')
                else:
                    self._send(404, '{"detail": "Not Found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.startswith("/v1/"):
                    self._send(404, '{"detail": "Not Found"}')
                    return
                owner.requests.append(body)
                owner.headers.append(dict(self.headers))
                mode = owner.mode
                if mode == "status":
                    self._send(owner.status, owner.status_body)
                elif mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", owner.location + self.path.removeprefix("/v1"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif mode == "reject" and owner.rejects in body:
                    message = f"Unrecognized request argument supplied: {owner.rejects}"
                    self._send(400, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}))
                elif mode == "slow":
                    time.sleep(owner.delay_s)
                    self._stream(["slow"])
                elif mode == "garbage":
                    self._raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nthis is not an event stream\n\n")
                elif mode == "not_json":
                    self._raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {\"choices\": [\n\n")
                elif mode == "cut":
                    chunk = json.dumps({"choices": [{"text": "par", "index": 0, "finish_reason": None}]})
                    self._raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + f"data: {chunk}\n\n".encode())
                else:
                    self._stream(["hel", "lo"])

            def _raw(self, data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()
                self.close_connection = True

            def _stream(self, pieces: list[str]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                chat = self.path.endswith("/chat/completions")
                for i, piece in enumerate(pieces):
                    last = i == len(pieces) - 1
                    choice = {"delta": {"content": piece}} if chat else {"text": piece}
                    choice.update(index=0, finish_reason="stop" if last else None)
                    self.wfile.write(f"data: {json.dumps({'choices': [choice]})}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # the client hung up on a slow or broken answer: that is the point

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "Misbehaving":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
