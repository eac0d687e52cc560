"""Incremental indexing of files and the action log into chunks, full-text and vector rows.

A file is read, hashed and skipped when its hash is unchanged. A changed
file is chunked; chunks whose text is unchanged keep their vector, only new
text is embedded. Embedding happens outside the database lock; the file's old
rows are then replaced by the new ones in one transaction, so a file is
either indexed the old way or the new way, never half. A file that is binary,
too large, not UTF-8 or vanishes while being read is skipped with a logged
reason (and its old chunks removed).
"""

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from loguru import logger

from ..db import Database, utc_now
from .chunking import Chunk, chunk_file, content_hash, event_chunk
from .embedders import Embedder

MAX_FILE_BYTES = 1_000_000
EMBED_CHARS = 700  # the start of a chunk that is embedded (the full text is in the full-text index)
EVENT_BATCH = 200
PAUSE_POLL = 0.1  # seconds between two looks at whether the model's turn is over
EMBED_BATCH = 2  # chunks embedded per call: batching gains nothing here, and a stop waits for one call
SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules", ".pytest_cache"}
Progress = Callable[[int, int, str], None]  # (done, total, path)


@dataclass(frozen=True)
class Source:
    """Files under `root` whose relative path matches `pattern` (fnmatch: `docs/*.md` takes every folder)."""

    root: Path
    pattern: str
    kind: str  # doc | code

    def matches(self, relative: str) -> bool:
        return fnmatch.fnmatch(relative, self.pattern)

    def files(self) -> list[Path]:
        base = self.root / self.pattern.split("*", 1)[0].rpartition("/")[0]
        if not base.is_dir():
            return []
        found = []
        for folder, dirs, names in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            found += [Path(folder) / n for n in sorted(names)
                      if self.matches((Path(folder) / n).relative_to(self.root).as_posix())]
        return found


class Interrupted(Exception):
    """Indexing stopped at shutdown, between two batches (the file being indexed keeps its old rows)."""


class Skipped(Exception):
    """A file that cannot be indexed; str() is the reason."""


@dataclass
class Report:
    """What one indexing run did."""

    indexed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0  # chunks whose text was new, so embedded
    reused: int = 0  # chunks of a changed file whose vector was kept
    events: int = 0

    def summary(self) -> str:
        return (f"{len(self.indexed)} file(s) indexed ({self.embedded} chunks embedded, {self.reused} reused), "
                f"{self.unchanged} unchanged, {len(self.removed)} removed, {len(self.skipped)} skipped, "
                f"{self.events} event(s)")


