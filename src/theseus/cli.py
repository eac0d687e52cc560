"""The `theseus` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from . import __version__
from .config import Config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="theseus",
        description="Theseus: a local-first web app where a local LLM (Chip) rides along with you.",
        epilog="Environment: THESEUS_DATA (data dir, default ./data), THESEUS_PORT, THESEUS_HOST, "
               "THESEUS_ALLOWED_HOSTS (more host names to answer to), THESEUS_TOKEN (access token beyond "
               "loopback), THESEUS_LLM (backend spec), THESEUS_MODELS (model dir, default $THESEUS_DATA/models), "
               "THESEUS_TEMPERATURE (how freely Chip words replies, 0-2, default 0.7).")
    parser.add_argument("--version", action="version", version=f"theseus {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the app (default http://127.0.0.1:5001)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; beyond loopback every request "
                                      "needs the token of the link printed at start)")
    serve.add_argument("--port", type=int, help="port to serve on (default 5001)")
    serve.add_argument("--data", help="data directory: database, server.log, models, user plugins")
    serve.add_argument("--watch", action=argparse.BooleanOptionalAction, default=None,
                       help="restart when a .py file of the package or of DATA/apps or DATA/workflows "
                            "changes, once every changed file parses (default: on in a source checkout)")
    serve.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)  # the dev loop's child
    chat = commands.add_parser("chat", help="one turn with Chip through the same pipeline as the web chat")
    chat.add_argument("message", help="what to say to Chip")
    chat.add_argument("--data", help="data directory (default ./data or THESEUS_DATA)")
    chat.add_argument("--conversation", type=int, metavar="ID", help="continue this conversation (default: current)")
    chat.add_argument("--llm", help="backend spec for this turn (default THESEUS_LLM or embedded)")
    evaluate = commands.add_parser("eval", help="measure Chip: eval commands|sessions|retrieval FILE.jsonl")
    evaluate.add_argument("kind", choices=["commands", "sessions", "retrieval"], help="what to evaluate")
    evaluate.add_argument("file", type=Path, help="JSONL cases (see evals/commands.jsonl, evals/sessions.jsonl, "
                                                  "evals/retrieval.jsonl)")
    evaluate.add_argument("--llm", help="backend spec (default THESEUS_LLM or embedded)")
    evaluate.add_argument("--apps", type=Path, help="commands, sessions: a folder of plugin files to load in every "
                                                    "case (e.g. examples/apps for evals/commands-contacts.jsonl)")
    evaluate.add_argument("--data", help="data directory (commands: only its models are used, cases run in scratch "
                                         "databases; retrieval: its knowledge index, brought up to date first)")
    index = commands.add_parser("index", help="bring Chip's knowledge index (docs, source, action log) up to date")
    index.add_argument("--full", action="store_true", help="forget the index and embed everything again")
    index.add_argument("--data", help="data directory (default ./data or THESEUS_DATA)")
    context = commands.add_parser("context", help="show exactly what Chip would see for the next message")
    context.add_argument("message", nargs="?", default="", help="a message to preview (it is not sent)")
    context.add_argument("--data", help="data directory (default ./data or THESEUS_DATA)")
    routes = commands.add_parser("routes", help="list every HTTP route and every registered operation")
    routes.add_argument("--data", help="data directory (its user plugins are included)")
    logs = commands.add_parser("logs", help="print the current server.log")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines as they are written")
    logs.add_argument("--data", help="data directory (default ./data or THESEUS_DATA)")
    mcp = commands.add_parser("mcp", help="serve MCP over stdio for an agent (forwarded to the running server of "
                                          "the data dir, if one runs); see docs/mcp.md")
    mcp.add_argument("--token", action="store_true", help="print the data dir's token for MCP clients over HTTP "
                                                          "(Authorization: Bearer TOKEN on /mcp) and exit")
    mcp.add_argument("--data", help="data directory (default ./data or THESEUS_DATA)")
    change = commands.add_parser("change", help="apply, list or revert a code change (checked, restarted, verified, "
                                                "rolled back if it breaks the app)")
    change.add_argument("action", choices=["apply", "list", "revert", "verify"],
                        help="apply FILE [PATH] | list | revert ID (verify: start the app on the files as they are "
                             "and verify a change waiting for it; apply runs it when no server runs)")
    change.add_argument("what", nargs="*", help="apply: FILE (a unified diff, or a whole file with PATH, where it "
                                                "goes: apps/..., workflows/..., src/theseus/..., docs/...); revert: ID")
    change.add_argument("--data", help="data directory (default ./data or THESEUS_DATA)")
    models = commands.add_parser("models", help="show the LLM backend, its model and whether it is ready")
    models.add_argument("--setup", action="store_true",
                        help="assemble and verify the default embedded model now (once; later runs are instant)")
    models.add_argument("--data", help="data directory (models live in DATA/models unless THESEUS_MODELS is set)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        config = Config.from_env(host=getattr(args, "host", None), port=getattr(args, "port", None),
                                 data_dir=args.data, llm=getattr(args, "llm", None))
    except ValueError as error:
        parser.error(str(error))
    if args.command == "serve":
        return serve_command(config, watch=args.watch, supervised=args.supervised)
    if args.command == "routes":
        return routes_command(config)
    if args.command == "logs":
        return logs_command(config, follow=args.follow)
    if args.command == "models":
        return models_command(config, setup=args.setup)
    if args.command == "chat":
        return asyncio.run(chat_command(config, args.message, args.conversation))
    if args.command == "mcp":
        return mcp_command(config, token=args.token)
    if args.command == "change":
        return run_change(parser, config, args.action, args.what)
    if args.command == "eval" and args.kind == "retrieval":
        from .knowledge.commands import eval_retrieval_command
        return eval_retrieval_command(config, args.file)
    if args.command == "eval":
        return asyncio.run(eval_command(config, args.file, args.apps, args.kind))
    if args.command in ("index", "context"):
        from .knowledge.commands import context_command, index_command
        return index_command(config, full=args.full) if args.command == "index" else \
            context_command(config, args.message)
    return 0


def serve_command(config: Config, *, watch: bool | None, supervised: bool) -> int:
    """Serve; with watch (the default in a source checkout), under the dev loop's supervisor."""
    from .devloop import is_source_checkout, supervise
    from .server import serve

    if watch is None:
        watch = is_source_checkout()
    if watch and not supervised:
        return supervise(config)
    return serve(config, supervised=supervised)


