"""Faults of the inference server, each met with one clear sentence and a recovery of its own:
down at start, killed in the middle of an answer and started again, too slow, HTTP errors, a
refused API key, an untrusted certificate, a stream that is not one, a field it rejects.

The server is real (llama-cpp-python's, started and killed here) wherever it can produce the
fault; a small stdlib server (``misbehaving.py``) produces the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from gemma_lsp.config.sampling import GreedySpec, LogitBiasSpec, TopKSpec, DistributionSpec
from gemma_lsp.engine import (
    ChatMessage,
    ChatPrompt,
    EngineManager,
    GenerationLimits,
    GenerationRequest,
    GenerationResult,
    SamplingSpec,
    TextPrompt,
)
from gemma_lsp.engine.testserver import free_port
from gemma_lsp.errors import ModelUnavailable

from remote_support import remote_settings

PROMPT = TextPrompt("x = ")


def forcing(token: int) -> SamplingSpec:
    return SamplingSpec((LogitBiasSpec(bias={token: 100.0}), GreedySpec()))


async def loaded(settings) -> EngineManager:
    manager = EngineManager(settings)
    await manager.load()
    return manager


async def recovers(manager: EngineManager, within_s: float = 30.0, **limits) -> GenerationResult:
    """Ask until an answer comes (the health checks find the server again by themselves)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await manager.generate(GenerationRequest(PROMPT, limits=GenerationLimits(max_tokens=2, **limits)))
        except ModelUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def fails_fast(manager: EngineManager, request: GenerationRequest | None = None) -> str:
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as info:
        await manager.generate(request or GenerationRequest(PROMPT, limits=GenerationLimits(max_tokens=2)))
    assert time.perf_counter() - started < 0.5
    return str(info.value)


async def test_a_server_down_at_start_answers_at_once_then_recovers_when_it_starts(start_server):
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    manager = await loaded(remote_settings(url))  # no error: the server may come later
    try:
        assert manager.status()["endpoints"][0]["state"] == "down"
        message = await fails_fast(manager)
        assert message == (
            f"No inference server answers ({url} refused the connection); "
            "completions resume by themselves when it is back."
        )
        assert await fails_fast(manager) == message  # the same sentence: told once by the server
        start_server(port=port)
        result = await recovers(manager)
        assert result.tokens_generated + (result.stop_reason == "stop_token") >= 1
        assert manager.status()["endpoints"][0]["state"] == "up"
        assert manager.status()["model"].endswith("gemma3-tiny.gguf")  # learned once it answered
    finally:
        await manager.close()


async def test_a_server_killed_in_the_middle_of_an_answer_says_so_and_recovers_after_a_restart(start_server, vocab):
    server = start_server()
    manager = await loaded(remote_settings(server.url))
    x = vocab.tokenize("x")[0]
    try:
        chat = GenerationRequest(
            ChatPrompt((ChatMessage("user", "go on"),)), forcing(x), GenerationLimits(max_tokens=100_000), lane="chat"
        )
        pieces = []
        with pytest.raises(ModelUnavailable) as info:
            async for item in manager.stream(chat):
                pieces.append(item)
                if len(pieces) == 3:
                    server.kill()
        assert str(info.value) == f"The inference server at {server.url} closed the connection in the middle of an answer."
        assert 3 <= len(pieces) < 100_000
        # While it is down: completions fail at once, with the reason.
        message = await fails_fast(manager)
        assert message.startswith(f"No inference server answers ({server.url} ")
        server.start()
        await recovers(manager)
        completion = GenerationRequest(PROMPT, forcing(x), GenerationLimits(max_tokens=100_000), key="doc")
        task = asyncio.ensure_future(manager.generate(completion))  # a completion is held back whole
        await asyncio.sleep(0.5)
        server.kill()
        with pytest.raises(ModelUnavailable) as info:
            await task
        assert str(info.value) == (
            f"No inference server answers ({server.url} closed the connection in the middle of an answer); "
            "completions resume by themselves when it is back."
        )
    finally:
        await manager.close()


