"""File URIs both ways, as editors send them (RFC 8089, VS Code's spelling included).

``file:///home/me/x.py`` is ``/home/me/x.py``; ``file:///c%3A/src/x.py`` and ``file:///C:/src/x.py``
are ``c:/src/x.py`` (the drive letter lower-cased, as VS Code does, so both spellings name one
file); ``file://server/share/x.py`` is the UNC path ``//server/share/x.py``. Percent escapes are
decoded once. Every module that turns a document URI into a path goes through here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from urllib.parse import quote, unquote, urlsplit

_DRIVE = re.compile(r"^/([A-Za-z]):(/|$)")


def is_file_uri(uri: str) -> bool:
    return uri[:5].lower() == "file:"


def uri_to_path_str(uri: str) -> str | None:
    """The path of a ``file:`` URI as a string with forward slashes, or None for another scheme."""
    if not is_file_uri(uri):
        return None
    parts = urlsplit(uri)
    path = unquote(parts.path)
    drive = _DRIVE.match(path)
    if drive:
        return f"{drive.group(1).lower()}:{path[drive.end(1) + 1:] or '/'}"
    if parts.netloc and parts.netloc.lower() != "localhost":
        return f"//{parts.netloc}{path}"
    return path or "/"


def uri_to_path(uri: str) -> Path | None:
    """The local path of a ``file:`` URI, or None for another scheme (``untitled:``, ``git:`` ...)."""
    raw = uri_to_path_str(uri)
    return Path(raw) if raw is not None else None


def path_to_uri(path: str | os.PathLike[str] | PurePath) -> str:
    """The ``file:`` URI of an absolute path (a relative one is made absolute first).

    Windows paths (``C:\\src\\x.py``) become ``file:///c%3A/src/x.py``, the spelling VS Code sends.
    """
    if isinstance(path, PureWindowsPath) or (isinstance(path, str) and re.match(r"^[A-Za-z]:[\\/]", path)):
        win = PureWindowsPath(path)
        drive = win.drive
        rest = "/".join(win.parts[1:])
        if drive.startswith("\\\\"):  # UNC: \\server\share
            server, _, share = drive[2:].partition("\\")
            return f"file://{server}/{quote(share)}/{quote(rest)}".rstrip("/")
        return f"file:///{drive[0].lower()}%3A/{quote(rest)}"
    return "file://" + quote(Path(path).absolute().as_posix())


def relative_display_path(uri: str, root: str | os.PathLike[str] | None) -> str | None:
    """The document's path relative to ``root`` when inside it, else its file name; None if not a file."""
    raw = uri_to_path_str(uri)
    if raw is None:
        return None
    path = PurePosixPath(raw)
    if root is not None:
        base = uri_to_path_str(os.fspath(root)) if is_file_uri(os.fspath(root)) else Path(root).as_posix()
        try:
            return path.relative_to(PurePosixPath(base)).as_posix()
        except ValueError:
            pass
    return path.name
