"""Chat routes: the WebSocket every tab holds, conversation management, export, poke, model status."""

from __future__ import annotations

import asyncio
import json

from fasthtml.common import to_xml
from loguru import logger
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..actions import NotFound, OperationError, parse_int
from ..location import NOWHERE, Location, location_from
from ..events import TooManyStreams
from ..logs import log_safe
from ..ui import TAB_HEADER
from .service import Chat, ChatError
from .ui import (Appended, ChatForm, ChatLog, ChatPane, ConversationBar, ConversationList, ModelStatus,
                 Notice)


SOCKET_MESSAGE_LIMIT = 64 * 1024  # characters of one socket message: a chat message (8,000) as JSON, with room


def chat_pane(chat: Chat, tab: str, location: Location = NOWHERE, shown: dict | None = None):
    """The chat pane for a new page (at `location`: its link to Chip's context shows what Chip sees from there),
    showing the current conversation, or `shown` (then a preview until the user continues it: a GET never
    makes it current)."""
    current = chat.conversations.current()
    conversation = shown or current
    return ChatPane(conversation, chat.conversations.messages(conversation["id"]), chat.conversations.list(),
                    chat.backend.status(), tab=tab, streaming=chat.streaming, location=location,
                    indexed=chat.indexed_paths, preview=conversation["id"] != current["id"])


def conversation_fragments(chat: Chat) -> list:
    """Everything that shows the current conversation, as out-of-band swaps."""
    conversation = chat.conversations.current()
    return [ChatLog(chat.conversations.messages(conversation["id"]), indexed=chat.indexed_paths, hx_swap_oob="true"),
            ConversationBar(conversation, hx_swap_oob="true"),  # after the log: it ends a preview (theseus.js)
            ConversationList(chat.conversations.list(), conversation["id"], hx_swap_oob="true")]


def publish_conversation(chat: Chat) -> HTMLResponse:
    """Show the current conversation in every tab; answer the caller with the same fragments."""
    fragments = conversation_fragments(chat)
    chat.publish(*fragments)
    return HTMLResponse("".join(to_xml(f) for f in fragments))


def conversation_or_404(chat: Chat, conversation_id: str) -> dict:
    """The conversation a path names (400 for a malformed id, 404 for an unknown one)."""
    number = parse_int(conversation_id, name="conversation_id", lo=1)
    conversation = chat.conversations.get(number)
    if conversation is None:
        raise NotFound(f"There is no conversation #{number}.")
    return conversation


async def posted_location(chat: Chat, request) -> Location:
    """Where the tab that posted this form is (NOWHERE if the body says nothing readable about it)."""
    try:
        return location_from(chat.runtime, await request.form())
    except Exception:  # a malformed body: the request still works, from nowhere in particular
        return NOWHERE


def not_while_streaming(chat: Chat) -> None:
    """Refuse (409) what would disturb the reply being streamed."""
    if chat.streaming:
        raise OperationError("Chip is still answering; wait for it, or press Stop.", 409)


