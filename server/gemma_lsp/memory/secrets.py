"""Secrets never reach the store: files named like credentials and text that holds a key or token.

Two checks, applied on every way into the store (the workspace indexer, a saved file, ``gemma-lsp
index``, ``remember``, ``import``, chat turns and accepted completions):

- **By name** (:class:`SecretRules`), before a file is opened: file-name patterns (``.env*``,
  ``*.pem``, ``id_rsa*`` ...), directories whose whole content is secret (``.ssh/``, ``.aws/``,
  ``.gnupg/``, ``gcloud/`` ...) and path patterns (``.docker/config.json``, ``.kube/config``).
  Matching ignores case (``SERVER.PEM`` is ``server.pem``). ``index.secret_patterns_extra`` adds
  patterns; nothing removes a built-in one. ``index.allow_secret_files`` lets files matching its
  patterns through both checks: an explicit opt-out, logged at each index run.
- **By content** (:func:`find_secret`): a PEM / PGP private key block, or a token with a known
  shape (AWS, GitHub, GitLab, Slack, OpenAI-style ``sk-``, Google ``AIza``, Stripe, npm, PyPI,
  Hugging Face, SendGrid, JWTs, ``aws_secret_access_key =`` lines). A file that holds one is
  skipped whole; ``remember`` refuses the text with one sentence naming the kind of secret (never
  the secret itself).

Pattern syntax (built-in and configured alike): a pattern ending in ``/`` names a directory at any
depth (everything below it is secret); a pattern with a ``/`` inside matches the last segments of
the path (``.kube/config``); any other pattern matches a file's name. ``*``, ``?`` and ``[...]`` are
shell wildcards.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# Mirrors the file rules of gitleaks and detect-secrets, and the credential files of the common CLIs.
SECRET_FILE_NAMES: tuple[str, ...] = (
    # dotenv and shell environments
    ".env*", "*.env", ".flaskenv",
    # package-manager and tool credentials
    ".netrc", "_netrc", ".npmrc", ".yarnrc", ".yarnrc.yml", ".pypirc", ".gem-credentials", ".git-credentials",
    ".pgpass", ".my.cnf", ".s3cfg", ".boto", ".dockercfg", ".htpasswd", ".vault-token", ".terraformrc",
    "terraform.rc", "credentials", "credentials.*", "*credentials*.json", "credentials.xml", "secrets.*",
    "*.secret", "*.secrets", "service-account*.json", "client_secret*.json", "*.tfvars",
    # keys, certificates with keys, keystores
    "*.pem", "*.key", "*.p12", "*.pfx", "*.p8", "*.keystore", "*.jks", "*.asc", "*.gpg", "*.pgp", "*.ppk",
    "*.ovpn", "*.mobileprovision", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*_rsa", "*_dsa",
    "*_ecdsa", "*_ed25519", "*.kdbx", "*.kdb", "*.keychain", "*.keychain-db",
    # infrastructure state (holds every secret it manages in clear)
    "*.tfstate", "*.tfstate.*", "*.tfstate.backup",
    # shell histories (commands typed with tokens in them)
    ".bash_history", ".zsh_history", ".histfile", ".python_history", ".psql_history", ".mysql_history",
    ".node_repl_history", ".rediscli_history",
)
SECRET_DIRS: tuple[str, ...] = (
    ".ssh/", ".gnupg/", ".aws/", "gcloud/", ".azure/", ".password-store/", ".secrets/", ".terraform/",
    ".vagrant/",
)
SECRET_PATHS: tuple[str, ...] = (
    ".docker/config.json", ".kube/config", ".kube/*.yaml", ".kube/*.yml", ".config/gh/hosts.yml",
    ".config/hub", ".cargo/credentials", ".cargo/credentials.toml", ".gradle/gradle.properties",
    ".m2/settings.xml", ".m2/settings-security.xml", ".nuget/nuget.config", ".composer/auth.json",
    ".config/rclone/rclone.conf", ".config/pip/pip.conf", ".pip/pip.conf",
)
BUILT_IN_PATTERNS: tuple[str, ...] = (*SECRET_FILE_NAMES, *SECRET_DIRS, *SECRET_PATHS)

# (kind named in messages, regex). Scanned over the whole text: files are capped at
# index.max_file_bytes, and a token past the first KB is still a token.
_CONTENT_RULES: tuple[tuple[str, str], ...] = (
    ("a private key", r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----"),
    ("an AWS access key id", r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    ("an AWS secret key", r"(?i:\baws_?secret_?(?:access_?)?key\b['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"),
    ("a GitHub token", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"),
    ("a GitLab token", r"\bgl(?:pat|dt|rt|ptt|ft|soat)-[A-Za-z0-9_-]{20,}"),
    ("a Slack token", r"\bxox[baprse]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]{8,}"),
    ("an API key (sk-)", r"\bsk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{32,}"),
    ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("a Stripe key", r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"),
    ("an npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("a PyPI token", r"\bpypi-AgE[A-Za-z0-9_-]{50,}"),
    ("a Hugging Face token", r"\bhf_[A-Za-z0-9]{34,}\b"),
    ("a SendGrid key", r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b"),
    ("a JSON web token", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    ("an Azure storage key", r"(?i:AccountKey)=[A-Za-z0-9+/]{80,}={0,2}"),
)
_CONTENT = re.compile("|".join(f"(?P<r{i}>{rx})" for i, (_, rx) in enumerate(_CONTENT_RULES)))


def find_secret(text: str) -> str | None:
    """What kind of secret ``text`` holds ("a private key", "a GitHub token", ...), or None."""
    match = _CONTENT.search(text)
    if match is None:
        return None
    return _CONTENT_RULES[int(match.lastgroup[1:])][0]


_PEM_BLOCK = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z0-9 ]{0,60}-----|\Z)", re.S)


def redact_secrets(text: str) -> str:
    """``text`` with every secret replaced by ``[secret removed: <kind>]`` (a whole key block at once)."""
    text = _PEM_BLOCK.sub("[secret removed: a private key]", text)
    return _CONTENT.sub(lambda m: f"[secret removed: {_CONTENT_RULES[int(m.lastgroup[1:])][0]}]", text)


class SecretText(ValueError):
    """Text refused because it holds a secret; the message names its kind, never the secret."""

    def __init__(self, kind: str, what: str = "the text") -> None:
        self.kind = kind
        super().__init__(f"{what} looks like it holds {kind}; secrets are never stored in memories")


def refuse_secret(text: str, what: str = "the text") -> None:
    """Raise :class:`SecretText` when ``text`` holds a secret."""
    kind = find_secret(text)
    if kind is not None:
        raise SecretText(kind, what)


def _compile(patterns: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[int, str], ...]]:
    names, dirs, paths = [], [], []
    for raw in patterns:
        p = raw.strip().lower().lstrip("/")
        if p.startswith("**/"):
            p = p[3:]
        if not p:
            continue
        if p.endswith("/"):
            dirs.append(p.rstrip("/"))
        elif "/" in p:
            paths.append((p.count("/") + 1, p))
        else:
            names.append(p)
    return tuple(names), tuple(dirs), tuple(paths)


def _matches(parts: tuple[str, ...], names, dirs, paths) -> bool:
    if not parts:
        return False
    name = parts[-1]
    if any(fnmatch.fnmatchcase(name, p) for p in names):
        return True
    if any(fnmatch.fnmatchcase(d, p) for d in parts[:-1] for p in dirs):
        return True
    return any(len(parts) >= n and fnmatch.fnmatchcase("/".join(parts[-n:]), p) for n, p in paths)


@dataclass(frozen=True)
class SecretRules:
    """The name rules: the built-in list plus ``extra``; ``allow`` is the explicit opt-out."""

    extra: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    _deny: tuple = field(init=False, repr=False, compare=False)
    _allow: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_deny", _compile((*BUILT_IN_PATTERNS, *self.extra)))
        object.__setattr__(self, "_allow", _compile(self.allow))

    @staticmethod
    def _parts(rel_path: str | PurePosixPath) -> tuple[str, ...]:
        return tuple(p for p in str(rel_path).replace("\\", "/").lower().split("/") if p not in ("", "."))

    def allowed_by_opt_out(self, rel_path: str | PurePosixPath) -> bool:
        """Whether ``index.allow_secret_files`` lets this path through."""
        return bool(self.allow) and _matches(self._parts(rel_path), *self._allow)

    def named_secret(self, rel_path: str | PurePosixPath) -> bool:
        """Whether the path (relative to the workspace, ``/``-separated) names a secret file."""
        parts = self._parts(rel_path)
        return _matches(parts, *self._deny) and not self.allowed_by_opt_out(rel_path)

    def secret_content(self, rel_path: str | PurePosixPath, text: str) -> str | None:
        """The kind of secret ``text`` (the file's content) holds, unless the path is opted out."""
        if self.allowed_by_opt_out(rel_path):
            return None
        return find_secret(text)
