"""The action log (the `events` table) and the live broadcast to every open tab.

Every executed operation appends one event with its before/after snapshot and
publishes the re-rendered HTML fragments to all connected tabs. Tabs listen on
one Server-Sent Events stream each; htmx applies the fragments as
out-of-band swaps. Publishing is thread-safe: operations run in worker threads.

The number of streams is capped (STREAM_LIMIT): each one costs work on every change. One
stream over the cap is refused, not an older one closed: a closed stream reconnects by
itself within a second and would close the next, round and round; the refused tab retries
with backoff and gets in as soon as another tab goes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from dataclasses import dataclass

from .db import Database, utc_now

ACTORS = ("user", "llm", "agent", "system")  # agent: an outside program over MCP (mcp_server/)
WHO = {"user": "You", "llm": "Chip", "agent": "An agent", "system": "Theseus"}  # who an actor is, in words
ACTOR_NAMES = {"user": "the user", "llm": "Chip", "agent": "an outside agent", "system": "Theseus"}  # for Chip
STREAM_LIMIT = 32  # open streams per broadcaster (live-sync tabs; chat sockets)


class TooManyStreams(Exception):
    """Every stream is taken; str() says so to the user."""


def append_event(db: Database, *, actor: str, operation: str, args: dict | None = None,
                 summary: str = "", changes: list | None = None,
                 profile_id: int | None = None, plan: str | None = None) -> int:
    """Append one event to the action log and return its id (call inside a transaction); the events of one
    plan (several commands from one message) share its key, `plan`."""
    if actor not in ACTORS:
        raise ValueError(f"actor must be one of {ACTORS}, not {actor!r}")
    cursor = db.conn.execute(
        "INSERT INTO events (time, actor, operation, args, summary, changes, profile_id, plan) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (utc_now(), actor, operation, json.dumps(args or {}, ensure_ascii=False), summary,
         json.dumps(changes or [], ensure_ascii=False), profile_id, plan))
    return cursor.fetchone()[0]


def recent_events(db: Database, limit: int = 20) -> list[dict]:
    """The newest events, oldest first, with args and changes decoded."""
    rows = db.query("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
    for row in rows:
        row["args"] = json.loads(row["args"])
        row["changes"] = json.loads(row["changes"])
    return rows[::-1]


@dataclass(frozen=True)
class Message:
    """One Server-Sent Event: its name and its (HTML) data."""

    event: str
    data: str = ""
    id: int | None = None  # for an operation's fragments: its event id, the place in commit order

    def encode(self) -> str:
        lines = self.data.splitlines() or [""]
        head = f"event: {self.event}\n" + (f"id: {self.id}\n" if self.id is not None else "")
        return head + "".join(f"data: {line}\n" for line in lines) + "\n"


class Subscription:
    """One tab's queue of messages; iterate it asynchronously, close it when the tab leaves."""

    def __init__(self, broadcaster: "Broadcaster", key: int, tab: str | None):
        self.broadcaster, self.key, self.tab = broadcaster, key, tab
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()

    def put(self, message: Message | None) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, message)

    async def get(self, timeout: float | None = None) -> Message | None:
        """The next message; None when the broadcaster closed; TimeoutError after `timeout`."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    def close(self) -> None:
        self.broadcaster.unsubscribe(self)


class Broadcaster:
    """Fans messages out to every subscribed tab, from any thread."""

    def __init__(self, limit: int = STREAM_LIMIT):
        self.limit = limit
        self._subscriptions: dict[int, Subscription] = {}
        self._keys = itertools.count(1)
        self._lock = threading.Lock()

    def subscribe(self, tab: str | None = None) -> Subscription:
        """Subscribe from the event loop; `tab` identifies the browser tab. TooManyStreams when all are taken."""
        with self._lock:
            if len(self._subscriptions) >= self.limit:
                raise TooManyStreams(f"{self.limit} tabs are already connected for live updates; "
                                     "close one and this tab connects by itself.")
            subscription = Subscription(self, next(self._keys), tab)
            self._subscriptions[subscription.key] = subscription
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.pop(subscription.key, None)

    def publish(self, message: Message, *, exclude_tab: str | None = None) -> int:
        """Send to every tab except `exclude_tab` (which already has the change); return how many."""
        with self._lock:
            targets = [s for s in self._subscriptions.values()
                       if exclude_tab is None or s.tab != exclude_tab]
        for subscription in targets:
            try:
                subscription.put(message)
            except RuntimeError:  # its event loop is gone
                self.unsubscribe(subscription)
        return len(targets)

    @property
    def count(self) -> int:
        return len(self._subscriptions)

    def close(self) -> None:
        """End every stream (server shutdown)."""
        with self._lock:
            targets = list(self._subscriptions.values())
            self._subscriptions.clear()
        for subscription in targets:
            try:
                subscription.put(None)
            except RuntimeError:
                pass
