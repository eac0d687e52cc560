"""Persisted conversations: their messages (user and assistant), and Chip's transcript of each.

The transcript is everything Chip read in a conversation, in the order it
happened: the messages, and the notes between them (app events, the state,
looked-up excerpts). It only grows: Chip's context is its tail from the
conversation's `context_start`, so each turn's prompt starts with the last
one's, and the model's cache of it stays valid (chat/context.py).
"""

from __future__ import annotations

import json

from ..db import Database, utc_now
from .approval import forget_here

DEFAULT_TITLE = "New conversation"
TITLE_LIMIT = 80


class Conversations:
    """The `conversations` and `messages` tables, and which conversation is current."""

    def __init__(self, db: Database):
        self.db = db

    def create(self, title: str = DEFAULT_TITLE) -> dict:
        now = utc_now()
        with self.db.transaction():
            return self.db.table("conversations").insert({"title": title, "created": now, "updated": now})

    def get(self, conversation_id: int) -> dict | None:
        rows = self.db.query("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return rows[0] if rows else None

    def current(self) -> dict:
        """The current conversation (the newest, or a new one, if none is set)."""
        conversation = self.get(self.db.store.get("conversation_id", 0))
        if conversation is None:
            newest = self.db.query("SELECT * FROM conversations ORDER BY updated DESC, id DESC LIMIT 1")
            conversation = newest[0] if newest else self.create()
            self.db.store["conversation_id"] = conversation["id"]
        return conversation

    def switch(self, conversation_id: int) -> dict:
        conversation = self.require(conversation_id)
        self.db.store["conversation_id"] = conversation_id
        return conversation

    def require(self, conversation_id: int) -> dict:
        conversation = self.get(conversation_id)
        if conversation is None:
            raise LookupError(f"There is no conversation #{conversation_id}.")
        return conversation

    def rename(self, conversation_id: int, title: str) -> dict:
        title = " ".join(title.split())[:TITLE_LIMIT]
        if not title:
            raise ValueError("A conversation needs a title.")
        self.require(conversation_id)
        with self.db.transaction():
            return self.db.table("conversations").update({"id": conversation_id, "title": title})

    def delete(self, conversation_id: int) -> None:
        self.require(conversation_id)
        with self.db.transaction():
            self.db.conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if self.db.store.get("conversation_id") == conversation_id:
                del self.db.store["conversation_id"]
            forget_here(self.db, conversation_id)

    def list(self, query: str = "") -> list[dict]:
        """Conversations, newest first; with a query, those whose title or messages contain it."""
        if not query.strip():
            return self.db.query("SELECT * FROM conversations ORDER BY updated DESC, id DESC")
        pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self.db.query(
            "SELECT * FROM conversations c WHERE c.title LIKE ?1 ESCAPE '\\' OR EXISTS "
            "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.content LIKE ?1 ESCAPE '\\') "
            "ORDER BY updated DESC, id DESC", (pattern,))

    def messages(self, conversation_id: int) -> list[dict]:
        return self.db.query("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))

    def message(self, message_id: int) -> dict | None:
        rows = self.db.query("SELECT * FROM messages WHERE id = ?", (message_id,))
        return rows[0] if rows else None

    def add(self, conversation_id: int, role: str, content: str, *, status: str = "done",
            tokens: int | None = None, card: dict | None = None) -> dict:
        """Append a message (with the action card under it, if any: stored, so that it survives a reload); the
        first user message also titles a new conversation."""
        now = utc_now()
        with self.db.transaction():
            conversation = self.require(conversation_id)
            message = self.db.table("messages").insert(
                {"conversation_id": conversation_id, "role": role, "content": content,
                 "status": status, "tokens": tokens, "time": now, "card": json.dumps(card) if card else None})
            self.db.table("transcript").insert({"conversation_id": conversation_id, "kind": "message", "role": role,
                                                "content": content, "message_id": message["id"]})
            changes = {"id": conversation_id, "updated": now}
            if role == "user" and conversation["title"] == DEFAULT_TITLE:
                changes["title"] = " ".join(content.split())[:TITLE_LIMIT] or DEFAULT_TITLE
            self.db.table("conversations").update(changes)
        return message

    def replace_card(self, path: str, value, card: dict) -> None:
        """Replace the card of the messages whose card has `value` at `path` ('$.token': a proposal once it was
        used; '$.undo': a change once undone)."""
        with self.db.transaction():
            self.db.conn.execute("UPDATE messages SET card = ? WHERE card IS NOT NULL AND json_extract(card, ?) = ?",
                                 (json.dumps(card), path, value))

    def note(self, conversation_id: int, kind: str, content: str, *, role: str = "system",
             mark: str | None = None) -> dict:
        """Append a note Chip reads (not a message shown in the chat) to the conversation's transcript."""
        with self.db.transaction():
            return self.db.table("transcript").insert({"conversation_id": conversation_id, "kind": kind,
                                                       "role": role, "content": content, "mark": mark})

    def transcript(self, conversation_id: int) -> list[dict]:
        """The transcript from where Chip's context starts, oldest first."""
        return self.db.query("SELECT t.* FROM transcript t JOIN conversations c ON c.id = t.conversation_id "
                             "WHERE t.conversation_id = ? AND t.id >= c.context_start ORDER BY t.id",
                             (conversation_id,))

    def set_context_start(self, conversation_id: int, entry_id: int) -> None:
        """Leave the transcript before this entry out of Chip's context from now on."""
        with self.db.transaction():
            self.db.conn.execute("UPDATE conversations SET context_start = ? WHERE id = ?",
                                 (entry_id, conversation_id))

    def export_markdown(self, conversation_id: int) -> str:
        conversation = self.require(conversation_id)
        lines = [f"# {conversation['title']}", ""]
        for message in self.messages(conversation_id):
            who = "You" if message["role"] == "user" else "Chip"
            stopped = " (stopped)" if message["status"] == "stopped" else ""
            lines += [f"## {who}{stopped} · {message['time']}", "", message["content"], ""]
        return "\n".join(lines)

    def export_json(self, conversation_id: int) -> str:
        conversation = self.require(conversation_id)
        return json.dumps({**conversation, "messages": self.messages(conversation_id)},
                          ensure_ascii=False, indent=2)