def read_text(file: Path) -> tuple[str, str, float]:
    """(text, hash, mtime) of a file, or Skipped saying why it cannot be indexed."""
    try:
        size, mtime = file.stat().st_size, file.stat().st_mtime
        if size > MAX_FILE_BYTES:
            raise Skipped(f"too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})")
        data = file.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise Skipped("vanished while being indexed") from None
    except OSError as error:
        raise Skipped(f"unreadable ({error.strerror or error})") from None
    if b"\0" in data[:8192]:
        raise Skipped("binary, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Skipped(f"not UTF-8 text (byte {error.start})") from None
    return text, content_hash(data), mtime


def embed_text(chunk: Chunk) -> str:
    return f"{chunk.path} · {chunk.title}\n{chunk.text[:EMBED_CHARS]}"


def fts_title(chunk: Chunk) -> str:
    return f"{chunk.path} {chunk.title}"


def iso(mtime: float) -> str:
    return datetime.fromtimestamp(mtime, timezone.utc).isoformat(timespec="seconds")


class Index:
    """Keeps the chunks of the sources and of the action log up to date in the database."""

    def __init__(self, db: Database, embedder: Callable[[], Embedder], sources: list[Source]):
        self.db, self.embedder, self.sources = db, embedder, sources
        self.lock = threading.Lock()  # one indexing run at a time
        self.stopping = threading.Event()  # set at shutdown: stop between two files
        self.busy: Callable[[], bool] = lambda: False  # whether the model is working on a turn (set by the runtime)
        self.state = "idle"

    def scan(self) -> dict[str, tuple[Source, Path]]:
        """Every file of the sources, by its path relative to its root."""
        return {file.relative_to(source.root).as_posix(): (source, file)
                for source in self.sources for file in source.files()}

    def refresh(self, progress: Progress | None = None) -> Report:
        """Bring the index up to date with every source file and the action log."""
        with self.lock:
            self.check_embedder()
            report, files = Report(), self.scan()
            for path in set(self.known()) - set(files):
                self.remove(path, report)
            for done, (path, (source, file)) in enumerate(sorted(files.items())):
                if self.stopping.is_set():
                    return report
                self.state = f"indexing {done + 1}/{len(files)}"
                if progress:
                    progress(done, len(files), path)
                try:
                    self.index_file(source, file, path, report)
                except Interrupted:
                    return report
            if progress:
                progress(len(files), len(files), "action log")
            report.events = self.sync_events()
            self.state = "ready"
            logger.info(f"knowledge: {report.summary()}")
            return report

    def update(self, files: list[Path]) -> Report:
        """Re-index (or remove) these files, e.g. after the watcher saw them change."""
        with self.lock:
            self.check_embedder()
            report = Report()
            for file in files:
                found = None if self.stopping.is_set() else self.locate(file)
                if found is None:
                    continue
                source, path = found
                if file.exists():
                    try:
                        self.index_file(source, file, path, report)
                    except Interrupted:
                        return report
                else:
                    self.remove(path, report)
            if report.indexed or report.removed:
                logger.info(f"knowledge: {report.summary()}")
            return report

    def locate(self, file: Path) -> tuple[Source, str] | None:
        """The source a file belongs to and its relative path, or None."""
        for source in self.sources:
            try:
                path = file.resolve().relative_to(source.root.resolve()).as_posix()
            except ValueError:
                continue
            if source.matches(path) and not SKIP_DIRS & set(path.split("/")):
                return source, path
        return None

    def known(self) -> dict[str, dict]:
        return {row["path"]: row for row in self.db.query("SELECT * FROM knowledge_files")}

    def index_file(self, source: Source, file: Path, path: str, report: Report) -> None:
        """Index one file unless its hash is unchanged; skip (and forget) what cannot be read."""
        try:
            text, digest, mtime = read_text(file)
        except Skipped as reason:
            logger.warning(f"knowledge: skipped {path}: {reason}")
            report.skipped.append((path, str(reason)))
            self.remove(path, report, log=False)
            return
        row = self.db.query("SELECT hash FROM knowledge_files WHERE path = ?", (path,))
        if row and row[0]["hash"] == digest:
            report.unchanged += 1
            return
        chunks = chunk_file(path, source.kind, text, iso(mtime))
        vectors = self.vectors(chunks, self.old_vectors(path), report, yielding=True)
        with self.db.transaction():
            self.delete_chunks("path = ?", (path,))
            self.insert(chunks, vectors)
            self.db.conn.execute(
                "INSERT OR REPLACE INTO knowledge_files (path, root, kind, hash, mtime, size, chunks, indexed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (path, str(source.root), source.kind, digest, mtime, len(text), len(chunks), utc_now()))
        report.indexed.append(path)

    def old_vectors(self, path: str) -> dict[str, bytes]:
        rows = self.db.query("SELECT c.hash, v.embedding FROM chunks c JOIN chunk_vectors v ON v.rowid = c.id "
                             "WHERE c.path = ?", (path,))
        return {row["hash"]: row["embedding"] for row in rows}

    def vectors(self, chunks: list[Chunk], old: dict[str, bytes], report: Report, *,
                yielding: bool = False) -> list[bytes]:
        """A vector per chunk: the old one when its text is unchanged, else freshly embedded.

        `yielding` (file indexing, which runs in the background): wait while the model works on a turn."""
        new = [c for c in chunks if c.hash not in old]
        for start in range(0, len(new), EMBED_BATCH):  # small batches, so a shutdown never waits long
            if yielding:
                self.yield_to_model()
            if self.stopping.is_set():
                raise Interrupted()
            batch = new[start:start + EMBED_BATCH]
            fresh = self.embedder().passages([embed_text(c) for c in batch])
            old = old | {c.hash: np.asarray(v, dtype=np.float32).tobytes() for c, v in zip(batch, fresh)}
        report.embedded += len(new)
        report.reused += len(chunks) - len(new)
        return [old[c.hash] for c in chunks]

    def yield_to_model(self) -> None:
        """Wait while the model works on a turn: on two cores, embedding beside it would halve its speed."""
        if not self.busy():
            return
        state, self.state = self.state, "paused while Chip answers"
        while self.busy() and not self.stopping.wait(PAUSE_POLL):
            pass
        self.state = state

    def insert(self, chunks: list[Chunk], vectors: list[bytes]) -> None:
        """Insert chunks with their full-text and vector rows (inside a transaction)."""
        conn = self.db.conn
        for chunk, vector in zip(chunks, vectors):
            chunk_id = conn.execute(
                "INSERT INTO chunks (path, kind, line_start, line_end, title, text, hash, time, event_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (chunk.path, chunk.kind, chunk.line_start, chunk.line_end, chunk.title, chunk.text, chunk.hash,
                 chunk.time, chunk.event_id)).fetchone()[0]
            conn.execute("INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)",
                         (chunk_id, fts_title(chunk), chunk.text))
            conn.execute("INSERT INTO chunk_vectors (rowid, embedding, kind, time) VALUES (?, ?, ?, ?)",
                         (chunk_id, vector, chunk.kind, chunk.time))

    def delete_chunks(self, where: str, params: tuple = ()) -> int:
        """Delete chunks (and their full-text and vector rows) matching a condition (inside a transaction)."""
        ids = [r[0] for r in self.db.conn.execute(f"SELECT id FROM chunks WHERE {where}", params)]
        for chunk_id in ids:
            self.db.conn.execute("DELETE FROM chunks_fts WHERE rowid = ?", (chunk_id,))
            self.db.conn.execute("DELETE FROM chunk_vectors WHERE rowid = ?", (chunk_id,))
        self.db.conn.execute(f"DELETE FROM chunks WHERE {where}", params)
        return len(ids)

    def remove(self, path: str, report: Report, log: bool = True) -> None:
        """Forget a file (it vanished or can no longer be read)."""
        with self.db.transaction():
            known = self.db.conn.execute("DELETE FROM knowledge_files WHERE path = ? RETURNING path",
                                         (path,)).fetchone()
            self.delete_chunks("path = ?", (path,))
        if known:
            report.removed.append(path)
            if log:
                logger.info(f"knowledge: removed {path} (gone)")

    def sync_events(self) -> int:
        """Index the action-log events not indexed yet (Theseus's own bootstrapping is left out)."""
        count = 0
        while True:
            upto = self.db.value("SELECT COALESCE(MAX(event_id), 0) FROM chunks WHERE kind = 'event'")
            events = self.db.query("SELECT * FROM events WHERE id > ? AND actor != 'system' ORDER BY id LIMIT ?",
                                   (upto, EVENT_BATCH))
            if not events:
                return count
            chunks = [event_chunk(e) for e in events]
            vectors = self.vectors(chunks, {}, Report())
            with self.db.transaction():
                self.delete_chunks("event_id IN (SELECT value FROM json_each(?))", (str([e["id"] for e in events]),))
                self.insert(chunks, vectors)
            count += len(chunks)

    def check_embedder(self) -> None:
        """Start over when the index was built by another embedder (the vectors would not compare)."""
        embedder = self.embedder()
        built_by = self.db.store.get("knowledge_embedder")
        if built_by == {"name": embedder.name, "dim": embedder.dim}:
            return
        with self.db.transaction():
            self.delete_chunks("1")
            self.db.conn.execute("DELETE FROM knowledge_files")
            if (built_by or {}).get("dim", 384) != embedder.dim:
                self.db.conn.execute("DROP TABLE chunk_vectors")
                self.db.conn.execute(f"CREATE VIRTUAL TABLE chunk_vectors USING vec0(embedding float"
                                     f"[{int(embedder.dim)}] distance_metric=cosine, kind text, time text)")
            self.db.store["knowledge_embedder"] = {"name": embedder.name, "dim": embedder.dim}
        if built_by:
            logger.info(f"knowledge: the index was built by {built_by['name']}; rebuilding with {embedder.name}")

    def clear(self) -> None:
        """Forget everything (the next refresh embeds every file again)."""
        with self.lock, self.db.transaction():
            self.delete_chunks("1")
            self.db.conn.execute("DELETE FROM knowledge_files")
