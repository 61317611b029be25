"""Secrets never reach the store: a hostile workspace indexed through the real service, the SQLite
file's bytes searched for every secret, saves, ``remember``, import, chat turns, the CLI."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gemma_lsp.memory import MemorySettings
from gemma_lsp.memory.secrets import SecretRules, SecretText, find_secret, redact_secrets
from gemma_lsp.memory.service import MemoryService
from gemma_lsp.memory.settings import IndexSettings

# Every file a credential tool or a cloud CLI writes, in lower and upper case, at the root and deeper.
NAMED_SECRETS = [
    ".env", ".ENV", ".env.local", ".Env.Production", "config/.env.test", "prod.env", "PROD.ENV", ".envrc", ".ENVRC",
    ".netrc", ".NETRC", ".npmrc", ".Npmrc", ".pypirc", ".git-credentials", ".GIT-CREDENTIALS", "server.pem",
    "SERVER.PEM", "certs/tls.key", "certs/TLS.KEY", "cert.p12", "cert.PFX", "id_rsa", "ID_RSA", "keys/id_ed25519",
    "keys/id_ecdsa.pub", "vault.kdbx", "Vault.KDBX", ".aws/credentials", ".AWS/config", "home/.aws/credentials",
    "gcloud/application_default_credentials.json", "cfg/GCLOUD/legacy_credentials/me/adc.json",
    ".docker/config.json", ".Docker/Config.JSON", ".kube/config", "ops/.KUBE/CONFIG", "terraform.tfstate",
    "TERRAFORM.TFSTATE", "infra/terraform.tfstate.backup", ".ssh/known_hosts", ".ssh/authorized_keys",
    ".gnupg/pubring.kbx", "secrets.yaml", "app.secret", "credentials", "prod.tfvars", ".bash_history",
]

_AWS_ID = "AKIA" + "Q3EXAMPLE7KEY2ID"
_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
# Secret content behind innocent names: each kind of token the content check knows.
CONTENT_SECRETS = {
    "settings.py": f'AWS_ACCESS_KEY_ID = "{_AWS_ID}"\n',
    "notes.md": "# Deploy\n\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----\n",
    "docs/setup.txt": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "keys/backup.txt": "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0\n-----END PGP PRIVATE KEY BLOCK-----\n",
    "deploy.sh": "curl -H 'Authorization: token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + "'\n",
    "ci/github.py": 'TOKEN = "github_pat_' + "11ABCDEFG0123456789_abcdefghijklmnopqrstuv" + '"\n',
    "config.yaml": "gitlab_token: glpat-" + "xY9zA8bC7dE6fG5hI4jK" + "\n",
    "slack.txt": "bot: xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOp" + "\n",
    "ai.py": 'client = OpenAI(api_key="sk-proj-' + "Ab3dEf6hIj9lMn2pQr5tUv8xYz1BcDeFgHiJ" + '")\n',
    "maps.js": 'const key = "AIza' + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY" + '";\n',
    "pay.rb": 'Stripe.api_key = "sk_live_' + "4eC39HqLyjWDarjtT1zdp7dc" + '"\n',
    "auth.ts": "const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U" + "';\n",
    "creds.ini": f"[default]\naws_secret_access_key = {_AWS_SECRET}\n",
    "publish.cfg": "password = pypi-AgEIcHlwaS5vcmc" + "CJGI2ZTE1ZmQ4LTkzYWMtNGY0Ni1iZjQ0LWU2M2RkNWE3NjdmZQ" + "\n",
    "hf.py": 'HF = "hf_' + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789" + '"\n',
    # a key far past the first KB of an otherwise ordinary file
    "deep.py": "".join(f"def helper_{i}(x):\n    return x + {i}\n" for i in range(400)) + f'KEY = "{_AWS_ID}"\n',
}


def marker(i: int) -> str:
    return f"zqxsecretmarker{i:03d}"


def build_hostile_workspace(root: Path) -> dict[str, str]:
    """Every secret file with a unique marker word in it; returns {relative path: marker}."""
    markers = {}
    for i, rel in enumerate(NAMED_SECRETS):
        markers[rel] = marker(i)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{marker(i)} = 'ordinary looking words'\n")
    for j, (rel, text) in enumerate(CONTENT_SECRETS.items(), start=len(NAMED_SECRETS)):
        markers[rel] = marker(j)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {marker(j)}\n{text}")
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "billing.py").write_text("def compute_invoice_total(items):\n    return sum(i.price for i in items)\n")
    (root / "README.md").write_text("# Shop\n\nInvoices and their totals.\n")
    return markers


def stored_bytes(tmp_path: Path) -> bytes:
    """Everything the embedded store wrote: the database, its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("m.sqlite3*")))


def secret_values() -> list[str]:
    values = [_AWS_ID, _AWS_SECRET, "MIIEowIBAAKCAQEA7bq", "b3BlbnNzaC1rZXktdjEAAAAA", "lQOYBF0"]
    for text in CONTENT_SECRETS.values():
        for word in text.replace('"', " ").replace("'", " ").replace("=", " ").split():
            if find_secret(word):
                values.append(word)
    return values


@pytest.fixture
async def hostile(tmp_path):
    root = tmp_path / "ws"
    markers = build_hostile_workspace(root)
    service = MemoryService(MemorySettings(sqlite_path=tmp_path / "m.sqlite3", journal_dir=tmp_path / "j"), root=root)
    await service.start()
    yield service, markers
    await service.close()


