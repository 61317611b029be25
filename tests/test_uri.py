"""File URIs both ways: POSIX paths, Windows drive letters in both spellings, UNC, escapes."""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

import pytest

from gemma_lsp.uri import path_to_uri, relative_display_path, uri_to_path, uri_to_path_str


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:///home/me/x.py", "/home/me/x.py"),
        ("file:///home/me/a%20b/%C3%A9t%C3%A9.py", "/home/me/a b/été.py"),
        ("file:///c%3A/src/x.py", "c:/src/x.py"),  # VS Code's spelling
        ("file:///C:/src/x.py", "c:/src/x.py"),  # the same file, spelled by other clients
        ("file:///d:", "d:/"),
        ("file://server/share/x.py", "//server/share/x.py"),  # UNC
        ("file://localhost/etc/hosts", "/etc/hosts"),
        ("file:///tmp/100%25.py", "/tmp/100%.py"),  # escapes are decoded once, never twice
    ],
)
def test_file_uris_become_paths(uri, path):
    assert uri_to_path_str(uri) == path


@pytest.mark.parametrize("uri", ["untitled:Untitled-1", "git:/x.py?ref", "vscode-notebook-cell:/a.ipynb#W0"])
def test_other_schemes_have_no_path(uri):
    assert uri_to_path(uri) is None and uri_to_path_str(uri) is None


def test_posix_paths_round_trip(tmp_path):
    path = tmp_path / "dir with space" / "naïve #1.py"
    uri = path_to_uri(path)
    assert uri.startswith("file:///") and " " not in uri and "#" not in uri
    assert uri == path.as_uri()  # the spelling pathlib and editors use
    assert uri_to_path(uri) == path


def test_windows_paths_become_the_uri_vs_code_sends():
    assert path_to_uri(PureWindowsPath("C:\\src\\my file.py")) == "file:///c%3A/src/my%20file.py"
    assert path_to_uri("D:\\x.py") == "file:///d%3A/x.py"
    assert uri_to_path_str(path_to_uri("C:\\src\\x.py")) == "c:/src/x.py"


def test_a_relative_path_is_made_absolute():
    assert uri_to_path(path_to_uri("x.py")) == Path.cwd() / "x.py"


@pytest.mark.parametrize(
    ("uri", "root", "shown"),
    [
        ("file:///ws/pkg/a.py", Path("/ws"), "pkg/a.py"),
        ("file:///ws/pkg/a.py", "file:///ws", "pkg/a.py"),
        ("file:///elsewhere/a.py", Path("/ws"), "a.py"),
        ("file:///ws/pkg/a.py", None, "a.py"),
        ("file:///c%3A/ws/pkg/a.py", "file:///C:/ws", "pkg/a.py"),
        ("untitled:Untitled-1", Path("/ws"), None),
    ],
)
def test_the_path_shown_to_the_model_is_relative_to_the_workspace(uri, root, shown):
    assert relative_display_path(uri, root) == shown