async def test_a_slow_server_times_out_with_the_setting_named(misbehaving):
    misbehaving.mode, misbehaving.delay_s = "slow", 3.0
    manager = await loaded(remote_settings(misbehaving.url, timeout_s=0.3))
    try:
        started = time.perf_counter()
        with pytest.raises(ModelUnavailable) as info:
            await manager.generate(GenerationRequest(PROMPT, limits=GenerationLimits(max_tokens=2)))
        assert time.perf_counter() - started < 2.0
        assert str(info.value) == (
            f"No inference server answers ({misbehaving.url} sent nothing for 0.3 s (model.timeout_s)); "
            "completions resume by themselves when it is back."
        )
        # A completion's own time limit comes first: an empty answer, no error.
        assert await _up(manager)  # its health check answers at once
        result = await manager.generate(
            GenerationRequest(PROMPT, limits=GenerationLimits(max_tokens=2, time_limit_s=0.1))
        )
        assert (result.text, result.stop_reason) == ("", "time_limit")
    finally:
        await manager.close()


async def _up(manager: EngineManager, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if all(e["state"] == "up" for e in manager.status()["endpoints"]):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, '{"error": {"message": "the GPU caught fire"}}',
         "No inference server answers ({url} answered HTTP 500 (the GPU caught fire)); "
         "completions resume by themselves when it is back."),
        (503, "Loading model", "No inference server answers ({url} answered HTTP 503 (Loading model)); "
         "completions resume by themselves when it is back."),
        (400, '{"error": {"message": "the prompt is longer than the context (9000 > 8192)"}}',
         "The inference server at {url} refused the request (HTTP 400 (the prompt is longer than the context (9000 > 8192)))."),
        (418, '{"detail": "I am a teapot"}', "The inference server at {url} answered HTTP 418 (I am a teapot)."),
    ],
)
async def test_an_http_error_is_one_sentence_with_the_servers_own_words(misbehaving, status, body, expected):
    misbehaving.mode, misbehaving.status, misbehaving.status_body = "status", status, body
    manager = await loaded(remote_settings(misbehaving.url))
    try:
        assert await fails_fast(manager) == expected.format(url=misbehaving.url)
    finally:
        await manager.close()


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("garbage", "sent a stream that is not server-sent events (a line reads 'this is not an event stream')"),
        ("not_json", "sent a stream that is not JSON server-sent events (data reads '{\"choices\": [')"),
        ("cut", "closed the connection in the middle of an answer"),
    ],
)
async def test_a_stream_that_is_not_one_is_said_so(misbehaving, mode, problem):
    misbehaving.mode = mode
    manager = await loaded(remote_settings(misbehaving.url))
    try:
        assert await fails_fast(manager) == (
            f"No inference server answers ({misbehaving.url} {problem}); completions resume by themselves when it is back."
        )
        misbehaving.mode = "ok"  # the server is fixed: the health check lets requests through again
        assert (await recovers(manager)).text == "hello"
    finally:
        await manager.close()


async def test_a_field_the_server_rejects_is_dropped_and_reported_once(misbehaving, caplog):
    misbehaving.mode, misbehaving.rejects = "reject", "top_k"
    manager = await loaded(remote_settings(misbehaving.url))
    sampling = SamplingSpec((TopKSpec(k=40), DistributionSpec()), seed=7)
    try:
        with caplog.at_level(logging.WARNING, logger="gemma_lsp.engine.remote"):
            for _ in range(3):
                result = await manager.generate(GenerationRequest(PROMPT, sampling, GenerationLimits(max_tokens=4)))
                assert result.text == "hello"
        warnings = [r.getMessage() for r in caplog.records if "rejects" in r.getMessage()]
        assert warnings == [
            "the inference server rejects the request field(s) top_k (Unrecognized request argument supplied: "
            "top_k); they are no longer sent"
        ]
        assert [("top_k" in body) for body in misbehaving.requests] == [True, False, False, False]
        assert misbehaving.requests[-1]["seed"] == 7 and misbehaving.requests[-1]["temperature"] == 1.0
        assert set(manager.status()["rejected_fields"]) == {"top_k"}
    finally:
        await manager.close()


