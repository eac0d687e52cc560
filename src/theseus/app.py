"""create_app(config): the FastHTML app with the shell, the operation routes and live sync.

Route handlers parse input, call one operation through the registry, and
return FT. Every operation route answers with the same out-of-band fragments
that the broadcast sends to the other tabs, so all tabs render one way.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets

from fasthtml.common import A, H2, Body, Div, FastHTML, Head, Html, Li, Main, P, Small, Title, Ul, to_xml
from loguru import logger
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, \
    RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles

from .actions import Operation, OperationError
from .chat.routes import add_chat_routes, chat_pane, conversation_or_404
from .config import Config
from .db import Database
from .devloop import banner, follow_status
from .events import Subscription, TooManyStreams
from .frontend import STATIC_DIR, missing_vendor_files, vendor_path
from .changes.routes import add_change_routes
from .chat.approval import add_approval_routes
from .knowledge.routes import add_knowledge_routes
from .knowledge.viewer import source_url
from .location import page_location
from .limits import BodyLimitMiddleware
from .logs import PATH_LIMIT, RequestLogMiddleware, log_safe, log_tail
from .mcp_server.server import add_mcp_route
from .running import announce, withdraw
from .runtime import Runtime
from .security import Access, SecurityMiddleware
from .ui import EVENT_HEADER, TAB_HEADER, Headers, NavBar, Shell, Toast, app_url, op_url

SSE_HEARTBEAT = 15.0  # seconds between keep-alive comments on the live-sync stream


def create_app(config: Config, runtime: Runtime | None = None) -> FastHTML:
    """Build the web app for this config (the runtime is created unless one is given)."""
    runtime = runtime or Runtime(config)
    missing = missing_vendor_files()
    if missing:
        logger.warning(f"front-end libraries missing ({', '.join(missing)}): run ./run setup")

    async def lifespan(app):  # FastHTML takes an async generator function
        await runtime.backend.start()  # the model loads in the background; the UI is up at once
        warming = asyncio.create_task(runtime.chat.read_ahead())  # then reads what the first message needs
        if config.knowledge:
            runtime.knowledge.start()  # index docs, source and events in the background, then watch
        status_follower = follow_status(runtime)
        async with app.state.mcp.manager.run():
            announce(config)  # `theseus mcp` of this data dir forwards here
            verifying = asyncio.create_task(runtime.changes.verify_pending(app))  # a code change that restarted us
            try:
                yield
            finally:
                verifying.cancel()
                withdraw(config)
        for task in (warming, *runtime.chat.tasks):
            task.cancel()
        if status_follower:
            status_follower.cancel()
        runtime.end_streams()
        if runtime.owns_backend:
            await runtime.backend.close()
        runtime.close()
        logger.info("Theseus stopped: live-sync streams ended, database closed")

    app = FastHTML(hdrs=Headers(), default_hdrs=False, sess_cls=None, secret_key="unused",
                   canonical=False, title="Theseus", lifespan=lifespan,
                   exception_handlers={404: not_found, 405: bad_method, 500: server_error,
                                       HTTPException: http_error, OperationError: operation_error})
    app.state.runtime = runtime
    app.state.access = Access.of(config)  # the hosts we answer to, and the token beyond loopback
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SecurityMiddleware, access=app.state.access)
    app.add_middleware(RequestLogMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_shell_routes(app, runtime)
    add_chat_routes(app, runtime.chat)
    add_chat_page_route(app, runtime)  # after the chat routes: /chat/status and /chat/list are not ids
    add_knowledge_routes(app, runtime)
    add_approval_routes(app, runtime)
    add_change_routes(app, runtime)
    app.state.mcp = add_mcp_route(app, runtime)
    for op in runtime.registry.operations.values():
        if not op.internal:
            add_operation_route(app, runtime, op)
    for plugin in runtime.plugins.values():
        plugin.routes(app)
    return app


def add_operation_route(app: FastHTML, runtime: Runtime, op: Operation) -> None:
    """POST /ops/NAME runs the operation with the form (or JSON) fields as arguments."""
    async def run_operation(request):
        args = await read_args(request, op)
        outcome = await asyncio.to_thread(runtime.registry.execute, op.name, args, "user",
                                          request.headers.get(TAB_HEADER))
        headers = {EVENT_HEADER: str(outcome.event_id)}  # the tab orders it against what arrives over SSE
        if outcome.signals:
            headers["HX-Trigger"] = ", ".join(outcome.signals)
        return HTMLResponse(outcome.html, headers=headers)

    app.router.add_route(op_url(op.name), run_operation, methods=["POST"], name=op.name)


async def read_args(request, op: Operation) -> dict:
    """The operation's arguments from a JSON or form body; only the names it declares."""
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            return json.loads(await request.body() or b"{}")
        form = await request.form()
    except Exception as error:
        raise OperationError(f"Could not read the request body ({type(error).__name__}).") from None
    args = {}
    for param in op.params:
        values = form.getlist(param.name)
        if values:
            args[param.name] = values if param.kind == "int_list" else values[0]
    return args


