"""The remote backend: generation on an OpenAI-compatible inference server (``backend = "openai"``).

gemma-lsp is the client of a server that already exists: llama.cpp's llama-server, vLLM,
Ollama, TGI (or llama-cpp-python's server). :class:`RemoteRuntime` is a
:class:`~gemma_lsp.engine.runtime.Runtime`: the :class:`~gemma_lsp.engine.manager.EngineManager`
calls it from its worker thread as it calls the in-process one, so latest-wins, cancellation,
lanes and idle unload work the same.

- Completion prompts (``TokenPrompt``) are built with a local tokenizer
  (``engine/remote_tokenizer.py``) and sent as text to ``/v1/completions``: a FIM prompt with
  the model's FIM tokens written as text when the server's tokenizer knows them (or
  ``model.fim = "tokens"``), the text before the cursor otherwise. Token healing needs a
  constrained first token, which no server offers: it is off for this backend.
- Chat prompts go to ``/v1/chat/completions`` as messages (a system message folded into the
  first user message: Gemma has no system role).
- Every answer is streamed (server-sent events). The worker reads the pieces as they come; when
  the request is cancelled (a newer keystroke, ``$/cancelRequest``), over its line or time limit,
  the stream is closed at once, so the server stops generating too.
- HTTP runs on one asyncio event loop of this backend's own (one thread) with httpx's
  connection pool (keep-alive); the loop also runs the health checks of every endpoint
  (``engine/endpoints.py``).
- Faults: each becomes one sentence (:class:`~gemma_lsp.errors.ModelUnavailable`) naming the
  server and what went wrong. A request that fails before any of its text was delivered moves
  on to the next healthy endpoint; while none is up, requests fail at once (completions answer
  empty) and the health checks bring the endpoints back by themselves.
- The API key is read from an environment variable or a file, sent as a Bearer token to the
  configured URLs only (no redirects are followed, no proxy from the environment is used) and
  never logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import queue
import re
import ssl
import threading
import time
from typing import Any

import httpx

from gemma_lsp.config import OpenAIModelSettings
from gemma_lsp.errors import Cancelled, ModelUnavailable

from .backend import ModelInfo
from .endpoints import Endpoint, EndpointPool, watch
from .remote_fields import CORE_FIELDS, sampling_fields
from .remote_tokenizer import (
    BOS,
    FILE_SEPARATOR,
    FIM_TEXTS,
    ApproximateTokenizer,
    GgufTokenizer,
    make_tokenizer,
    prompt_text,
)
from .request import (
    ChatPrompt, GenerationRequest, GenerationResult, HealedTokens, SamplingSpec, TextPrompt, fold_system,
)
from .runtime import ProgressCallback, RunControl

log = logging.getLogger(__name__)
# httpx logs every request at INFO: not this server's news. Headers (the API key) are never logged.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

_POLL_S = 0.01  # how often the worker looks at the cancel flag while it waits for the next piece
_MAX_ERROR_BODY = 65536


class _Failure(Exception):
    """A request that failed on one endpoint: ``message`` is the problem, said of that endpoint."""

    def __init__(self, message: str, *, down: bool = True, fatal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.down = down  # the endpoint is not fit for requests until a health check says so
        self.fatal = fatal  # no other endpoint would do better (a bad request, a refused key)
        self.emitted = False  # some of the answer's text had reached the caller


class _Retry(Exception):
    """Send the same request to the same endpoint again (a rejected field was dropped)."""


# ------------------------------------------------------------------------------------ set-up
def read_api_key(settings: OpenAIModelSettings) -> str | None:
    """The API key from ``api_key_env`` or ``api_key_file``; :class:`ModelUnavailable` if it is missing."""
    if settings.api_key_env:
        value = os.environ.get(settings.api_key_env, "").strip()
        if not value:
            raise ModelUnavailable(
                f"model.api_key_env names {settings.api_key_env}, which is not set in the server's environment."
            )
        return value
    if settings.api_key_file is not None:
        path = settings.api_key_file.expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ModelUnavailable(f"model.api_key_file {path} cannot be read ({exc.strerror or exc}).") from None
        value = lines[0].strip() if lines else ""
        if not value:
            raise ModelUnavailable(f"model.api_key_file {path} is empty.")
        return value
    return None


def tls_verify(settings: OpenAIModelSettings) -> ssl.SSLContext | bool:
    """What httpx checks a server's certificate against: ``ca_file``, else the system's authorities."""
    if settings.ca_file is not None:
        path = settings.ca_file.expanduser()
        try:
            return ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise ModelUnavailable(f"model.ca_file {path} is not a readable PEM file of certificates ({exc}).") from None
    if not settings.verify_tls:
        return False
    return ssl.create_default_context()


def server_message(body: str) -> str:
    """The server's own words from an error body (OpenAI's, FastAPI's or plain text), one line."""
    text = body.strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err.get("msg") or json.dumps(err)
        elif isinstance(err, list) and err and isinstance(err[0], dict):  # FastAPI's validation errors
            err = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in err[:3])
        if err is not None:
            text = str(err)
    text = " ".join(text.split())
    return text[:300] + ("…" if len(text) > 300 else "")


