"""Watch the indexed folders and re-index a file within moments of it changing (watchdog).

Editors save in bursts (write, rename, touch), so changed paths are collected
and indexed once nothing has changed for QUIET seconds, in one worker thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

from loguru import logger
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

QUIET = 0.3  # seconds without a new change before the collected files are indexed


class Watcher(FileSystemEventHandler):
    """Feeds changed source files to `index.update`."""

    def __init__(self, index):
        self.index = index
        self.pending: set[Path] = set()
        self.changed = threading.Condition()
        self.stopping = False
        self.observer = Observer()
        self.worker = threading.Thread(target=self.run, name="knowledge-watcher", daemon=True)

    def folders(self) -> list[Path]:
        """The existing top folders of the sources (a folder inside another is watched once)."""
        bases = sorted({(s.root / s.pattern.split("*", 1)[0].rpartition("/")[0]).resolve() for s in self.index.sources})
        bases = [b for b in bases if b.is_dir()]
        return [b for b in bases if not any(b != other and other in b.parents for other in bases)]

    def start(self) -> "Watcher":
        for folder in self.folders():
            self.observer.schedule(self, str(folder), recursive=True)
        self.observer.start()
        self.worker.start()
        logger.info(f"knowledge: watching {', '.join(str(f) for f in self.folders()) or 'nothing'}")
        return self

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        paths = [Path(p) for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        wanted = [p for p in paths if self.index.locate(p)]
        if wanted:
            with self.changed:
                self.pending.update(wanted)
                self.changed.notify()

    def run(self) -> None:
        while True:
            with self.changed:
                while not self.pending and not self.stopping:
                    self.changed.wait()
                while not self.stopping and self.changed.wait(QUIET):  # wait for the burst to end
                    pass
                if self.stopping:
                    return
                files, self.pending = sorted(self.pending), set()
            try:
                self.index.update(files)
            except Exception:
                logger.exception("knowledge: re-indexing changed files failed")

    def stop(self) -> None:
        with self.changed:
            self.stopping = True
            self.changed.notify()
        if self.observer.is_alive():
            self.observer.stop()
            self.observer.join(5)
        if self.worker.is_alive():
            self.worker.join(30)