def add_shell_routes(app: FastHTML, runtime: Runtime) -> None:
    db: Database = runtime.db

    @app.get("/")
    def home():
        last = db.store.get("last_app")
        name = last if last in runtime.plugins else next(iter(runtime.plugins), None)
        return RedirectResponse(app_url(name) if name else "/apps/none", status_code=303)

    @app.get("/apps/{name}")
    def open_app(request, name: str):
        plugin = runtime.plugins.get(name)
        if plugin is None:
            raise HTTPException(404, f"There is no app called {name!r}.")
        if "hx-request" in request.headers:
            return plugin.render(request)
        tab, location = new_tab_id(), page_location(name, request)  # a page view writes nothing, not even "opened"
        nav = NavBar(runtime.plugins["profiles"].menu(), list(runtime.plugins.values()),
                     runtime.broken, name)
        query = request.url.query  # e.g. a workflow run's key: the main area reloads the same view
        return Shell(title=plugin.display_name, tab=tab, nav=nav, main=plugin.render(request), location=location,
                     main_url=app_url(name) + (f"?{query}" if query else ""),
                     chat=chat_pane(runtime.chat, tab, location),
                     banner=banner(runtime))

    @app.get("/sync")
    async def sync(request):
        try:
            return live_sync_stream(runtime, request.query_params.get("tab"))
        except TooManyStreams as error:  # the tab's EventSource tries again, with backoff
            return PlainTextResponse(str(error), status_code=503, headers={"Retry-After": "5"})

    @app.get("/search")
    def search(q: str = ""):
        words = q.lower().split()
        found = [p for p in runtime.plugins.values()
                 if all(w in f"{p.name} {p.display_name} {p.description}".lower() for w in words)]
        if not words:
            return ""
        apps = Ul(*[Li(A(p.display_name, href=app_url(p.name)), Small(p.description)) for p in found]) \
            if found else Small("No app matches.")
        return apps, KnowledgeHits(runtime, q)

    @app.get("/log")
    def server_log():
        return PlainTextResponse(log_tail(runtime.config.log_path))  # the newest part: it goes into a prompt

    @app.get("/vendor/{name}")
    def vendor(name: str):
        path = vendor_path(name)
        if path is None or not path.is_file():
            raise HTTPException(404, f"{name} is not installed; run ./run setup.")
        return FileResponse(path, headers={"Cache-Control": "max-age=86400"})

    @app.get("/health")
    def health():
        return JSONResponse({"status": "ok", "pid": os.getpid(), "plugins": list(runtime.plugins),
                             "broken": [b.name for b in runtime.broken],
                             "tabs": runtime.broadcaster.count})