def describe_exception(exc: BaseException, settings: OpenAIModelSettings, answered: bool) -> str:
    """What a transport error means, said of the server (the caller puts its URL in front)."""
    text = str(exc) or type(exc).__name__
    causes = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectTimeout):
        return f"did not accept a connection within {settings.connect_timeout_s:g} s"
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)):
        return f"sent nothing for {settings.timeout_s:g} s (model.timeout_s)"
    if isinstance(exc, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            reason = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip(" :") or "not trusted"
            return f"has a TLS certificate that cannot be verified ({reason}); set model.ca_file to your CA's certificate"
        if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text.lower():
            return "refused the connection"
        deepest = causes[-1]
        return f"cannot be reached ({getattr(deepest, 'strerror', None) or deepest})"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return "closed the connection in the middle of an answer" if answered else "closed the connection before answering"
    return f"failed ({type(exc).__name__}: {text})"


class _EventLoopThread:
    """One asyncio event loop on a thread of its own: the backend's HTTP and health checks."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.submit(cancel_all()).result(timeout=5)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


# --------------------------------------------------------------------------------- runtime
class RemoteRuntime:
    """A :class:`~gemma_lsp.engine.runtime.Runtime` on one or more OpenAI-compatible servers."""

    def __init__(
        self,
        settings: OpenAIModelSettings,
        tokenizer: ApproximateTokenizer | GgufTokenizer,
        api_key: str | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.pool = EndpointPool(settings.urls, on_up=self._on_up)
        self.model_name = settings.model
        self.server_kind: str | None = None  # "llama.cpp", "llama-cpp-python", "vllm"; None: not known
        self.fim = False
        self._probed = False
        self._probing: concurrent.futures.Future | None = None
        self._probe_lock = threading.Lock()
        self.rejected_fields: dict[str, str] = {}  # field -> what the server said, reported once
        self.last: dict[str, Any] | None = None
        self._apply_fim(None)
        self.info = ModelInfo(
            path=", ".join(settings.urls), architecture="remote", n_vocab=0, n_ctx=settings.n_ctx,
            n_ctx_train=0, n_params=0, size_bytes=0,
        )
        self._loop = _EventLoopThread("gemma-remote")
        limits = httpx.Limits(
            max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections,
            keepalive_expiry=60.0,
        )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
            limits=limits, verify=verify, trust_env=False, follow_redirects=False,
        )
        self._stop: asyncio.Event | None = None
        self._watch: concurrent.futures.Future | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Check every endpoint once (and learn the model from the first that answers), then keep
        checking in the background. A server that is down is no error: it is checked again."""

        async def begin() -> None:
            self._stop = asyncio.Event()

        self._loop.submit(begin()).result()
        self._watch = self._loop.submit(watch(self.pool, self._check, self.settings.health_interval_s, self._stop))
        deadline = time.monotonic() + 2 * self.settings.connect_timeout_s + 2
        while time.monotonic() < deadline and any(e.state == "unknown" for e in self.pool.endpoints):
            time.sleep(0.005)
        up = [e for e in self.pool.endpoints if e.state == "up"]
        if up:
            self._on_up(up[0])  # a no-op when the probe is under way or done
        probing = self._probing
        if probing is not None:
            try:
                probing.result(timeout=max(0.1, deadline - time.monotonic()) + self.settings.timeout_s)
            except Exception:  # noqa: BLE001 - the probe logs its own problems
                pass
        log.info(
            "remote backend: %s (%s), %s prompts, endpoints %s",
            self.model_name, self.server_kind or "server kind not known", "FIM" if self.fim else "prefix-only",
            ", ".join(f"{e.url} {e.state}" for e in self.pool.endpoints),
        )

    def close(self) -> None:
        if self._stop is not None:
            self._loop.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._loop.submit(self._client.aclose()).result(timeout=5)
        except Exception:  # noqa: BLE001 - closing: nothing left to tell
            pass
        self._loop.stop()
        close = getattr(self.tokenizer, "close", None)
        if close is not None:
            close()

    def status(self) -> dict[str, Any]:
        """Which servers serve and how they are doing (``gemma/stats``)."""
        return {
            "backend": "openai",
            "model": self.model_name,
            "server": self.server_kind,
            "prompts": "fim" if self.fim else "prefix",
            "tokenizer": self.settings.tokenizer,
            "endpoints": self.pool.status(),
            "rejected_fields": dict(self.rejected_fields),
            "last_request": self.last,
        }

    # ------------------------------------------------------------ health and probe
    async def _check(self, endpoint: Endpoint) -> str | None:
        """None when the server answers HTTP at all (a server without ``/health`` answers 404)."""
        timeout = httpx.Timeout(max(2.0, self.settings.connect_timeout_s), connect=self.settings.connect_timeout_s)
        for attempt in (1, 2):  # the second on a new connection, if a kept-alive one was closed
            try:
                response = await self._client.get(endpoint.root + "/health", headers=self._auth, timeout=timeout)
                break
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt == 2:
                    return describe_exception(exc, self.settings, answered=False)
            except httpx.HTTPError as exc:
                return describe_exception(exc, self.settings, answered=False)
        if response.status_code < 500:
            return None
        detail = server_message(response.text)
        return f"answers HTTP {response.status_code}" + (f" ({detail})" if detail else "")

    def _on_up(self, endpoint: Endpoint) -> None:
        with self._probe_lock:
            if self._probed or (self._probing is not None and not self._probing.done()):
                return
            self._probing = self._loop.submit(self._probe(endpoint))

    async def _probe(self, endpoint: Endpoint) -> None:
        """Learn from the first server that answers: the model's name (when not configured), which
        server it is, and whether its tokenizer has the FIM tokens."""
        try:
            if self.model_name is None:
                response = await self._client.get(endpoint.url + "/models", headers=self._auth)
                if response.status_code == 200:
                    models = response.json().get("data") or []
                    if models:
                        self.model_name = str(models[0].get("id"))
            counts = await self._token_counts(endpoint, [*FIM_TEXTS, FILE_SEPARATOR])
            if self.settings.fim == "auto" and not isinstance(self.tokenizer, GgufTokenizer):
                if counts is None:
                    log.info(
                        "the server at %s has no tokenize endpoint: completions use prefix-only prompts "
                        "(model.fim = \"tokens\" writes FIM prompts for a model that has FIM tokens)", endpoint.url,
                    )
                fim = counts is not None and all(c == 1 for c in counts[:3])
                self._apply_fim(fim, counts is not None and counts[3] == 1)
            self._probed = True
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("could not ask %s about its model: %s", endpoint.url, exc)

    def _apply_fim(self, detected: bool | None, file_separator: bool | None = None) -> None:
        """FIM prompts or prefix-only ones: ``model.fim``, what the server's tokenizer said
        (``detected``), or what a GGUF tokenizer's vocabulary has."""
        mode = self.settings.fim
        if isinstance(self.tokenizer, GgufTokenizer):
            has = self.tokenizer.file_special
            fim = mode != "none" and has.fim_prefix is not None
            separator = fim and has.file_separator is not None
        else:
            fim = mode == "tokens" or (mode == "auto" and bool(detected))
            separator = fim if file_separator is None else fim and file_separator
        self.tokenizer.set_fim(fim, separator)
        self.fim = fim

    async def _token_counts(self, endpoint: Endpoint, texts: list[str]) -> list[int] | None:
        """How many tokens the server's tokenizer makes of each text (control tokens parsed), from
        llama-cpp-python's ``/extras/tokenize``, or the ``/tokenize`` of llama.cpp's server and
        vLLM; None when the server has neither."""
        root = endpoint.root

        async def extras(text: str) -> list[int] | None:
            r = await self._client.post(root + "/extras/tokenize", json={"input": text}, headers=self._auth)
            return r.json().get("tokens") if r.status_code == 200 else None

        async def native(text: str) -> tuple[list[int] | None, dict]:
            body = {"content": text, "prompt": text, "add_special": False, "add_special_tokens": False}
            if self.model_name:
                body["model"] = self.model_name
            r = await self._client.post(root + "/tokenize", json=body, headers=self._auth)
            data = r.json() if r.status_code == 200 else {}
            return data.get("tokens"), data

        base = await extras("")
        if base is not None:
            self.server_kind = "llama-cpp-python"
            return [len(await extras(text) or []) - len(base) for text in texts]
        tokens, data = await native("")
        if tokens is None:
            return None
        self.server_kind = "vllm" if "max_model_len" in data or "count" in data else "llama.cpp"
        return [len((await native(text))[0] or []) - len(tokens) for text in texts]

    # ------------------------------------------------------------------ requests
    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any], int]:
        """(path, JSON body, prompt tokens as counted here) of a request."""
        prompt = request.prompt
        limits = request.limits
        body: dict[str, Any] = {"model": self.model_name} if self.model_name else {}
        counted = 0
        if isinstance(prompt, ChatPrompt):
            path = "/chat/completions"
            body["messages"] = fold_system(prompt.messages)
            counted = sum(len(self.tokenizer.tokenize(m["content"])) + 4 for m in body["messages"])
        else:
            path = "/completions"
            if isinstance(prompt, TextPrompt):
                text = prompt.text[len(BOS):] if prompt.text.startswith(BOS) else prompt.text
                counted = len(self.tokenizer.tokenize(text, special=True))
            else:
                built = prompt.build(self.tokenizer)
                tokens = built.tokens if isinstance(built, HealedTokens) else built  # no healing remotely
                text, counted = prompt_text(self.tokenizer, tokens), len(tokens)
            body["prompt"] = text
        body["max_tokens"] = 1 if request.background else max(1, limits.max_tokens)
        body["stream"] = True
        sampling = request.sampling
        if isinstance(sampling, SamplingSpec):
            body.update(sampling_fields(sampling.specs, sampling.seed, self.server_kind in ("llama.cpp", "llama-cpp-python")))
        else:
            body["temperature"] = 0.0  # a ready sampler object is an in-process thing: greedy here
        if limits.max_lines == 1 and not request.background:
            body["stop"] = ["\n"]  # the server stops at the line's end and the connection stays open
        if self.server_kind in ("llama.cpp", "vllm"):
            body["stream_options"] = {"include_usage": True}
        for name in self.rejected_fields:
            body.pop(name, None)
        return path, body, counted

    def run(self, request: GenerationRequest, control: RunControl) -> GenerationResult:
        started = time.perf_counter()
        limits = request.limits
        if limits.max_tokens <= 0 and not request.background:
            return GenerationResult("", "max_tokens", 0, 0, 0, 0, 0.0, 0.0)
        path, body, counted = self._body(request)
        built = time.perf_counter()
        deadline = started + limits.time_limit_s if limits.time_limit_s else None
        tried: set[Endpoint] = set()
        last: tuple[Endpoint, _Failure] | None = None
        while True:
            if control.cancel.is_set():
                raise Cancelled("cancelled before it was sent")
            endpoint = self.pool.acquire(request.key, tried)
            if endpoint is None:
                if last is not None and not last[1].down:
                    raise ModelUnavailable(f"The inference server at {last[0].url} {last[1].message}.")
                raise ModelUnavailable(self.pool.down_message())
            first_byte: list[float] = []
            try:
                result = self._attempt(endpoint, path, body, request, control, started, deadline, counted, first_byte)
            except _Retry:
                body = {k: v for k, v in body.items() if k not in self.rejected_fields}
                self.pool.release(endpoint)
                continue
            except _Failure as failure:
                self.pool.release(endpoint)
                if failure.down:
                    self.pool.mark_down(endpoint, failure.message, failed_request=True)
                if failure.fatal or failure.emitted:
                    raise ModelUnavailable(f"The inference server at {endpoint.url} {failure.message}.") from None
                tried.add(endpoint)
                last = (endpoint, failure)
                continue
            except BaseException:
                self.pool.release(endpoint)
                raise
            self.pool.release(endpoint, first_byte[0] if first_byte else None)
            if endpoint.state != "up":
                self.pool.mark_up(endpoint)
            self.last = {
                "endpoint": endpoint.url,
                "build_ms": round((built - started) * 1000, 3),
                "first_byte_ms": round(first_byte[0], 3) if first_byte else None,
                "total_ms": round(result.engine_ms, 3),
                "stop_reason": result.stop_reason,
            }
            return result

    def _attempt(
        self,
        endpoint: Endpoint,
        path: str,
        body: dict[str, Any],
        request: GenerationRequest,
        control: RunControl,
        started: float,
        deadline: float | None,
        counted: int,
        first_byte: list[float],
    ) -> GenerationResult:
        answer = _Answer(request, control, chat="messages" in body)
        out: queue.SimpleQueue = queue.SimpleQueue()
        sent = time.perf_counter()
        future = self._loop.submit(self._stream(endpoint.url + path, json.dumps(body).encode("utf-8"), out))
        clean = False  # the answer ended as the server meant it to: the connection can be reused
        try:
            while answer.stop_reason is None:
                wait = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - time.perf_counter()))
                try:
                    item = out.get(timeout=wait)
                except queue.Empty:
                    item = None
                if item is not None:
                    kind = item[0]
                    if kind == "head":  # an error's body, or the answer, follows
                        answer.answered = True
                        first_byte.append((time.perf_counter() - sent) * 1000)
                    elif kind == "body":  # an error, or an answer that is not a stream
                        if item[1] >= 300:
                            self._fail_status(item[1], item[2], body, path)
                        answer.take(_json_object(item[2]))
                        clean = True
                        break
                    elif kind == "data":
                        if item[1].strip() == "[DONE]":
                            clean = True
                            break
                        answer.take(_json_object(item[1]))
                    elif kind == "garbage":
                        raise _Failure(f"sent a stream that is not server-sent events (a line reads {item[1][:60]!r})")
                    elif kind == "eof":
                        clean = True
                        if answer.finish is None:
                            raise _Failure("closed the connection in the middle of an answer")
                        break
                    else:  # "exc"
                        raise _Failure(describe_exception(item[1], self.settings, answer.answered))
                if control.cancel.is_set():
                    raise Cancelled("cancelled during generation")
                if deadline is not None and time.perf_counter() >= deadline and answer.stop_reason is None:
                    answer.stop_reason = "time_limit"
        except _Failure as failure:
            failure.emitted = answer.emitted
            raise
        finally:
            if not clean and not future.done():
                future.cancel()  # closes the stream: the server stops generating
        answer.flush()
        return answer.result(started, counted)


    def _fail_status(self, status: int, text: str, body: dict[str, Any], path: str) -> None:
        """Raise what an HTTP error status means: :class:`_Retry` after dropping a rejected field,
        else :class:`_Failure`."""
        if status < 400:  # a redirect is not followed: the key goes to the configured URLs only
            raise _Failure(
                f"redirects to {text or 'another address'} (HTTP {status}); requests go to the configured URLs "
                "only: set base_url to the address it names",
                down=False, fatal=True,
            )
        message = server_message(text)
        detail = f" ({message})" if message else ""
        if status in (400, 422):
            rejected = [
                name for name in body
                if name not in CORE_FIELDS and name not in self.rejected_fields and re.search(rf"\b{re.escape(name)}\b", message)
            ]
            if rejected:
                for name in rejected:
                    self.rejected_fields[name] = message
                log.warning(
                    "the inference server rejects the request field(s) %s (%s); they are no longer sent",
                    ", ".join(rejected), message,
                )
                raise _Retry()
            raise _Failure(f"refused the request (HTTP {status}{detail})", down=False, fatal=True)
        if status in (401, 403):
            what = "the API key" if self._auth else "requests without an API key (set model.api_key_env or model.api_key_file)"
            raise _Failure(f"refused {what} (HTTP {status}{detail})", down=False, fatal=True)
        if status == 404:
            model = f" or no model {self.model_name!r}" if self.model_name else ""
            raise _Failure(
                f"has no {path}{model} (HTTP 404{detail}); base_url is the API root, which usually ends in /v1",
                down=False, fatal=True,
            )
        if status in (408, 429) or status >= 500:
            raise _Failure(f"answered HTTP {status}{detail}")
        raise _Failure(f"answered HTTP {status}{detail}", down=False, fatal=True)

    async def _stream(self, url: str, payload: bytes, out: queue.SimpleQueue) -> None:
        """POST ``payload`` and put what comes back on ``out``, event by event (runs on the loop).

        A kept-alive connection the server closed meanwhile (it stopped, or dropped idle
        connections) fails before any answer: the request is sent once more, on a new connection,
        so what is reported is what the server does now."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **self._auth}
        answered: list[bool] = []
        try:
            try:
                await self._post(url, payload, headers, out, answered)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                if answered:
                    raise
                await self._post(url, payload, headers, out, answered)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the worker says what it means
            out.put(("exc", exc))

    async def _post(
        self, url: str, payload: bytes, headers: dict[str, str], out: queue.SimpleQueue, answered: list[bool]
    ) -> None:
        async with self._client.stream("POST", url, content=payload, headers=headers) as response:
            answered.append(True)
            content_type = response.headers.get("content-type", "")
            out.put(("head", response.status_code, content_type))
            if response.status_code >= 300 or "text/event-stream" not in content_type:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > _MAX_ERROR_BODY:
                        break
                text = raw.decode("utf-8", "replace")
                if 300 <= response.status_code < 400:
                    text = response.headers.get("location", "")
                out.put(("body", response.status_code, text))
                return
            data: list[str] = []
            async for line in response.aiter_lines():
                if not line:
                    if data:
                        out.put(("data", "\n".join(data)))
                        data = []
                elif line.startswith("data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(" ") else value)
                elif line.startswith((":", "event:", "id:", "retry:")):
                    continue
                else:
                    out.put(("garbage", line))
                    return
            if data:
                out.put(("data", "\n".join(data)))
            out.put(("eof",))


class _Answer:
    """What the pieces of one answer add up to, as they arrive (on the engine's worker)."""

    def __init__(self, request: GenerationRequest, control: RunControl, chat: bool) -> None:
        self.request = request
        self.control = control
        self.chat = chat
        self.held: list[bytes] = []
        self.emit = control.emit if request.incremental else self.held.append
        self.emitted = False  # text reached the caller: the request cannot start over elsewhere
        self.answered = False
        self.pieces = 0
        self.newlines = 0
        self.stop_reason: str | None = None
        self.finish: str | None = None
        self.usage: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}
        self.first_text: float | None = None

    def take(self, data: dict[str, Any]) -> None:
        """One event of the stream (or the whole answer of a server that does not stream)."""
        if "error" in data:
            message = server_message(json.dumps(data))
            raise _Failure(f"reported an error in the middle of an answer ({message})", down=False)
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        if isinstance(data.get("timings"), dict):  # llama.cpp's server: what the prompt cache saved
            self.timings = data["timings"]
        choices = data.get("choices")
        if not isinstance(choices, list) or (choices and not isinstance(choices[0], dict)):
            raise _Failure("sent an answer that is not an OpenAI completion (no choices)")
        if not choices:
            return
        choice = choices[0]
        if self.chat:
            message = choice.get("delta") or choice.get("message") or {}
            piece = message.get("content") if isinstance(message, dict) else None
        else:
            piece = choice.get("text")
        self.finish = choice.get("finish_reason") or self.finish
        if piece and isinstance(piece, str) and not self.request.background:
            self._piece(piece)
        if self.chat and self.control.between_tokens is not None:
            self.control.between_tokens()  # completions waiting behind a chat answer run here

    def _piece(self, piece: str) -> None:
        if self.first_text is None:
            self.first_text = time.perf_counter()
        self.pieces += 1
        self.control.sampled()
        max_lines = self.request.limits.max_lines
        if max_lines is not None and "\n" in piece:
            allowed = max_lines - 1 - self.newlines
            if piece.count("\n") > allowed:
                cut = -1
                for _ in range(allowed + 1):
                    cut = piece.index("\n", cut + 1)
                if cut > 0:
                    self.emit(piece[:cut].encode("utf-8"))
                self.stop_reason = "max_lines"
                return
            self.newlines += piece.count("\n")
        self.emit(piece.encode("utf-8"))
        self.emitted = self.request.incremental

    def flush(self) -> None:
        if self.held:
            self.control.emit(b"".join(self.held))

    def result(self, started: float, counted: int) -> GenerationResult:
        done = time.perf_counter()
        stop_reason = self.stop_reason
        if stop_reason is None:
            if self.request.background:
                stop_reason = "prefetch"
            elif self.finish == "length":
                stop_reason = "max_tokens"
            elif self.finish is not None:
                stop_reason = "stop_token"
            else:
                stop_reason = "interrupted"  # the server ended the answer without saying why
        prompt_tokens = int(self.usage.get("prompt_tokens") or counted)
        prefill_end = self.first_text or done
        return GenerationResult(
            text="",
            stop_reason=stop_reason,
            prompt_tokens=prompt_tokens,
            tokens_reused=int(self.timings.get("cache_n") or 0),
            tokens_evaluated=int(self.timings.get("prompt_n") or prompt_tokens),
            tokens_generated=0 if self.request.background else int(self.usage.get("completion_tokens") or self.pieces),
            engine_ms=(done - started) * 1000,
            queue_ms=0.0,
            prefill_ms=(prefill_end - started) * 1000,
            decode_ms=(done - prefill_end) * 1000,
            threads=0,
        )


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _Failure(f"sent a stream that is not JSON server-sent events (data reads {text.strip()[:60]!r})")
    return data


def load_remote(settings: OpenAIModelSettings, progress: ProgressCallback) -> RemoteRuntime:
    """The remote runtime of ``settings``; :class:`ModelUnavailable` for a setting that cannot work
    (a missing key, an unreadable CA or tokenizer file). A server that is down is not one."""
    api_key = read_api_key(settings)
    verify = tls_verify(settings)
    if settings.tokenizer != "approximate":
        progress("reading the tokenizer", 10)
    tokenizer = make_tokenizer(settings.tokenizer, settings.n_ctx)
    progress(f"connecting to {settings.label}", 40)
    runtime = RemoteRuntime(settings, tokenizer, api_key, verify)
    try:
        runtime.start()
    except BaseException:
        runtime.close()
        raise
    return runtime