async def test_a_hostile_workspace_stores_no_secret(hostile, tmp_path):
    service, markers = hostile
    state = await service.index_workspace()
    assert state.files_total == 2 + len(CONTENT_SECRETS)  # named secrets are never even opened
    assert state.secrets_skipped == len(markers) == len(NAMED_SECRETS) + len(CONTENT_SECRETS)
    stats = await service.stats()
    assert stats["secrets_skipped"] == len(markers)
    assert (await service.search("compute invoice total"))[0].memory.text.startswith("def compute_invoice_total")

    data = stored_bytes(tmp_path)
    assert b"compute_invoice_total" in data  # the check can see what was stored
    leaked = [rel for rel, m in markers.items() if m.encode() in data]
    assert leaked == [], f"secret files stored: {leaked}"
    values = secret_values()
    assert len(values) >= 15
    assert [v for v in values if v.encode() in data] == []
    for rel, m in markers.items():
        assert not any(m in h.memory.text for h in await service.search(m, k=20)), rel


async def test_a_saved_file_that_gains_a_key_leaves_the_store(hostile, tmp_path):
    service, _ = hostile
    await service.index_workspace()
    billing = service.root / "app" / "billing.py"
    billing.write_text(billing.read_text() + f'\nSTRIPE = "sk_live_{"9" * 24}"\n')
    await service.file_changed(billing)  # the path of didSave
    assert await service.search("compute invoice total") == []
    assert f"sk_live_{'9' * 24}".encode() not in stored_bytes(tmp_path)
    assert (await service.stats())["secrets_skipped"] == len(NAMED_SECRETS) + len(CONTENT_SECRETS) + 1
    # and a saved secret-named file is never read
    env = service.root / "app" / ".env.staging"
    env.write_text("zqxstagingmarker = 1\n")
    await service.file_changed(env)
    assert b"zqxstagingmarker" not in stored_bytes(tmp_path)


async def test_remember_refuses_a_key_with_one_sentence_that_does_not_repeat_it(hostile, tmp_path):
    service, _ = hostile
    token = "ghp_" + "Z" * 36
    with pytest.raises(SecretText) as refused:
        await service.remember(f"my token is {token}")
    assert str(refused.value) == "the text looks like it holds a GitHub token; secrets are never stored in memories"
    assert token not in str(refused.value) and token.encode() not in stored_bytes(tmp_path)
    # a chat turn keeps its words, never the key
    memory = await service.remember(f"use {token} here", redact=True)
    assert memory.text == "use [secret removed: a GitHub token] here"


async def test_import_refuses_a_line_that_holds_a_key(hostile, tmp_path):
    service, _ = hostile
    backup = tmp_path / "in.jsonl"
    lines = [{"namespace": "x", "tier": "long_term", "kind": "note", "text": "fine"},
             {"namespace": "x", "tier": "long_term", "kind": "note", "text": f"key {_AWS_ID}"}]
    backup.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ValueError, match=r"in\.jsonl:2: the memory's text looks like it holds an AWS access key id"):
        await service.import_jsonl(backup)
    assert _AWS_ID.encode() not in stored_bytes(tmp_path)


async def test_extra_patterns_add_and_an_explicit_logged_opt_out_lets_files_through(tmp_path, caplog):
    root = tmp_path / "ws"
    (root / "private").mkdir(parents=True)
    (root / "private" / "plan.md").write_text("zqxprivatemarker\n")
    (root / "team.vault").write_text("zqxvaultmarker\n")
    (root / ".env.example").write_text("zqxexamplemarker = 1\n")
    (root / "fixtures").mkdir()
    (root / "fixtures" / "fake_key.txt").write_text("-----BEGIN PRIVATE KEY-----\nzqxfixturemarker\n")
    index = IndexSettings(secret_patterns_extra=("*.VAULT", "private/"),
                          allow_secret_files=(".env.example", "fixtures/fake_key.txt"))
    service = MemoryService(MemorySettings(sqlite_path=tmp_path / "m.sqlite3", journal_dir=tmp_path / "j"),
                            index, root=root)
    try:
        with caplog.at_level(logging.WARNING, logger="gemma_lsp.memory.indexer"):
            state = await service.index_workspace()
        assert state.secrets_skipped == 2 and state.files_total == 2  # plan.md and team.vault never opened
        data = stored_bytes(tmp_path)
        assert b"zqxprivatemarker" not in data and b"zqxvaultmarker" not in data
        assert b"zqxexamplemarker" in data and b"zqxfixturemarker" in data
        assert any("index.allow_secret_files" in r.getMessage() and ".env.example" in r.getMessage()
                   for r in caplog.records)
    finally:
        await service.close()


def test_the_built_in_list_cannot_be_shrunk_by_extra_patterns():
    rules = SecretRules(extra=("!.env", "!*.pem"))
    assert rules.named_secret(".env") and rules.named_secret("a/SERVER.PEM")
    assert not SecretRules().named_secret("src/environment.py") and not SecretRules().named_secret("keyring_utils.py")


def test_redaction_removes_a_whole_key_block():
    text = "before\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----\nafter"
    assert redact_secrets(text) == "before\n[secret removed: a private key]\nafter"


def test_gemma_lsp_index_stores_no_secret(tmp_path):
    root = tmp_path / "ws"
    markers = build_hostile_workspace(root)
    config = tmp_path / "config.toml"
    config.write_text(f'[memory]\nsqlite_path = "{tmp_path / "m.sqlite3"}"\njournal_dir = "{tmp_path / "j"}"\n')
    proc = subprocess.run([sys.executable, "-m", "gemma_lsp", "index", str(root), "--config", str(config)],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert f"{len(markers)} secret files left out" in proc.stdout
    data = stored_bytes(tmp_path)
    assert b"compute_invoice_total" in data
    assert [rel for rel, m in markers.items() if m.encode() in data] == []