def add_chat_page_route(app: FastHTML, runtime: Runtime) -> None:
    @app.get("/chat/{conversation_id}")
    def chat_page(conversation_id: str):
        """One conversation full-size, the list beside it; shown, not made current (a GET writes nothing)."""
        conversation = conversation_or_404(runtime.chat, conversation_id)
        tab = new_tab_id()
        nav = NavBar(runtime.plugins["profiles"].menu(), list(runtime.plugins.values()), runtime.broken, None)
        return Shell(title=conversation["title"], tab=tab, nav=nav, main=ChatPageMain(runtime), main_url=None,
                     chat=chat_pane(runtime.chat, tab, shown=conversation), banner=banner(runtime),
                     chat_page=True)


def ChatPageMain(runtime: Runtime):
    """The main area of a chat page, seen when the chat is narrowed: the apps to go to."""
    return Div(H2("Apps"), Ul(*[Li(A(p.display_name or p.name, href=app_url(p.name)), " ", Small(p.description))
                                for p in runtime.plugins.values()]), cls="chat-page-apps")


def KnowledgeHits(runtime: Runtime, query: str):
    """The docs and code passages that best match a search, linked into the source viewer."""
    if len(query.strip()) < 3 or not runtime.db.value("SELECT 1 FROM chunks WHERE kind != 'event' LIMIT 1"):
        return ""
    hits = runtime.knowledge.search(query[:500], kinds=("doc", "code"), limit=5).hits
    return Div(Small("In the docs and code"),
               Ul(*[Li(A(f"{h.path}:{h.line_start}", href=source_url(h.path, h.line_start, h.line_end),
                         target="_blank"), " ", Small(h.title)) for h in hits]), cls="knowledge-hits") if hits else ""


def new_tab_id() -> str:
    """A fresh id for one browser tab (its live-sync stream skips the tab's own changes)."""
    return secrets.token_hex(8)


def live_sync_stream(runtime: Runtime, tab: str | None) -> StreamingResponse:
    """The Server-Sent Events stream one tab listens on for out-of-band swaps (TooManyStreams if all are taken)."""
    subscription = runtime.broadcaster.subscribe(tab)

    async def events():
        yield "retry: 1000\n: connected\n\n"
        while True:
            try:
                message = await subscription.get(timeout=SSE_HEARTBEAT)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if message is None:
                return
            yield message.encode()

    return SubscriptionStream(subscription, events(), media_type="text/event-stream",
                              headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


class SubscriptionStream(StreamingResponse):
    """A streamed response that closes its subscription however it ends, even if the tab left before it began."""

    def __init__(self, subscription: Subscription, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.subscription = subscription

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.subscription.close()


# ---- errors: a clear message, never a stack trace ----

def is_htmx(request) -> bool:
    return "hx-request" in request.headers


def error_response(request, status: int, message: str) -> Response:
    if is_htmx(request):
        return HTMLResponse(to_xml(Toast(message)), status_code=status)
    title = "Something went wrong" if status >= 500 else "Not possible"
    page = Html(Head(Title(f"{title} · Theseus"), *Headers()),
                Body(Main(H2(title), P(message), P(A("Back to Theseus", href="/")), cls="container error-page")))
    return HTMLResponse(to_xml(page), status_code=status)


async def operation_error(request, error: OperationError):
    return error_response(request, error.status, error.message)


async def http_error(request, error: HTTPException):
    return error_response(request, error.status_code, str(error.detail))


async def not_found(request, error):
    detail = getattr(error, "detail", None)
    message = detail if detail and detail != "Not Found" else f"There is nothing at {request.url.path}."
    return error_response(request, 404, message)


async def bad_method(request, error):
    return error_response(request, 405, f"{request.method} is not allowed on {request.url.path}.")


async def server_error(request, error):
    logger.opt(exception=error).error(f"unhandled error on {log_safe(request.method, 16)} "
                                      f"{log_safe(request.url.path, PATH_LIMIT)}")
    return error_response(request, 500, "An unexpected error happened; nothing was changed. "
                          "Details are in server.log.")

