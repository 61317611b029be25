"""The memory model, the settings and the URL handling (no store needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gemma_lsp.memory import Kind, Memory, MemorySettings, Tier, content_hash, memory_id, namespace_for_workspace, parse_redis_url
from gemma_lsp.memory.errors import MemoryUnavailable
from gemma_lsp.errors import GemmaLspError


def test_id_and_content_hash_come_from_the_text():
    m = Memory(namespace="ws-1", tier=Tier.working, kind=Kind.note, text="héllo")
    assert m.content_hash == content_hash("héllo") and len(m.content_hash) == 64
    assert m.id == memory_id("héllo") == m.content_hash[:32]
    assert m.last_accessed == m.created_at and m.access_count == 0 and m.importance == 0.5
    same = Memory(namespace="ws-2", tier="long_term", kind="doc", text="héllo")
    assert same.id == m.id
    Memory(namespace="ws-1", tier="working", kind="note", text="héllo", id=m.id, content_hash=m.content_hash)
    with pytest.raises(ValidationError, match="id does not match"):
        Memory(namespace="ws-1", tier="working", kind="note", text="héllo", id="0" * 32)
    with pytest.raises(ValidationError, match="content_hash does not match"):
        Memory(namespace="ws-1", tier="working", kind="note", text="héllo", content_hash="0" * 64)


@pytest.mark.parametrize(
    "field, value",
    [
        ("importance", 1.5),
        ("importance", -0.1),
        ("text", ""),
        ("namespace", "Has Spaces"),
        ("namespace", "a{b}"),
        ("namespace", "a:b"),
        ("tier", "forever"),
        ("kind", "secret"),
        ("tags", "one-string"),
        ("access_count", -1),
    ],
)
def test_invalid_memories_are_rejected(field, value):
    data = dict(namespace="ws", tier="working", kind="note", text="t")
    data[field] = value
    with pytest.raises(ValidationError):
        Memory(**data)


def test_tags_are_a_sorted_set_and_the_model_is_frozen():
    m = Memory(namespace="ws", tier="working", kind="note", text="t", tags=["b", "a", "b"])
    assert m.tags == ("a", "b")
    with pytest.raises(ValidationError):
        m.text = "other"  # type: ignore[misc]


def test_json_round_trip():
    m = Memory(
        namespace="ws", tier="semantic", kind="code_chunk", text="x = 1",
        source={"uri": "file:///a.py", "range": {"start": {"line": 1, "character": 2}, "end": {"line": 1, "character": 7}}},
        embedding=[0.5, 0.25],
    )  # fmt: skip
    assert Memory.model_validate_json(m.model_dump_json()) == m


def test_workspace_namespaces(tmp_path: Path):
    a, b = tmp_path / "one" / "proj", tmp_path / "two" / "proj"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    ns_a = namespace_for_workspace(a)
    assert ns_a.startswith("proj-")
    assert ns_a != namespace_for_workspace(b)  # same folder name, different workspace
    assert ns_a == namespace_for_workspace(str(a / ".." / "proj")) == namespace_for_workspace(a.as_uri())
    odd = tmp_path / "My Project {x}:y"
    odd.mkdir()
    Memory(namespace=namespace_for_workspace(odd), tier="working", kind="note", text="t")  # a valid namespace
    assert namespace_for_workspace("/").startswith("root-")


def test_settings_defaults_follow_xdg_cache(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    s = MemorySettings()
    assert s.url is None and s.prefix == "gemma-lsp"
    assert s.sqlite_path == tmp_path / "gemma-lsp" / "memories.sqlite3"
    assert s.ttl.for_tier(Tier.long_term) is None and s.ttl.for_tier("working") == 8 * 3600
    assert MemorySettings(url="").url is None
    for bad in [{"url": "http://x"}, {"prefix": "a:b"}, {"prefix": "{x}"}, {"ttl": {"working": 0}}, {"ttl": {"nope": 1}}]:
        with pytest.raises(ValidationError):
            MemorySettings(**bad)


@pytest.mark.parametrize(
    "url, plain, cluster",
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0", False),
        ("rediss://:pw@host:6380/1?ssl_cert_reqs=none", "rediss://:pw@host:6380/1?ssl_cert_reqs=none", False),
        ("redis+cluster://h:7000", "redis://h:7000", True),
        ("rediss+cluster://u:pw@h:7000", "rediss://u:pw@h:7000", True),
        ("redis://h:7000/?cluster=true&protocol=3", "redis://h:7000/?protocol=3", True),
        ("redis://h:7000/?cluster=false", "redis://h:7000/", False),
    ],
)
def test_cluster_urls(url, plain, cluster):
    assert parse_redis_url(url) == (plain, cluster)


def test_memory_unavailable_is_a_project_error():
    assert issubclass(MemoryUnavailable, GemmaLspError)
