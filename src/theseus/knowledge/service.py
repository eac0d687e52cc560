"""Knowledge: what Chip can look up (the docs, Theseus's own source, the user's plugins, the action log) and how.

One `Knowledge` hangs off the runtime. It builds nothing by itself: the
server starts it (a background refresh, then the file watcher) when
`config.knowledge` is on, and `theseus index` refreshes it by hand. The
embedder is made on first use, so a process that never searches never loads it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from pathlib import Path

from loguru import logger

from ..config import Config
from ..db import Database
from ..package_docs import docs_folder
from .embedders import Embedder, embedder_spec, make_embedder
from .index import Index, Progress, Report, Source
from .search import Results, search
from .watcher import Watcher

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PATHS_LIMIT = 100  # paths looked up at once by indexed()
START_DELAY = 3.0  # seconds after start before background indexing begins


def lower_priority() -> None:
    """Make the calling thread (and the embedder threads it starts) yield the CPU to requests (Linux)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def default_sources(config: Config) -> list[Source]:
    """The package's docs and source, and the user's plugins in the data dir with the notes beside them."""
    root = PACKAGE_DIR.parents[1] if PACKAGE_DIR.parent.name == "src" else PACKAGE_DIR.parent  # a checkout cites src/
    package = PACKAGE_DIR.relative_to(root).as_posix()
    docs = docs_folder().resolve().relative_to(root).as_posix()
    user = [Source(config.data_dir, pattern, kind) for pattern, kind in
            (("apps/*.py", "code"), ("workflows/*.py", "code"), ("apps/*.md", "doc"), ("workflows/*.md", "doc"))]
    return [Source(root, f"{docs}/*.md", "doc"), Source(root, f"{package}/*.py", "code"), *user]


class Knowledge:
    """The knowledge index of one Theseus: search it, refresh it, keep it fresh in the background."""

    def __init__(self, db: Database, config: Config, sources: list[Source] | None = None,
                 embedder: Embedder | None = None):
        self.db, self.config = db, config
        self.sources = default_sources(config) if sources is None else sources
        self._embedder, self._lock = embedder, threading.Lock()
        self.index = Index(db, self.embedder, self.sources)
        self.watcher: Watcher | None = None
        self.thread: threading.Thread | None = None

    def embedder(self) -> Embedder:
        """The embedder (made on first use)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(embedder_spec(self.config))
            return self._embedder

    def search(self, query: str, *, kinds=("doc", "code"), since: str | None = None, until: str | None = None,
               limit: int = 5) -> Results:
        """Hybrid search; events logged since the last look are indexed first."""
        if "event" in kinds and self.index.lock.acquire(blocking=False):  # a running refresh does it anyway
            try:
                self.index.sync_events()
            except Exception:
                logger.exception("knowledge: indexing new events failed")
            finally:
                self.index.lock.release()
        return search(self.db, self.embedder, query, kinds=kinds, since=since, until=until, limit=limit)

    def refresh(self, progress: Progress | None = None) -> Report:
        """Bring the index up to date now."""
        return self.index.refresh(progress)

    def start(self, watch: bool = True) -> None:
        """Refresh in a background thread, then watch the sources for changes."""
        if self.thread is not None:
            return

        def run():
            lower_priority()
            if self.index.stopping.wait(START_DELAY):  # a server stopped at once never starts indexing
                return
            try:
                self.index.refresh()
                if watch and not self.index.stopping.is_set():
                    self.watcher = Watcher(self.index).start()
            except Exception:
                logger.exception("knowledge: indexing failed")
                self.index.state = "failed (see server.log)"
        self.thread = threading.Thread(target=run, name="knowledge-index", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop watching and indexing (before the database closes)."""
        self.index.stopping.set()
        if self.thread is not None:
            self.thread.join(60)
        if self.watcher is not None:
            self.watcher.stop()
        if self._embedder is not None:
            self._embedder.close()

    def indexed(self, paths: Collection[str]) -> set[str]:
        """Which of these paths are files of the index (one query, at most PATHS_LIMIT paths)."""
        paths = list(paths)[:PATHS_LIMIT]
        if not paths:
            return set()
        marks = ", ".join("?" * len(paths))
        return {r["path"] for r in self.db.query(f"SELECT path FROM knowledge_files WHERE path IN ({marks})", paths)}

    def status(self) -> dict:
        """Counts by kind, files, the embedder and what indexing is doing."""
        counts = {r["kind"]: r["n"] for r in self.db.query("SELECT kind, COUNT(*) AS n FROM chunks GROUP BY kind")}
        return {"state": self.index.state, "files": self.db.value("SELECT COUNT(*) FROM knowledge_files"),
                "chunks": counts, "embedder": (self.db.store.get("knowledge_embedder") or {}).get("name", "")}
