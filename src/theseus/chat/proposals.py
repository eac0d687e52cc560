"""Proposals: what Chip would do once the user clicks Yes, stored so that a card survives a reload and a restart.

A proposal is a plan (one or more commands) with the rows it would touch as
they were when Chip proposed it, and the action log's newest event id then.
Clicking Yes runs it only if none of those rows changed since (not even back
to the same values, nor made anew under the same id), and before it expires.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from .commands import Command

PROPOSAL_TTL = 24 * 3600.0  # seconds a card can be used (its rows are checked anyway)


@dataclass
class Proposal:
    """A plan waiting for the user's click."""

    token: str
    conversation_id: int
    commands: list[Command]
    label: str                      # what it would do, in words: "delete task 'old junk' (#1)"
    lines: list[str] = field(default_factory=list)  # one line per command, for a plan of several
    targets: list = field(default_factory=list)     # [(table, row) or None] per command, as when proposed
    since: int = 0                  # the action log's newest event id when proposed
    expires: float = 0.0            # time.time() after which the card is refused
    message_id: int | None = None   # the reply that shows the card
    actor: str = "llm"

    @property
    def expired(self) -> bool:
        return time.time() > self.expires


class Proposals:
    """The open proposals, in the database (the `proposals` table)."""

    def __init__(self, db):
        self.db = db

    def create(self, conversation_id: int, commands: list[Command], label: str, lines: list[str], targets: list,
               since: int, actor: str = "llm") -> Proposal:
        proposal = Proposal(secrets.token_urlsafe(8), conversation_id, list(commands), label, lines, targets, since,
                            time.time() + PROPOSAL_TTL, actor=actor)
        with self.db.transaction():
            self.db.conn.execute("DELETE FROM proposals WHERE expires < ?", (time.time(),))
            self.db.table("proposals").insert({
                "token": proposal.token, "conversation_id": conversation_id, "label": label,
                "commands": json.dumps([[c.operation, c.args] for c in commands], ensure_ascii=False),
                "lines": json.dumps(lines, ensure_ascii=False), "targets": json.dumps(targets, ensure_ascii=False),
                "since": since, "expires": proposal.expires, "actor": actor})
        return proposal

    def get(self, token: str) -> Proposal | None:
        rows = self.db.query("SELECT * FROM proposals WHERE token = ?", (token,))
        return proposal_from(rows[0]) if rows else None

    def take(self, token: str) -> Proposal | None:
        """The proposal, removed (a card can be used once)."""
        with self.db.transaction():
            proposal = self.get(token)
            self.db.conn.execute("DELETE FROM proposals WHERE token = ?", (token,))
        return proposal

    def attach(self, token: str, message_id: int) -> None:
        with self.db.transaction():
            self.db.conn.execute("UPDATE proposals SET message_id = ? WHERE token = ?", (message_id, token))

    def expire(self, token: str) -> None:
        """Make a proposal expired now (as if its time had passed)."""
        with self.db.transaction():
            self.db.conn.execute("UPDATE proposals SET expires = 0 WHERE token = ?", (token,))

    def newest(self, conversation_id: int) -> Proposal | None:
        rows = self.db.query("SELECT * FROM proposals WHERE conversation_id = ? AND expires >= ? "
                             "ORDER BY rowid DESC LIMIT 1", (conversation_id, time.time()))
        return proposal_from(rows[0]) if rows else None

    def __iter__(self):
        return iter([row["token"] for row in self.db.query("SELECT token FROM proposals ORDER BY rowid")])

    def __contains__(self, token: str) -> bool:
        return self.get(token) is not None


def proposal_from(row: dict) -> Proposal:
    targets = [tuple(t) if t else None for t in json.loads(row["targets"])]
    commands = [Command(op, args) for op, args in json.loads(row["commands"])]
    return Proposal(row["token"], row["conversation_id"], commands, row["label"], json.loads(row["lines"]), targets,
                    row["since"], row["expires"], row["message_id"], row["actor"])
