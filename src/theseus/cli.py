"""The `theseus` command."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .config import Config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="theseus",
        description="Theseus: a local-first web app where a local LLM (Chip) rides along with you.",
        epilog="Environment: THESEUS_DATA (data dir, default ./data), THESEUS_PORT, THESEUS_HOST, "
               "THESEUS_LLM (backend spec), THESEUS_MODELS (model dir, default $THESEUS_DATA/models).")
    parser.add_argument("--version", action="version", version=f"theseus {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the app (default http://127.0.0.1:5001)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; keep it on loopback)")
    serve.add_argument("--port", type=int, help="port to serve on (default 5001)")
    serve.add_argument("--data", help="data directory: database, server.log, models, user plugins")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        config = Config.from_env(host=args.host, port=args.port, data_dir=args.data)
    except ValueError as error:
        parser.error(str(error))
    if args.command == "serve":
        from .server import serve
        return serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