def add_chat_routes(app, chat: Chat) -> None:
    app.router.add_websocket_route("/chat/ws", lambda ws: chat_socket(chat, ws))

    @app.get("/chat/status")
    def model_status():
        return ModelStatus(chat.backend.status())

    @app.post("/chat/new")
    def new_conversation():
        not_while_streaming(chat)
        chat.conversations.switch(chat.conversations.create()["id"])
        return publish_conversation(chat)

    @app.post("/chat/{conversation_id}/switch")
    def switch_conversation(conversation_id: str):
        conversation = conversation_or_404(chat, conversation_id)
        not_while_streaming(chat)
        chat.conversations.switch(conversation["id"])
        return publish_conversation(chat)

    @app.post("/chat/{conversation_id}/rename")
    def rename_conversation(request, conversation_id: str):
        conversation = conversation_or_404(chat, conversation_id)
        title = request.headers.get("HX-Prompt", "")
        try:
            chat.conversations.rename(conversation["id"], title)
        except ValueError as error:
            raise OperationError(str(error)) from None
        return publish_conversation(chat)

    @app.post("/chat/{conversation_id}/delete")
    def delete_conversation(conversation_id: str):
        conversation = conversation_or_404(chat, conversation_id)
        not_while_streaming(chat)
        chat.conversations.delete(conversation["id"])
        return publish_conversation(chat)

    @app.get("/chat/list")
    def list_conversations(q: str = ""):
        return ConversationList(chat.conversations.list(q[:200]), chat.conversations.current()["id"], q[:200])

    @app.get("/chat/{conversation_id}/export.md")
    def export_markdown(conversation_id: str):
        number = conversation_or_404(chat, conversation_id)["id"]
        return Response(chat.conversations.export_markdown(number), media_type="text/markdown",
                        headers={"Content-Disposition": f'attachment; filename="conversation-{number}.md"'})

    @app.get("/chat/{conversation_id}/export.json")
    def export_json(conversation_id: str):
        number = conversation_or_404(chat, conversation_id)["id"]
        return Response(chat.conversations.export_json(number), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="conversation-{number}.json"'})

    @app.get("/chat/messages/{message_id}.md")
    def message_markdown(message_id: str):
        """One stored message's markdown source, as stored (for "Copy as markdown")."""
        number = parse_int(message_id, name="message_id", lo=1)
        message = chat.conversations.message(number)
        if message is None:
            raise NotFound(f"There is no message #{number}.")
        return Response(message["content"], media_type="text/markdown")

    @app.post("/chat/confirm/{token}")
    async def confirm(request, token: str):
        remember = (await request.form()).get("remember") == "1"
        steps = await chat.confirm_proposal(token, request.headers.get(TAB_HEADER), remember)
        return HTMLResponse("".join(step.outcome.html for step in steps if step.outcome))

    @app.post("/chat/cancel/{token}")
    def cancel(token: str):
        chat.cancel_proposal(token)
        return Response(status_code=204)

    @app.post("/chat/undo/{event_id}")
    async def undo(request, event_id: str):
        outcome = await chat.undo_change(parse_int(event_id, name="event_id", lo=1), request.headers.get(TAB_HEADER))
        return HTMLResponse(outcome.html)

    @app.post("/poke")
    async def poke(request):
        not_while_streaming(chat)
        chat.start(chat.poke(await posted_location(chat, request)))
        return Response(status_code=204)


async def chat_socket(chat: Chat, websocket: WebSocket) -> None:
    """One tab's chat socket: receives send/stop requests, forwards every chat broadcast."""
    try:
        subscription = chat.sockets.subscribe(websocket.query_params.get("tab"))  # counted before it is open
    except TooManyStreams as error:
        await websocket.accept()
        await websocket.send_text(to_xml(Appended(Notice(str(error)))))
        return await websocket.close(code=1013)  # "try again later": the tab reconnects by itself, with backoff
    forwarder = None
    try:
        await websocket.accept()
        forwarder = asyncio.create_task(forward(subscription, websocket))
        while (raw := await receive(websocket)) is not None:
            await handle(chat, websocket, raw)
    except WebSocketDisconnect:
        pass
    finally:
        if forwarder is not None:
            forwarder.cancel()
        subscription.close()


async def receive(websocket: WebSocket) -> str | None:
    """The next message as text (a binary frame is decoded, never a crash); None once the tab has gone."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    if message.get("text") is not None:
        return message["text"]
    return (message.get("bytes") or b"").decode("utf-8", errors="replace")


async def forward(subscription, websocket: WebSocket) -> None:
    """Send every chat broadcast to this tab; when the server shuts down, close with 1012 so the tab reconnects."""
    while (message := await subscription.get()) is not None:
        await websocket.send_text(message.data)
    await websocket.close(code=1012)  # "service restart": htmx's ws extension reconnects by itself


async def handle(chat: Chat, websocket: WebSocket, raw: str) -> None:
    """Act on one message from a tab: {"action": "send", "message": "...", "app": "...", "run": "..."} (app and run:
    where the tab is, see theseus/location.py) or {"action": "stop"}."""
    if len(raw) > SOCKET_MESSAGE_LIMIT:
        logger.info(f"chat socket: ignored a message of {len(raw):,} characters")
        return await websocket.send_text(to_xml(Appended(Notice(
            f"That message is too large ({len(raw):,} characters; the limit is {SOCKET_MESSAGE_LIMIT:,}). "
            "Nothing was sent to Chip."))))
    try:
        data = json.loads(raw)
        action = data.get("action") if isinstance(data, dict) else None
    except ValueError:
        action = None
    if action == "stop":
        chat.stop()
    elif action == "send":
        await start_turn(chat, websocket, data.get("message"), location_from(chat.runtime, data))
    else:
        logger.info(f"chat socket: ignored a message with action {log_safe(repr(action), 100)}")
        await websocket.send_text(to_xml(Appended(Notice("That chat request was not understood."))))


async def start_turn(chat: Chat, websocket: WebSocket, text, location: Location) -> None:
    """Check and start a turn in the background, so this socket can still receive Stop."""
    try:
        turn = chat.send(text, location=location)
    except ChatError as error:
        await websocket.send_text(to_xml(Appended(Notice(str(error))))
                                  + to_xml(ChatForm(streaming=chat.streaming, hx_swap_oob="true")))
        return
    chat.start(turn)
