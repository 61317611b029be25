"""Settings over LSP, end to end over stdio: nothing bad is accepted silently, and what was working
keeps working. A settings layer of the wrong shape or with a bad value is told in one sentence and
the previous settings stay; a config file that cannot be read is told and the command line still
applies; an old config file is migrated and the user told; a model path that does not load leaves
the loaded model serving; a new memory.url moves the memories to Redis."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types as lsp

from gemma_lsp.config import CONFIG_VERSION
from lsp_support import SERVER_COMMAND
from test_lsp_completion import CAPABILITIES, CURSOR, inline_params, open_doc


@contextlib.asynccontextmanager
async def served(*args: str, options: Any = None):
    """The real server, started as ``gemma-lsp serve -v ARGS``, initialized with ``options``."""
    client = pytest_lsp.make_test_lsp_client()
    await client.start_io(*SERVER_COMMAND, *args)
    try:
        await client.initialize_session(lsp.InitializeParams(capabilities=CAPABILITIES, initialization_options=options))
        yield client
        await client.shutdown_session()
    except BaseException:
        client._server.kill()  # a failed check: the server is not left waiting for its exit
        raise
    finally:
        await client.stop()


async def told(client, count: int, timeout: float = 10.0) -> list[lsp.ShowMessageParams]:
    """The window messages once there are at least ``count`` of them."""
    for _ in range(int(timeout / 0.02)):
        if len(client.messages) >= count:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # and nothing more arrives just after
    return list(client.messages)


async def stats(client) -> dict:
    return await client.protocol.send_request_async("gemma/stats", None)


async def completes(client) -> bool:
    result = await client.text_document_inline_completion_async(inline_params())
    return bool(result and result.items and result.items[0].range.start == CURSOR)


def change(client, settings: Any) -> None:
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=settings))


async def test_settings_of_the_wrong_shape_are_told_and_the_previous_ones_stay(tiny_model):
    async with served("--model", str(tiny_model), options={"gemma": "oops"}) as client:
        (message,) = await told(client, 1)
        assert message.type == lsp.MessageType.Warning
        assert message.message == (
            "gemma-lsp: Invalid settings: the 'gemma' section must be an object of settings, got a string ('oops'). "
            "(initializationOptions; using the previous values)"
        )
        open_doc(client)
        assert await completes(client)  # --model still applies

        for settings, said in (
            ([1, 2], "Invalid settings: expected an object of settings, got a list."),
            ({"gemma": 7}, "Invalid settings: the 'gemma' section must be an object of settings, got a number (7)."),
            ({"gemma": {"completion": {"max_tokens": True}}},
             "Invalid setting completion.max_tokens: must be a whole number (got true)."),
            ({"gemma": {"completion": {"time_limit_ms": 1e308}}},
             "Invalid setting completion.time_limit_ms: 1e+308 is out of range (allowed: from 0 to 600000)."),
            ({"gemma": {"completion": {"max_tokns": 3}}}, "Invalid setting completion.max_tokns: unknown setting."),
            ({"completoin": {"max_tokens": 3}}, "Invalid setting completoin: unknown setting."),
        ):  # fmt: skip
            before = len(client.messages)
            change(client, settings)
            new = (await told(client, before + 1))[before:]
            assert [(m.type, m.message) for m in new] == [
                (lsp.MessageType.Warning, f"gemma-lsp: {said} (didChangeConfiguration; the previous settings stay in force)")
            ]
        assert await completes(client)
        # Keys beside the gemma section are other tools' settings: not ours to judge.
        before = len(client.messages)
        change(client, {"gemma": {"completion": {"max_tokens": 4}}, "python": {"analysis": True}})
        assert await completes(client) and len(await told(client, before, timeout=0.2)) == before


async def test_a_config_file_that_is_not_utf8_is_named_and_the_model_flag_still_applies(tiny_model, tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes('[completion]\n# réglages\nmax_tokens = 8\n'.encode("latin-1"))
    async with served("--config", str(config), "--model", str(tiny_model)) as client:
        (message,) = await told(client, 1)
        assert message.type == lsp.MessageType.Warning and message.message == (
            f"gemma-lsp: Config file {config} is not UTF-8 text (byte 0xe9 on line 2 is not UTF-8): save it as "
            "UTF-8. (config file; using the previous values)"
        )
        open_doc(client)
        assert await completes(client)
        assert (await stats(client)).model.path == str(tiny_model)


async def test_an_old_config_file_is_migrated_and_the_user_told(tiny_model, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[model]\npath = "{tiny_model}"\n[completion]\ntemperature = 0.0\nmax_tokens = 8\n')
    async with served("--config", str(config)) as client:
        (message,) = await told(client, 1)
        backup = tmp_path / "config.toml.v0.bak"
        assert message.type == lsp.MessageType.Info and message.message == (
            f"gemma-lsp: Migrated config file {config} from version 0 to {CONFIG_VERSION} (completion.temperature = "
            f'0.0 became completion.preset = "greedy"); the original is kept as {backup}.'
        )
        assert backup.exists() and config.read_text().startswith(f"version = {CONFIG_VERSION}\n")
        open_doc(client)
        assert await completes(client)


async def test_a_config_file_of_a_newer_version_is_refused_and_the_rest_applies(tiny_model, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'version = {CONFIG_VERSION + 1}\n[model]\npath = "/nowhere.gguf"\n')
    async with served("--config", str(config), options={"gemma": {"model": {"path": str(tiny_model)}}}) as client:
        (message,) = await told(client, 1)
        assert message.type == lsp.MessageType.Warning
        assert message.message.startswith(f"gemma-lsp: Config file {config} is version {CONFIG_VERSION + 1}, newer than")
        open_doc(client)
        assert await completes(client)


async def engine_completes(client) -> bool:
    """A completion the engine answered (a settings change clears the answer cache)."""
    before = (await stats(client)).completed
    return await completes(client) and (await stats(client)).completed == before + 1


async def test_a_model_path_that_does_not_load_leaves_the_loaded_model_serving(tiny_model, model_factory, tmp_path):
    options = {"gemma": {"model": {"path": str(tiny_model)}, "completion": {"max_tokens": 6}}}
    async with served(options=options) as client:
        open_doc(client)
        assert await engine_completes(client)
        missing = tmp_path / "missing.gguf"
        change(client, {"gemma": {"model": {"path": str(missing)}}})
        (message,) = await told(client, 1)
        assert message.type == lsp.MessageType.Error
        assert str(missing) in message.message and message.message.endswith(f"{tiny_model.name} keeps serving.")
        assert await engine_completes(client)
        s = await stats(client)
        assert s.loaded and s.model.path == str(tiny_model) and s.load_error is None

        # Another change keeps the path that failed: it is not tried (nor told) again.
        change(client, {"gemma": {"model": {"path": str(missing)}, "completion": {"max_tokens": 5}}})
        assert await engine_completes(client)
        assert len(await told(client, 1)) == 1

        # A model that loads replaces it.
        other = model_factory("gemma2")
        change(client, {"gemma": {"model": {"path": str(other)}}})
        for _ in range(500):
            if (await stats(client)).model.path == str(other):
                break
            await asyncio.sleep(0.02)
        assert (await stats(client)).model.architecture == "gemma2"
        assert await engine_completes(client)
        assert len(client.messages) == 1


async def test_a_memory_url_given_later_moves_the_memories_to_redis(tiny_model, tmp_path):
    import redis

    from gemma_lsp import protocol
    from gemma_lsp.memory.redis_server import RedisServer, free_port
    from system_tools import required_tool

    server = RedisServer(required_tool("redis-server", "apt-get install redis-server"), free_port(), tmp_path / "redis")
    server.start()
    memory = {"sqlite_path": str(tmp_path / "m.sqlite3"), "journal_dir": str(tmp_path / "journal"), "prefix": "moved"}
    try:
        async with served(options={"gemma": {"model": {"path": str(tiny_model)}, "memory": memory}}) as client:

            async def execute(name: str, argument: dict) -> Any:
                params = lsp.ExecuteCommandParams(command=name, arguments=[argument])
                return await client.workspace_execute_command_async(params)

            await execute(protocol.MEMORY_REMEMBER, {"text": "Kept in SQLite: the embedded store."})
            assert (await execute(protocol.MEMORY_STATS, {}))["store"] == "EmbeddedMemoryStore"
            change(client, {"gemma": {"memory": {"url": server.url}}})
            for _ in range(250):
                if (await execute(protocol.MEMORY_STATS, {}))["store"] != "EmbeddedMemoryStore":
                    break
                await asyncio.sleep(0.02)
            assert (await execute(protocol.MEMORY_STATS, {}))["degraded"] is False
            await execute(protocol.MEMORY_REMEMBER, {"text": "Kept in Redis: the shared store."})
            keys = redis.Redis.from_url(server.url).keys("moved*")
            assert keys  # written to the Redis server named by the new URL
            found = await execute(protocol.MEMORY_SEARCH, {"query": "Kept store"})
            assert [hit["text"] for hit in found] == ["Kept in Redis: the shared store."]
            assert client.messages == []
    finally:
        server.stop()
