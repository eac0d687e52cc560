"""Hybrid search: BM25 over the full-text index and nearest vectors, fused by rank, in one SQL query.

Both halves apply the same filters (source kind, time) as plain SQL: the
vector half through sqlite-vec's metadata columns, so the k nearest are the k
nearest *among the rows that pass*, not a post-filtered remainder. Reciprocal
rank fusion (1 / (60 + rank), summed) needs no score calibration between the
two halves. Without a query vector (the embedder failed) it is full-text only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from loguru import logger

from ..db import Database

KINDS = ("doc", "code", "event")
QUERY_LIMIT = 1000  # characters of a query that are searched; the rest is cut off (and said so)
CANDIDATES = 40  # how many each half contributes before fusion
RRF_K = 60
TITLE_WEIGHT = 3.0  # BM25 weight of the path and title against the text
STOPWORDS = set("""a an and are as at be by can could did do does for from had has have how i in is it its me my
of on or so that the their then there this to was we what when where which who why will with would you your
about into than them these those they our us am been being chip theseus please tell show explain""".split())


@dataclass
class Hit:
    """One found chunk, with how it ranked in each half and its fused score."""

    id: int
    path: str
    kind: str
    line_start: int
    line_end: int
    title: str
    text: str
    time: str
    event_id: int | None
    score: float
    fts_rank: int | None = None
    vec_rank: int | None = None
    distance: float | None = None

    @property
    def cite(self) -> str:
        """How it is cited: path:line (an event by its number in the action log)."""
        return f"event #{self.event_id}" if self.kind == "event" else f"{self.path}:{self.line_start}"


@dataclass
class Results:
    """The hits of one search and anything worth saying about it (a cut query, a failed embedder)."""

    query: str
    hits: list[Hit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fts_query(text: str) -> str:
    """An FTS5 query matching any of the text's meaningful words (each quoted, so no syntax gets through)."""
    words = dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS and len(w) > 1)
    return " OR ".join(f'"{w}"' for w in list(words)[:64])


def filters(kinds, since: str | None, until: str | None, column: str = "") -> tuple[str, dict]:
    """SQL conditions (and their parameters) for kind and time."""
    names = {f"kind{i}": kind for i, kind in enumerate(kinds)}
    sql = f" AND {column}kind IN ({', '.join(':' + n for n in names)})"
    params: dict = dict(names)
    if since:
        sql += f" AND {column}time >= :since"
        params["since"] = since
    if until:
        sql += f" AND {column}time < :until"
        params["until"] = until
    return sql, params


def hybrid_sql(where_vec: str, where_fts: str, with_vector: bool, with_text: bool) -> str:
    vec = (f"SELECT rowid AS id, distance, row_number() OVER (ORDER BY distance) AS r FROM chunk_vectors "
           f"WHERE embedding MATCH :vector AND k = :k{where_vec}") if with_vector else \
        "SELECT NULL AS id, NULL AS distance, NULL AS r WHERE 0"
    rank = f"bm25(chunks_fts, {TITLE_WEIGHT}, 1.0)"
    fts = (f"SELECT f.rowid AS id, row_number() OVER (ORDER BY {rank}) AS r FROM chunks_fts f "
           f"JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH :match{where_fts} ORDER BY {rank} LIMIT :k"
           ) if with_text else "SELECT NULL AS id, NULL AS r WHERE 0"
    return f"""
        WITH vec AS ({vec}), fts AS ({fts}),
             found AS (SELECT id FROM vec UNION SELECT id FROM fts)
        SELECT c.id, c.path, c.kind, c.line_start, c.line_end, c.title, c.text, c.time, c.event_id,
               fts.r AS fts_rank, vec.r AS vec_rank, vec.distance,
               COALESCE(1.0 / (:rrf + fts.r), 0) + COALESCE(1.0 / (:rrf + vec.r), 0) AS score
        FROM found JOIN chunks c ON c.id = found.id
             LEFT JOIN fts ON fts.id = c.id LEFT JOIN vec ON vec.id = c.id
        ORDER BY score DESC, c.id LIMIT :limit"""


def query_vector(embedder, text: str, notes: list[str]) -> bytes | None:
    """The query's vector, or None (and a note) when the embedder fails: full-text search still works."""
    try:
        return np.asarray(embedder().query(text), dtype=np.float32).tobytes()
    except Exception as error:  # a remote embedder that is down, a broken model: degrade, never fail
        logger.warning(f"knowledge: embedding the query failed, full-text only: {error}")
        notes.append(f"the embedder failed ({error}); full-text search only")
        return None


def search(db: Database, embedder, query: str, *, kinds=("doc", "code"), since: str | None = None,
           until: str | None = None, limit: int = 5) -> Results:
    """The best chunks for a query among the given kinds (and times), best first."""
    text = " ".join((query or "").split())
    results = Results(text)
    if len(text) > QUERY_LIMIT:
        results.notes.append(f"the query was {len(text):,} characters; only its first {QUERY_LIMIT:,} were searched")
        text = text[:QUERY_LIMIT]
    kinds = [k for k in kinds if k in KINDS]
    if not text or not kinds:
        results.notes.append("nothing to search for")
        return results
    if not db.value("SELECT EXISTS (SELECT 1 FROM chunks)"):
        results.notes.append("the knowledge index is empty; run theseus index")
        return results
    match = fts_query(text)
    vector = query_vector(embedder, text, results.notes)
    where_vec, params = filters(kinds, since, until)
    where_fts, _ = filters(kinds, since, until, "c.")
    if vector is None and not match:
        return results
    params |= {"vector": vector, "match": match, "k": CANDIDATES, "rrf": RRF_K, "limit": limit}
    rows = db.query(hybrid_sql(where_vec, where_fts, vector is not None, bool(match)), params)
    results.hits = [Hit(**row) for row in rows]
    return results
