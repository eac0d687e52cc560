"""`theseus eval sessions FILE`: whole conversations with Chip, turn by turn, through the real chat pipeline.

A session: `{"name", "app", "state": {app: rows}, "turns": [...]}`; rows get
ids 1, 2, ... in order. A turn is one of `{"say": "message"}` (typed in a tab
showing `app`, or the turn's own `"app"`), `{"click": "confirm"|"cancel"|
"undo"}` (on Chip's newest card) or `{"user": "tasks.toggle", "args": {...}}`
(the user's own change in the app), each with an `"expect"`:

- `{table: [rows]}`: the whole table after the turn, in any order; each row
  lists only the fields it checks (text by its words). A table the turn does
  not name must be unchanged.
- `"reply": [word, [alternative, ...], ...]`: words Chip's reply contains.
- `"card": "confirm" | "undo" | "none"`: what Chip's reply carries.

Each session runs in a scratch data dir (plugins of `--apps DIR` copied in)
with the same backend, through `Chat.send` (the code behind the WebSocket),
`Chat.confirm_proposal`, `Chat.cancel_proposal` and `Chat.undo_change` (the
code behind the card's buttons). Between turns the eval waits for what Chip
does while the user reads (reading ahead), as a person would; a turn's time is
from sending to the stored reply. A "wrong-row action" is a turn that changed
or deleted a row the expected state says should have stayed as it was.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from .chat.service import ChatError
from .evals import load_jsonl, normalized, scratch_runtime
from .llm.base import Backend
from .location import Location

TURN_KINDS = ("say", "click", "user")
CLICKS = ("confirm", "cancel", "undo")


def valid_session(session: dict) -> bool:
    return (isinstance(session["name"], str) and isinstance(session["app"], str)
            and isinstance(session.get("state", {}), dict) and session["turns"]
            and all(valid_turn(turn) for turn in session["turns"]))


def valid_turn(turn: dict) -> bool:
    kinds = [k for k in TURN_KINDS if k in turn]
    return (len(kinds) == 1 and isinstance(turn.get("expect", {}), dict)
            and (kinds[0] != "click" or turn["click"] in CLICKS)
            and (kinds[0] != "say" or isinstance(turn["say"], str))
            and (kinds[0] != "user" or isinstance(turn.get("args", {}), dict)))


def load_sessions(path: Path) -> list[dict]:
    return load_jsonl(path, valid_session, " (a session needs name, app and turns of say, click or user)")


def table_rows(runtime, table: str) -> dict[int, dict]:
    return {row["id"]: row for row in runtime.db.query(f"SELECT * FROM {table} ORDER BY id")}


def row_matches(expected: dict, row: dict) -> bool:
    for key, value in expected.items():
        got = row.get(key)
        if isinstance(value, bool):
            if bool(got) != value:
                return False
        elif normalized(value) != normalized(got if got is not None else ""):
            return False
    return True


def table_matches(expected: list[dict], rows: list[dict]) -> bool:
    """Whether the rows are exactly the expected ones, in any order (each expected row matched once)."""
    left = list(rows)
    for wanted in sorted(expected, key=len, reverse=True):
        found = next((row for row in left if row_matches(wanted, row)), None)
        if found is None:
            return False
        left.remove(found)
    return not left


def wrong_rows(before: dict[int, dict], after: dict[int, dict], expected: list[dict] | None) -> int:
    """Rows that existed before the turn, were changed or deleted by it, and should have stayed as they were
    (the expected state still holds them as before, and not as they are now)."""
    count = 0
    for row_id, row in before.items():
        now = after.get(row_id)
        if now == row:
            continue
        if expected is None:
            count += 1
            continue
        kept = any(row_matches(wanted, row) for wanted in expected)
        meant = now is not None and any(row_matches(wanted, now) for wanted in expected)
        count += kept and not meant
    return count


def reply_has(words: list, reply: str) -> list[str]:
    """The expected words (or groups of alternatives) a reply lacks."""
    said = normalized(reply)
    missing = []
    for word in words:
        options = word if isinstance(word, list) else [word]
        if not any(normalized(option) in said for option in options):
            missing.append("/".join(options))
    return missing


def card_kind(message: dict | None) -> str:
    card = json.loads(message["card"]) if message and message.get("card") else None
    if not card:
        return "none"
    return "confirm" if card["kind"] == "proposal" else "undo" if card.get("undo") and not card.get("undone") \
        else "none"


class SessionRun:
    """One session in a scratch data dir: runs its turns and judges each."""

    def __init__(self, session: dict, backend: Backend, folder: Path, apps: Path | None):
        self.session = session
        self.runtime = scratch_runtime(folder, backend, session.get("state", {}), apps)
        self.chat = self.runtime.chat
        self.conversation_id = self.chat.conversations.current()["id"]
        self.tables = {name: self.runtime.plugins[name].table for name in self.runtime.plugins
                       if getattr(self.runtime.plugins[name], "table", None)}

    def close(self) -> None:
        self.runtime.close()

    def last_reply(self) -> dict | None:
        rows = self.runtime.db.query("SELECT * FROM messages WHERE conversation_id = ? AND role = 'assistant' "
                                     "ORDER BY id DESC LIMIT 1", (self.conversation_id,))
        return rows[0] if rows else None

    async def play(self, turn: dict) -> tuple[str, float]:
        """Run one turn; (what went wrong running it, if anything, seconds)."""
        started = time.perf_counter()
        try:
            if "say" in turn:
                app = turn.get("app", self.session["app"])
                async for _ in self.chat.send(turn["say"], self.conversation_id, Location(app)):
                    pass
            elif "user" in turn:
                await asyncio.to_thread(self.runtime.registry.execute, turn["user"], turn.get("args", {}), "user")
            else:
                await self.click(turn["click"])
        except ChatError as error:
            return f"model failed: {error}", time.perf_counter() - started
        except Exception as error:  # a click on a card that is not there, or a refused action: the turn failed
            return f"{type(error).__name__}: {getattr(error, 'message', error)}", time.perf_counter() - started
        seconds = time.perf_counter() - started
        await asyncio.gather(*list(self.chat.tasks), return_exceptions=True)  # Chip reads ahead while one reads
        return "", seconds

    async def click(self, button: str) -> None:
        if button == "undo":
            card = self.runtime.db.query(
                "SELECT json_extract(card, '$.undo') AS undo FROM messages WHERE conversation_id = ? AND "
                "json_extract(card, '$.undo') IS NOT NULL AND json_extract(card, '$.undone') IS NULL "
                "ORDER BY id DESC LIMIT 1", (self.conversation_id,))
            if not card:
                raise LookupError("no card with an Undo button")
            await self.chat.undo_change(card[0]["undo"])
            return
        proposal = self.chat.agent.proposals.newest(self.conversation_id)
        if proposal is None:
            raise LookupError("no open card to click")
        if button == "confirm":
            await self.chat.confirm_proposal(proposal.token)
        else:
            self.chat.cancel_proposal(proposal.token)

    async def turn(self, turn: dict) -> dict:
        """Run and judge one turn."""
        before = {t: table_rows(self.runtime, t) for t in self.tables.values()}
        replied = self.last_reply()
        problem, seconds = await self.play(turn)
        after = {t: table_rows(self.runtime, t) for t in self.tables.values()}
        reply = self.last_reply()
        reply = reply if reply and (replied is None or reply["id"] != replied["id"]) else None
        expect, failures, wrong = turn.get("expect", {}), [problem] if problem else [], 0
        for name, table in self.tables.items():
            wanted = expect.get(name)
            if wanted is None and after[table] != before[table]:
                failures.append(f"{name} changed")
            elif wanted is not None and not table_matches(wanted, list(after[table].values())):
                failures.append(f"{name} not as expected: " + "; ".join(
                    self.runtime.plugins[name].describe_row(r) for r in after[table].values()))
            wrong += wrong_rows(before[table], after[table], wanted)
        if "reply" in expect and (missing := reply_has(expect["reply"], reply["content"] if reply else "")):
            failures.append(f"reply lacks {', '.join(missing)}")
        if "card" in expect and card_kind(reply) != expect["card"]:
            failures.append(f"card {card_kind(reply)}, expected {expect['card']}")
        return {"passed": not failures, "detail": "; ".join(failures), "seconds": seconds, "wrong_rows": wrong,
                "invalid": problem.startswith("model failed"), "reply": reply["content"] if reply else "",
                "timed": "say" in turn}


def turn_text(turn: dict) -> str:
    if "say" in turn:
        return repr(turn["say"])
    if "user" in turn:
        return f"(user {turn['user']} {json.dumps(turn.get('args', {}))})"
    return f"(click {turn['click']})"


async def run_sessions_eval(sessions: list[dict], backend: Backend, out=print, apps: Path | None = None) -> dict:
    """Run every session; print a line per turn, then `turns: N/M (P%)`, wrong-row actions and invalid commands."""
    results = []
    for session in sessions:
        out(f"## {session['name']}")
        with tempfile.TemporaryDirectory(prefix="theseus-session-") as folder:
            run = SessionRun(session, backend, Path(folder), apps)
            try:
                for number, turn in enumerate(session["turns"], 1):
                    result = await run.turn(turn)
                    results.append(result)
                    reply = " ".join(result["reply"].split())[:90]
                    out(f"{'PASS' if result['passed'] else 'FAIL'} {number:2} {result['seconds']:5.1f}s "
                        f"{turn_text(turn)} -> {reply!r}" + (f"  ({result['detail']})" if result["detail"] else ""))
            finally:
                run.close()
    passed = sum(r["passed"] for r in results)
    timed = [r["seconds"] for r in results if r["timed"]] or [0.0]
    out(f"sessions: {len(sessions)}; median turn {statistics.median(timed):.1f}s, "
        f"p90 {sorted(timed)[int(0.9 * (len(timed) - 1))]:.1f}s")
    out(f"schema-invalid commands: {sum(r['invalid'] for r in results)}")
    out(f"wrong-row actions: {sum(r['wrong_rows'] for r in results)}")
    out(f"turns: {passed}/{len(results)} ({100 * passed / max(1, len(results)):.0f}%)")
    return {"passed": passed, "total": len(results), "wrong_rows": sum(r["wrong_rows"] for r in results),
            "results": results}