async def eval_command(config: Config, path: Path, apps: Path | None = None, kind: str = "commands") -> int:
    """Run an eval file (commands or sessions) against the configured backend; 1 if the file or the backend is
    unusable."""
    from .evals import load_cases, run_commands_eval
    from .session_evals import load_sessions, run_sessions_eval
    from .llm.base import BackendError
    from .llm.spec import make_backend
    from .logs import setup_logging

    try:
        cases = load_sessions(path) if kind == "sessions" else load_cases(path)
        if apps is not None and not apps.is_dir():
            raise ValueError(f"{apps} is not a folder of plugins")
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    setup_logging(config.data_dir / "eval.log", console=False)
    backend = make_backend(config)
    try:
        await backend.wait_ready(120)
        await (run_sessions_eval if kind == "sessions" else run_commands_eval)(cases, backend, apps=apps)
        return 0
    except (BackendError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await backend.close()


async def chat_command(config: Config, message: str, conversation_id: int | None) -> int:
    """Send one message, stream Chip's reply to stdout; 1 if Chip could not answer."""
    from .chat.service import ChatError
    from .logs import setup_logging
    from .runtime import Runtime

    setup_logging(config.data_dir / "chat.log", console=False)
    runtime = Runtime(config)
    try:
        if conversation_id is not None:
            runtime.chat.conversations.switch(conversation_id)
        await runtime.backend.start()
        async for piece in runtime.chat.send(message):
            print(piece, end="", flush=True)
        print()
        return 0
    except (ChatError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await runtime.backend.close()
        runtime.close()


def run_change(parser: argparse.ArgumentParser, config: Config, action: str, what: list[str]) -> int:
    """`theseus change ...` after its arguments are checked."""
    from .changes.commands import change_command

    if action == "apply" and len(what) in (1, 2):
        return change_command(config, "apply", file=Path(what[0]), path=what[1] if len(what) == 2 else "")
    if action == "revert" and len(what) == 1 and what[0].lstrip("#").isdigit():
        return change_command(config, "revert", number=int(what[0].lstrip("#")))
    if action in ("list", "verify") and not what:
        return change_command(config, action)
    parser.error("usage: theseus change apply FILE [PATH] | theseus change list | theseus change revert ID")


def mcp_command(config: Config, *, token: bool) -> int:
    """Serve MCP over stdio (its log goes to DATA/mcp.log: stdout is the protocol's); with token, print the
    token for HTTP clients."""
    from .logs import setup_logging
    from .mcp_server.server import serve_stdio
    from .security import mcp_token

    if token:
        print(mcp_token(config.data_dir))
        return 0
    setup_logging(config.data_dir / "mcp.log", console=False)
    asyncio.run(serve_stdio(config))
    return 0


def routes_command(config: Config) -> int:
    """Print the app's routes, then its operations (the prototype's print_routes habit)."""
    from starlette.routing import Mount, WebSocketRoute

    from .app import create_app
    from .logs import setup_logging
    from .runtime import Runtime

    setup_logging(config.data_dir / "routes.log", console=False)
    runtime = Runtime(config)
    app = create_app(config, runtime)
    for route in app.routes:
        methods = "WS" if isinstance(route, WebSocketRoute) else "MOUNT" if isinstance(route, Mount) else \
            ",".join(sorted(m for m in (route.methods or ()) if m != "HEAD"))
        print(f"{methods:10} {route.path}")
    print()
    for op in runtime.registry.operations.values():
        flags = " (destructive)" if op.destructive else ""
        params = ", ".join(f"{p.name}: {p.kind}{'' if p.required else '?'}" for p in op.params)
        print(f"{op.name}({params}){flags}  {op.description}")
    runtime.close()
    return 0


def logs_command(config: Config, *, follow: bool) -> int:
    """Print server.log; with follow, keep printing what is appended (until Ctrl-C)."""
    import time

    path = config.log_path
    if not path.exists():
        print(f"error: there is no {path} yet; start the server with theseus serve", file=sys.stderr)
        return 1
    with path.open(encoding="utf-8", errors="replace") as log:
        sys.stdout.write(log.read())
        try:
            while follow:
                line = log.readline()
                if line:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    return 0


def models_command(config: Config, *, setup: bool) -> int:
    """Print the active backend and model; with setup, assemble the default model first."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from .llm.models import DEFAULT_MODEL, ModelError, ensure_model
    from .llm.spec import SPEC_FORMS, parse_spec

    console = Console(stderr=True)
    spec = parse_spec(config.llm)
    print(f"active backend: {config.llm}")
    if setup and spec.kind == "embedded" and not spec.model:
        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("model", total=1.0)
            try:
                path = ensure_model(config.model_dir, DEFAULT_MODEL,
                                    lambda phase, done: bar.update(task, description=phase, completed=done))
            except ModelError as error:
                console.print(f"[red]error:[/red] {error}")
                return 1
        print(f"model: {DEFAULT_MODEL.name} ready at {path}")
    elif spec.kind == "embedded":
        path = spec.model or config.model_dir / DEFAULT_MODEL.filename
        print(f"model: {path} ({'present' if Path(path).exists() else 'not assembled yet: run theseus models --setup'})")
    print(f"backends:\n{SPEC_FORMS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
