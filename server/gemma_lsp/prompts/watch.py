"""Template folders watched for changes, so a broken template is reported the moment it is saved.

A :class:`TemplateWatcher` runs one watchdog observer over the template folders (not their
subfolders) and calls ``on_change`` with the ``*.jinja`` files that were written, created,
moved or deleted, once the folder has been quiet for ``debounce`` seconds (an editor's save is
often several events: truncate, write, rename). The callback runs on the watcher's timer
thread. The observer's threads are daemons and :meth:`stop` joins them briefly, so a watcher
never keeps the process alive or slows its exit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .library import SUFFIX

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.15


class TemplateWatcher(FileSystemEventHandler):
    def __init__(
        self, folders: Iterable[Path], on_change: Callable[[set[Path]], None], *, debounce: float = DEBOUNCE_SECONDS
    ) -> None:
        self.folders = [Path(f) for f in folders]
        self._on_change = on_change
        self._debounce = debounce
        self._pending: set[Path] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def start(self) -> list[Path]:
        """Watch every folder that exists; returns those watched."""
        observer = Observer()
        observer.daemon = True
        watched = []
        for folder in dict.fromkeys(self.folders):
            if folder.is_dir():
                try:
                    observer.schedule(self, str(folder), recursive=False)
                    watched.append(folder)
                except OSError as exc:  # e.g. out of inotify watches: templates still reload on use
                    log.warning("cannot watch the prompt folder %s: %s", folder, exc)
        if watched:
            observer.start()
            self._observer = observer
        return watched

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=1.0)

    # ------------------------------------------------------------------ events (observer thread)
    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        changed = {Path(p if isinstance(p, str) else p.decode()) for p in paths if p}
        changed = {p for p in changed if p.name.endswith(SUFFIX)}
        if not changed:
            return
        with self._lock:
            if self._observer is None:
                return
            self._pending |= changed
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._debounce, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            paths, self._pending, self._timer = self._pending, set(), None
        if paths:
            try:
                self._on_change(paths)
            except Exception:  # noqa: BLE001 - a watcher never dies of its callback
                log.exception("the prompt watcher's callback failed")
