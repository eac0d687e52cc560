"""The chat service: one turn = store the user's message, stream Chip's reply to every tab, store the reply.

Every open tab holds one WebSocket to /chat/ws; the service broadcasts HTML
fragments (htmx out-of-band swaps) to all of them, so a message sent in one tab
streams in all. One reply is generated at a time; Stop cancels it for real (the
backend stops generating). A failure shows a clear notice and stores nothing
half-written: the reply is stored only once it is complete (or stopped).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from fasthtml.common import to_xml
from loguru import logger

from ..actions import OperationError
from ..changes.proposer import asks_code_change, propose
from ..db import storage_problem
from ..events import Broadcaster, Message
from ..knowledge.recall import store_sources
from ..llm.base import Backend, BackendError
from ..location import NOWHERE, Location, note_app_opened
from ..logs import log_safe
from .agent import Agent, Reply, Step, parse, recent_turns
from .commands import LOG, decoder_lead
from .context import ContextTooLarge, build_context, catch_up
from .conversations import Conversations
from .recap import recap
from .ui import (MESSAGE_LIMIT, Appended, CardResult, ChatForm, ChatMessage, ConversationBar, Notice, ReadingBody,
                 StreamingBody, message_id, proposal_card_id, shows_text)

FLUSH_SECONDS = 0.05  # re-render a streaming reply at most this often, once it shows any text
REPLY_LIMIT = 16_000  # characters of one streamed reply, whatever the backend: a model that never stops is cut here
READY_TIMEOUT = 120.0  # how long a turn waits for the model to finish loading
UNREACHABLE_TIMEOUT = 3.0  # how long a turn retries a backend that is down before saying so
MODE_NOTES = {"auto": "Chip decides whether to act or just talk.", "chat": "Chip only talks, never acts.",
              "command": "Chip turns every message into a command."}
POKE = ("The user pressed the Poke button. In one or two short sentences, and based on the current "
        "state and their recent actions, suggest what they could do next.")


def cut_note() -> str:
    """What ends a reply that reached REPLY_LIMIT."""
    return f"\n\n*(reply cut at {REPLY_LIMIT:,} characters)*"


class ChatError(Exception):
    """A turn that cannot run or failed; str() is the message shown to the user."""


class Stopped(Exception):
    """The user pressed Stop before Chip had decided what to do."""


class Chat:
    """Conversations with Chip, streamed to every connected tab."""

    def __init__(self, runtime, backend: Backend):
        self.runtime, self.backend = runtime, backend
        self.conversations = Conversations(runtime.db)
        self.sockets = Broadcaster()
        self.keys = itertools.count(1)
        self.cancel: asyncio.Event | None = None
        self.tasks: set[asyncio.Task] = set()
        self.agent = Agent(runtime, backend)

    def indexed_paths(self, paths) -> set[str]:
        """Which of these paths are files of the knowledge index (replies link them to the source viewer)."""
        return self.runtime.knowledge.indexed(paths)

    @property
    def streaming(self) -> bool:
        return self.cancel is not None

    def publish(self, *fragments) -> None:
        """Send out-of-band fragments to every tab's chat socket."""
        self.sockets.publish(Message("chat", "".join(to_xml(f) for f in fragments)))

    def stop(self) -> bool:
        """Cancel the reply being generated; False if there is none."""
        if self.cancel is None:
            return False
        self.cancel.set()
        return True

    def start(self, turn: AsyncIterator[str]) -> asyncio.Task:
        """Run a turn in the background (for the WebSocket and the Poke button)."""
        async def drain():
            try:
                async for _ in turn:
                    pass
            except ChatError:
                pass  # already shown in every tab
            except Exception:
                logger.exception("chat turn failed")
        task = asyncio.create_task(drain())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def send(self, text: str, conversation_id: int | None = None,
             location: Location = NOWHERE) -> AsyncIterator[str]:
        """Start one turn for a user message from a tab at `location` (ChatError if it cannot run); iterate it for
        the reply's pieces."""
        text = (text or "").strip() if isinstance(text, str) else ""
        if not text:
            raise ChatError("Type a message first.")
        if len(text) > MESSAGE_LIMIT:
            raise ChatError(f"That message is {len(text):,} characters; the limit is {MESSAGE_LIMIT:,}.")
        self.claim()
        return self._turn(conversation_id, text, location)

    def poke(self, location: Location = NOWHERE) -> AsyncIterator[str]:
        """Start a short, state-aware nudge from Chip (for a tab at `location`), stored as an assistant message."""
        self.claim()
        return self._turn(None, None, location)

    async def _turn(self, conversation_id: int | None, text: str | None, location: Location) -> AsyncIterator[str]:
        """Store the message; then run a slash command, act on a decoded command, or talk."""
        key = f"s{next(self.keys)}"
        try:
            await asyncio.to_thread(note_app_opened, self.runtime, location)
            conversation_id = conversation_id or self.conversations.current()["id"]
            set_aside = await asyncio.to_thread(catch_up, self.runtime, self.backend, conversation_id, location)
            if text is not None:
                message = await asyncio.to_thread(self.conversations.add, conversation_id, "user", text)
                self.publish(Appended(ChatMessage(message, indexed=self.indexed_paths)),
                             # the first message also titles the conversation
                             ConversationBar(self.conversations.require(conversation_id), hx_swap_oob="true"))
            self.publish(Appended(ChatMessage({"role": "assistant", "content": "…"}, key=key, streaming=True)),
                         ChatForm(streaming=True, hx_swap_oob="true"))
            if set_aside:
                self.publish(ReadingBody(key, f"My memory of this conversation was full, so I set aside its oldest "
                                              f"{set_aside} entries and am re-reading the rest", 0.0))
            reply = await self.respond(conversation_id, key, text, location)
            if reply is None:
                async for piece in self.stream(conversation_id, key, instruction="" if text else POKE,
                                               location=location):
                    yield piece
            else:
                self.say(conversation_id, key, reply)
                yield reply.text
            self.read_ahead_later(conversation_id, location)
        except Stopped:
            self.publish(Notice("Stopped: Chip did nothing.", kind="info", id=message_id(key), hx_swap_oob="true"),
                         ChatForm(hx_swap_oob="true"))
        except (BackendError, ContextTooLarge) as error:
            logger.warning(f"chat: reply failed: {error}")
            self.publish(Notice(f"Chip can't answer right now: {error}", id=message_id(key), hx_swap_oob="true"),
                         ChatForm(hx_swap_oob="true"))
            raise ChatError(str(error)) from error
        except Exception as error:  # a bug (or a full disk): say so in every tab and free the chat
            reason = storage_problem(error)
            logger.opt(exception=None if reason else error).error(f"chat: turn failed: {reason or error}")
            text = f"Not saved: {reason}. Chip can't answer until there is room again." if reason else \
                "Something went wrong while Chip was answering; the details are in server.log."
            self.publish(Notice(text, id=message_id(key), hx_swap_oob="true"), ChatForm(hx_swap_oob="true"))
            raise ChatError(str(error)) from error
        finally:
            self.cancel = None

    async def respond(self, conversation_id: int, key: str, text: str | None,
                      location: Location = NOWHERE) -> Reply | None:
        """A reply that needs no streamed text (slash command, mode change, action), or None to talk."""
        if text is None:
            return None
        mode, rest = parse(text, self.agent.mode)
        if mode.startswith("/"):
            try:
                return await self.agent.slash(mode, rest, conversation_id, location)
            except OperationError as error:
                return Reply(f"I couldn't do that: {error.message}")
        if not rest:
            self.agent.set_mode(mode)
            return Reply(f"Mode: **{mode}**. " + MODE_NOTES[mode])
        answered = self.agent.answer(rest, conversation_id) if mode != "chat" else None
        if answered is not None:  # a reply to Chip's question ("the second one"), or yes to its card
            return await self.agent.act(answered, conversation_id)
        if mode != "chat" and asks_code_change(rest):  # "make the greeting step say Hi": a change to its own code
            await self.until_stopped(self.ensure_ready(key))
            self.reading(key, "Reading the code")(0.0)
            return await self.until_stopped(self.code_change(rest))
        await self.until_stopped(self.ensure_ready(key))
        recent = recent_turns(self.conversations.messages(conversation_id))
        progress = self.reading(key, "Working out what you mean")
        plan = await self.until_stopped(self.agent.decide(rest, recent, mode, location, on_progress=progress))
        logger.info(f"chat: decoded {log_safe([[c.operation, c.args] for c in plan.commands], 300)}"
                    f"{' asking back' if plan.ask else ''} ({plan.talk if plan.is_none else mode} mode)")
        if plan.is_none:
            return Reply(await asyncio.to_thread(recap, self.runtime.db, rest)) if plan.talk == LOG else None
        return await self.agent.act(plan, conversation_id)

    async def code_change(self, request: str) -> Reply:
        """Chip's proposal for a change to its code: the diff, and a card to apply it (nothing is written before)."""
        definition, edit, reason = await propose(self.runtime, self.backend, request)
        if edit is None:
            return Reply(reason)
        change = await asyncio.to_thread(self.runtime.changes.propose, [edit], "llm", request[:80])
        added, removed = edit.counts()
        return Reply(f"Here is a change to `{definition.cite}` ({definition.name}, +{added} −{removed}). Nothing is "
                     f"written until you click Apply; then Theseus checks it, restarts on it and goes back if it "
                     f"breaks anything.\n\n```diff\n{edit.diff}```", {"kind": "code", "change": change.id})

    def reading(self, key: str, what: str):
        """A progress callback that shows, in the reply's place, how far the model got reading a long prompt."""
        return lambda fraction: self.publish(ReadingBody(key, what, fraction))

    async def until_stopped(self, work):
        """Await work, unless Stop is pressed first: then cancel it and raise Stopped (a hung model never
        holds the chat)."""
        task, stop = asyncio.ensure_future(work), asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        raise Stopped

    def claim(self) -> None:
        if self.cancel is not None:
            raise ChatError("Chip is still answering; wait for it, or press Stop.")
        self.cancel = asyncio.Event()

    async def stream(self, conversation_id: int, key: str, instruction: str = "",
                     location: Location = NOWHERE) -> AsyncIterator[str]:
        """Stream Chip's reply to every tab; store it when complete or stopped."""
        text, started = "", time.perf_counter()
        await self.ensure_ready(key)
        context = await asyncio.to_thread(self.prepare, conversation_id, instruction, location)
        flushed, shown, cut = 0.0, False, False
        async with aclosing(self.backend.stream_chat(
                context.messages, temperature=self.runtime.config.temperature, cancel=self.cancel,
                on_progress=self.reading(key, "Reading"))) as stream:
            async for piece in stream:
                cut = len(text) + len(piece) > REPLY_LIMIT
                if cut:
                    piece = piece[:REPLY_LIMIT - len(text)] + cut_note()
                text += piece
                yield piece
                if not shown or time.perf_counter() - flushed > FLUSH_SECONDS:  # every piece until text shows
                    flushed = time.perf_counter()
                    body = StreamingBody(key, text, self.indexed_paths)
                    self.publish(body)
                    shown = shows_text(body)
                if cut:  # leaving the block closes the backend's stream: the model stops generating
                    break
        stopped = self.cancel.is_set()
        self.finish(conversation_id, key, text, stopped, context.sources)
        logger.info(f"chat: reply of {len(text)} characters in {time.perf_counter() - started:.1f} s"
                    + (" (stopped)" if stopped else " (cut)" if cut else ""))

    def prepare(self, conversation_id: int, instruction: str, location: Location):
        """The context for a reply; what it adds to the transcript (excerpts, a Poke) is stored, so the next
        turn's context starts the same way."""
        context = build_context(self.runtime, self.backend, conversation_id, instruction=instruction,
                                location=location)
        for entry in context.unstored:
            self.conversations.note(conversation_id, entry["kind"], entry["content"], role=entry["role"])
        if context.start is not None:
            self.conversations.set_context_start(conversation_id, context.start)
        return context

    async def read_ahead(self, conversation_id: int | None = None, location: Location | None = None) -> None:
        """While the user reads or types: have the model read what the next turn will start with (the chat's
        prefix and conversation, the decoder's prefix and the open app's state), so a message costs only
        itself. At start (no arguments): the current conversation and the app opened last. A message sent
        meanwhile goes first; with a saved prompt state there is little or nothing to read."""
        try:
            await self.backend.wait_ready(READY_TIMEOUT)
            location = location or Location(self.runtime.db.store.get("last_app", ""))
            conversation_id = conversation_id or self.conversations.current()["id"]
            context = await asyncio.to_thread(build_context, self.runtime, self.backend, conversation_id,
                                              location=location, look_up=False)
            if not self.streaming:  # a turn that began meanwhile reads what it needs itself
                await self.backend.warm(context.messages, "chat")
            lead = await asyncio.to_thread(decoder_lead, self.runtime, location)
            if lead and not self.streaming:
                await self.backend.warm(lead, "decoder")
            logger.info("chat: read ahead done")
        except (BackendError, ContextTooLarge) as error:
            logger.info(f"chat: nothing read ahead ({error})")
        except Exception:  # reading ahead is a bonus: a failure costs the next turn its time, nothing else
            logger.exception("chat: reading ahead failed")

    def read_ahead_later(self, conversation_id: int, location: Location) -> None:
        task = asyncio.create_task(self.read_ahead(conversation_id, location))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def announce(self, text: str) -> dict:
        """Chip says a scripted line (e.g. a workflow step's message) in the current conversation."""
        return self.post(Reply(text))

    def post(self, reply: Reply, conversation_id: int | None = None) -> dict:
        """Add a reply nobody asked for (a workflow step's line, an outside agent's confirm card) at the end of a
        conversation (the current one), with its card; every tab shows it."""
        conversation_id = conversation_id or self.conversations.current()["id"]
        message = self.conversations.add(conversation_id, "assistant", reply.text, card=reply.card)
        if reply.proposal:
            self.agent.proposals.attach(reply.proposal.token, message["id"])
        self.publish(Appended(ChatMessage(message, indexed=self.indexed_paths)))
        return message

    def say(self, conversation_id: int, key: str, reply: Reply) -> None:
        """Store a reply Chip did not have to generate, with its card (Undo, or Confirm)."""
        message = self.conversations.add(conversation_id, "assistant", reply.text, card=reply.card)
        if reply.proposal:
            self.agent.proposals.attach(reply.proposal.token, message["id"])
        self.publish(ChatMessage(message, indexed=self.indexed_paths, hx_swap_oob=f"outerHTML:#{message_id(key)}"),
                     ChatForm(hx_swap_oob="true"))

    async def confirm_proposal(self, token: str, tab: str | None = None, remember: bool = False) -> list[Step]:
        """The user clicked Yes on a card: run its plan; the card, in every tab and as stored, says what
        happened (or why nothing did: OperationError)."""
        try:
            proposal, steps = await self.agent.confirm(token, tab, remember)
        except OperationError as error:
            self.close_card(token, {"kind": "done", "note": error.message, "id": proposal_card_id(token)})
            raise
        ran = [step for step in steps if step.outcome]
        undo = next((step.outcome.event_id for step in ran if step.outcome.changes), None)
        text = "Confirmed: " + " ".join(step.line() for step in steps)
        self.close_card(token, {"kind": "done", "note": text, "undo": undo, "id": proposal_card_id(token),
                                "steps": [{"text": step.line(), "ok": bool(step.outcome)} for step in steps]},
                        CardResult(proposal_card_id(token), text, undo=undo, count=len(ran)))
        return steps

    def cancel_proposal(self, token: str) -> None:
        proposal = self.agent.cancel(token)
        text = f"Cancelled: nothing was changed ({proposal.label})."
        self.close_card(token, {"kind": "done", "note": text, "id": proposal_card_id(token)})

    async def undo_change(self, event_id: int, tab: str | None = None):
        """Undo a card's change (with the rest of its plan), as the user; the card says so."""
        outcome = await asyncio.to_thread(self.runtime.registry.execute, "history.undo", {"event_id": event_id},
                                          "user", tab)
        text = f"{outcome.message}."
        self.conversations.replace_card("$.undo", event_id, {"kind": "done", "note": text, "undone": True,
                                                             "id": f"undo-{event_id}"})
        self.publish(CardResult(f"undo-{event_id}", text))
        return outcome

    def close_card(self, token: str, card: dict, shown=None) -> None:
        """A proposal's card, once used: stored as `card`, and shown in every tab (as `shown`, or its note)."""
        if 0 < len(token) <= 40 and token.replace("-", "").replace("_", "").isalnum():
            self.conversations.replace_card("$.token", token, card)
            self.publish(shown or CardResult(proposal_card_id(token), card["note"]))

    async def ensure_ready(self, key: str) -> None:
        """Wait for a model that is loading; give up within seconds on one that is down."""
        await self.backend.start()
        status = self.backend.status()
        if status.ready:
            return
        if status.state in ("loading", "assembling"):
            self.publish(StreamingBody(key, f"*Waiting for the model: {status.detail}…*"))
            await self.backend.wait_ready(READY_TIMEOUT)
        else:
            await self.backend.wait_ready(UNREACHABLE_TIMEOUT)

    def finish(self, conversation_id: int, key: str, text: str, stopped: bool, sources: list | None = None) -> None:
        """Store the reply (unless empty) with the sources it was given; put its final rendering in every tab."""
        if not text.strip():
            final = Notice("Chip stopped before saying anything." if stopped else "Chip had nothing to say.",
                           kind="info", id=message_id(key), hx_swap_oob="true")
        else:
            message = self.conversations.add(conversation_id, "assistant", text,
                                             status="stopped" if stopped else "done",
                                             tokens=self.backend.count_tokens(text))
            if sources:
                message = store_sources(self.runtime.db, message, sources)
            final = ChatMessage(message, indexed=self.indexed_paths, hx_swap_oob=f"outerHTML:#{message_id(key)}")
        self.publish(final, ChatForm(hx_swap_oob="true"))

