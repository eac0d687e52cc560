"""Answers about what happened, from the action log: "what did I just do?", "what did you change today?".

The answer is written from the events themselves (who, when, what, and the
event's id to find it in the Activity app), not generated: the log is the
truth, and a small model retelling it would get names and times wrong.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from ..events import WHO
from ..markup import escape_markdown

RECAP_EVENTS = 8  # events one answer lists
ABOUT_CHIP = re.compile(r"\b(you|chip)\b", re.IGNORECASE)
ABOUT_USER = re.compile(r"\b(i|me|my|myself)\b", re.IGNORECASE)
TODAY = re.compile(r"\btoday\b", re.IGNORECASE)
ABOUT_CODE = re.compile(r"\b(code|source|plugins?)\b", re.IGNORECASE)
CHANGED_CODE = "json_extract(args, '$.files') IS NOT NULL"  # a code change's event holds each file before and after


def recap(db, request: str) -> str:
    """The newest changes the question asks about (by Chip, by the user, today), newest first, with times."""
    actors = wanted_actors(request)
    changed = CHANGED_CODE if ABOUT_CODE.search(request) else f"(changes != '[]' OR {CHANGED_CODE})"
    where = [changed, f"actor IN ({', '.join('?' * len(actors))})"]
    params: list = list(actors)
    if TODAY.search(request):
        where.append("time >= ?")
        params.append(start_of_today())
    events = db.query(f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                      (*params, RECAP_EVENTS))
    if not events:
        whose = {("llm",): "I have", ("user", "llm"): "You have"}.get(tuple(actors), "Nobody has")
        return f"{whose} changed nothing{' today' if TODAY.search(request) else ''} yet."
    lines = [f"- {local_time(e['time'])} · {WHO.get(e['actor'], e['actor'])}: {escape_markdown(e['summary'])}"
             + (" (undone since)" if e["undone"] else "") + f" · event #{e['id']}" for e in events]
    return "Here is what changed most recently, newest first (from the action log):\n" + "\n".join(lines)


def wanted_actors(request: str) -> list[str]:
    """Whose changes a question is about: Chip's ("what did you change?"), the user's ("what did I do?"), or
    everyone's."""
    chip, user = bool(ABOUT_CHIP.search(request)), bool(ABOUT_USER.search(request))
    if chip and not user:
        return ["llm"]
    if user and not chip:
        return ["user", "llm"]  # what Chip did at the user's word, the user did too
    return ["user", "llm", "agent", "system"]


def local_time(stamp: str) -> str:
    """An event's UTC time as the local clock shows it ('10:42', or 'Mon 10:42' on an earlier day)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone()
    now = datetime.now().astimezone()
    return moment.strftime("%H:%M" if moment.date() == now.date() else "%a %d %b %H:%M")


def start_of_today() -> str:
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(timezone.utc).isoformat(timespec="seconds")
