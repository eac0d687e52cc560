"""`theseus eval retrieval FILE.jsonl`: does the right file come up in the top 3?

Each line is `{"question": "...", "expect": ["path/fragment", ...]}`. A case is
a hit when any of the first three results comes from a path that contains any
of the expected fragments. Docs and code are searched, as Chip's how-to and
code questions are.
"""

from __future__ import annotations

from pathlib import Path

from ..evals import load_jsonl

TOP = 3


def load_retrieval_cases(path: Path) -> list[dict]:
    """The retrieval cases of a JSONL file; a clear ValueError names a bad line."""
    return load_jsonl(path, valid_case, " (want question and a list of expect fragments)")


def valid_case(case: dict) -> bool:
    expect = case["expect"]
    return (isinstance(case["question"], str) and bool(case["question"].strip()) and isinstance(expect, list)
            and bool(expect) and all(isinstance(e, str) for e in expect))


def run_retrieval_eval(knowledge, cases: list[dict], out=print) -> dict:
    """Print hit@3 per case, then `recall@3: N/M (P%)` last."""
    hits = 0
    for number, case in enumerate(cases, 1):
        found = [h.path for h in knowledge.search(case["question"], kinds=("doc", "code"), limit=TOP).hits]
        hit = any(fragment in path for path in found for fragment in case["expect"])
        hits += hit
        out(f"{'HIT ' if hit else 'MISS'} {number:3}  {case['question']!r} -> {', '.join(found) or 'nothing'}"
            + ("" if hit else f"  (expected {' or '.join(case['expect'])})"))
    out(f"recall@{TOP}: {hits}/{len(cases)} ({100 * hits / len(cases):.0f}%)")
    return {"hits": hits, "total": len(cases)}
