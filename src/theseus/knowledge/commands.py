"""The knowledge commands of `theseus`: index (with a progress bar), eval retrieval, context."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import Config


def open_runtime(config: Config, log_name: str):
    """A runtime on the user's data dir, logging to a file (the terminal is for the command's output)."""
    from ..logs import setup_logging
    from ..runtime import Runtime

    setup_logging(config.data_dir / log_name, console=False)
    return Runtime(config)


def refresh_with_progress(knowledge, *, full: bool = False) -> None:
    """Refresh the index with a progress bar on stderr; --full embeds everything again."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if full:
        knowledge.index.clear()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("indexing", total=None)

        def progress(done: int, total: int, path: str) -> None:
            bar.update(task, completed=done, total=total, description=f"indexing {path[-48:]}")
        report = knowledge.refresh(progress)
    for path, reason in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {path}: {reason}")
    console.print(f"index: {report.summary()}")


def index_command(config: Config, *, full: bool) -> int:
    """`theseus index [--full]`: bring the knowledge index up to date and say what it holds."""
    runtime = open_runtime(config, "index.log")
    try:
        refresh_with_progress(runtime.knowledge, full=full)
        status = runtime.knowledge.status()
        chunks = ", ".join(f"{n} {kind}" for kind, n in sorted(status["chunks"].items())) or "nothing"
        print(f"knowledge index: {status['files']} files, chunks: {chunks}; embedder {status['embedder']}")
        return 0
    except Exception as error:  # an embedder that is down, a broken spec: say so, no stack trace
        print(f"error: indexing failed: {error}", file=sys.stderr)
        return 1
    finally:
        runtime.close()


def eval_retrieval_command(config: Config, path: Path) -> int:
    """`theseus eval retrieval FILE.jsonl` on the user's index (brought up to date first)."""
    from .evals import load_retrieval_cases, run_retrieval_eval

    try:
        cases = load_retrieval_cases(path)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    runtime = open_runtime(config, "eval.log")
    try:
        refresh_with_progress(runtime.knowledge)
        run_retrieval_eval(runtime.knowledge, cases)
        return 0
    finally:
        runtime.close()


def context_command(config: Config, message: str) -> int:
    """`theseus context ["MESSAGE"]`: print what Chip would see for that next message."""
    from ..chat.context import ContextTooLarge
    from .mind import context_text, next_context

    runtime = open_runtime(config, "context.log")
    try:
        print(context_text(next_context(runtime, message)))
        return 0
    except ContextTooLarge as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