async def test_the_api_key_is_sent_to_the_server_and_nowhere_else(start_server, monkeypatch, caplog, tmp_path):
    server = start_server(api_key="sesame-0123456789")
    monkeypatch.setenv("TEAM_GEMMA_KEY", "sesame-0123456789")
    with caplog.at_level(logging.DEBUG):
        manager = await loaded(remote_settings(server.url, api_key_env="TEAM_GEMMA_KEY"))
        try:
            result = await manager.generate(GenerationRequest(PROMPT, limits=GenerationLimits(max_tokens=2)))
            assert result.stop_reason in ("max_tokens", "stop_token")
            assert "sesame" not in str(manager.status())
        finally:
            await manager.close()
    assert "sesame" not in caplog.text
    key_file = tmp_path / "key"
    key_file.write_text("wrong-key\n")
    manager = await loaded(remote_settings(server.url, api_key_file=key_file))
    try:
        assert await fails_fast(manager) == (
            f"The inference server at {server.url} refused the API key (HTTP 401 (Invalid API key))."
        )
    finally:
        await manager.close()
    manager = await loaded(remote_settings(server.url))
    try:
        assert await fails_fast(manager) == (
            f"The inference server at {server.url} refused requests without an API key "
            "(set model.api_key_env or model.api_key_file) (HTTP 401 (Invalid API key))."
        )
    finally:
        await manager.close()


async def test_a_missing_api_key_is_a_load_error_naming_the_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("NO_SUCH_GEMMA_KEY", raising=False)
    manager = EngineManager(remote_settings("http://127.0.0.1:9/v1", api_key_env="NO_SUCH_GEMMA_KEY"))
    with pytest.raises(ModelUnavailable, match=r"^model\.api_key_env names NO_SUCH_GEMMA_KEY, which is not set in the server's environment\.$"):
        await manager.load()
    await manager.close()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    manager = EngineManager(remote_settings("http://127.0.0.1:9/v1", api_key_file=empty))
    with pytest.raises(ModelUnavailable, match=rf"^model\.api_key_file {empty} is empty\.$"):
        await manager.load()
    await manager.close()


async def test_tls_is_verified_against_the_configured_authority(start_server, tls_cert):
    server = start_server(certfile=tls_cert, keyfile=tls_cert.with_suffix(".key"))
    assert server.url.startswith("https://")
    manager = await loaded(remote_settings(server.url))
    try:
        message = await fails_fast(manager)
        assert message == (
            f"No inference server answers ({server.url} has a TLS certificate that cannot be verified "
            "(self-signed certificate); set model.ca_file to your CA's certificate); "
            "completions resume by themselves when it is back."
        )
    finally:
        await manager.close()
    for options in ({"ca_file": tls_cert}, {"verify_tls": False}):
        manager = await loaded(remote_settings(server.url, **options))
        try:
            result = await manager.generate(GenerationRequest(PROMPT, limits=GenerationLimits(max_tokens=2)))
            assert result.stop_reason in ("max_tokens", "stop_token"), options
        finally:
            await manager.close()


async def test_a_wrong_api_root_names_what_is_missing(openai_server):
    root = openai_server.url.removesuffix("/v1")
    manager = await loaded(remote_settings(root))
    try:
        assert await fails_fast(manager) == (
            f"The inference server at {root} has no /completions (HTTP 404 (Not Found)); "
            "base_url is the API root, which usually ends in /v1."
        )
    finally:
        await manager.close()


async def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(misbehaving, monkeypatch):
    from misbehaving import Misbehaving

    elsewhere = Misbehaving().start()
    try:
        misbehaving.mode, misbehaving.location = "redirect", elsewhere.url
        monkeypatch.setenv("TEAM_GEMMA_KEY", "sesame-0123456789")
        manager = await loaded(remote_settings(misbehaving.url, api_key_env="TEAM_GEMMA_KEY"))
        try:
            assert await fails_fast(manager) == (
                f"The inference server at {misbehaving.url} redirects to {elsewhere.url}/completions (HTTP 307); "
                "requests go to the configured URLs only: set base_url to the address it names."
            )
        finally:
            await manager.close()
        assert misbehaving.headers[0]["Authorization"] == "Bearer sesame-0123456789"
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()
