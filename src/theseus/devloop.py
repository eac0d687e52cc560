"""The dev loop: watch the code, check it, and restart the server only with code that parses.

`theseus serve --watch` runs a supervisor (this module) in the parent process
and the server as a child process. A watchdog observer reports `.py` changes in
the package, `$THESEUS_DATA/apps/` and `$THESEUS_DATA/workflows/`; after a
quiet moment the supervisor AST-parses every changed file and then imports the
package once in a throwaway process. Only if both pass does it stop the child
gracefully (every tab is told "restarting" over SSE) and start a new one on the
same port. Otherwise the old code keeps serving and the problem (file:line,
message) goes into a status file in the data directory; the child follows that
file and shows it as a banner in every tab (and in server.log) until it is fixed.
The status file is the only channel between the two processes: nothing about
it is reachable over HTTP.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fasthtml.common import Code, Div, Li, Strong, Ul, to_xml
from loguru import logger
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .config import Config
from .events import Message
from .security import with_token

PACKAGE_DIR = Path(__file__).resolve().parent
BANNER_ID = "devloop-banner"
QUIET_SECONDS = 0.3  # a burst of saves becomes one restart once the tree was quiet this long
STATUS_POLL_SECONDS = 0.25  # how often the child looks at the status file
STOP_SECONDS = 10.0  # how long a graceful stop may take before the child is killed
PREFLIGHT_SECONDS = 60.0


@dataclass(frozen=True)
class Problem:
    """Why new code was not loaded: where and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or '?'}: {self.message}"


def is_source_checkout(package_dir: Path = PACKAGE_DIR) -> bool:
    """Whether Theseus runs from a checkout (not an installed site-packages copy)."""
    return not {"site-packages", "dist-packages"} & set(package_dir.parts)


def watched_dirs(config: Config) -> list[Path]:
    """The folders whose `.py` files make the server restart (user folders are created)."""
    for folder in (config.user_apps_dir, config.user_workflows_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return [PACKAGE_DIR, config.user_apps_dir.resolve(), config.user_workflows_dir.resolve()]


def check_syntax(paths) -> list[Problem]:
    """AST-parse each existing file; the problems found (a deleted file is no problem)."""
    problems = []
    for path in sorted(Path(p) for p in paths):
        try:
            source = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as error:
            problems.append(Problem(str(path), None, f"cannot read: {error.strerror}"))
            continue
        try:
            ast.parse(source, filename=str(path))
        except SyntaxError as error:
            problems.append(Problem(str(path), error.lineno, error.msg))
        except ValueError as error:  # e.g. a NUL byte
            problems.append(Problem(str(path), None, str(error)))
    return problems


def package_modules(paths) -> list[str]:
    """Module names of the changed files inside the package (user plugins are imported by the server)."""
    names = []
    for path in map(Path, paths):
        try:
            relative = path.resolve().relative_to(PACKAGE_DIR.parent)
        except ValueError:
            continue
        if path.exists() and path.suffix == ".py":
            parts = relative.with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(set(names))


def preflight(paths) -> list[Problem]:
    """Import the app and the changed package modules in a throwaway process; the problem if that fails."""
    modules = ["theseus.app", "theseus.server", *package_modules(paths)]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    try:
        result = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True,
                                timeout=PREFLIGHT_SECONDS, cwd=PACKAGE_DIR.parent)
    except subprocess.TimeoutExpired:
        return [Problem("theseus", None, f"importing the app took over {PREFLIGHT_SECONDS:.0f} s")]
    if result.returncode == 0:
        return []
    return [import_problem(result.stderr)]


def import_problem(traceback_text: str) -> Problem:
    """The innermost file:line of a traceback and its last line."""
    lines = traceback_text.strip().splitlines() or ["the app failed to import"]
    path, line = "theseus", None
    for text in lines:
        text = text.strip()
        if text.startswith('File "'):
            where = text[6:].split('", line ')
            if len(where) == 2 and "<frozen" not in where[0]:
                path, line = where[0], int(where[1].split(",")[0])
    return Problem(path, line, lines[-1])


class StatusFile:
    """The supervisor's problems, as JSON in the data directory, for the server to show."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def of(cls, config: Config) -> "StatusFile":
        return cls(config.data_dir / "devloop.json")

    def write(self, problems: list[Problem]) -> None:
        """Replace the file atomically, so the reader never sees half of it."""
        partial = self.path.with_suffix(".tmp")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"problems": [asdict(p) for p in problems]}), encoding="utf-8")
        os.replace(partial, self.path)

    def read(self) -> list[Problem]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Problem(p["path"], p.get("line"), p["message"]) for p in data["problems"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def stamp(self) -> tuple[int, int] | None:
        """What changes when the file is rewritten."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# ---- in the server (child) process ----

def DevBanner(problems: list[Problem], **attrs):
    """The dev loop's banner: why the server still runs the old code (empty when all is well)."""
    if not problems:
        return Div(id=BANNER_ID, cls="devloop-banner", hidden=True, **attrs)
    return Div(Strong("Not restarted: the new code has errors; the old code keeps running."),
               Ul(*[Li(Code(f"{p.path}:{p.line or '?'}"), f" {p.message}") for p in problems]),
               id=BANNER_ID, cls="devloop-banner", role="alert", **attrs)


def banner(runtime) -> Div:
    """The banner for a new page."""
    status = runtime.dev_status
    return DevBanner(status.read() if status else [])


def follow_status(runtime) -> asyncio.Task | None:
    """In a supervised server: show every change of the status file in every tab and in the log."""
    status: StatusFile | None = runtime.dev_status
    if status is None:
        return None

    async def follow():
        seen, shown = status.stamp(), status.read()
        while True:
            await asyncio.sleep(STATUS_POLL_SECONDS)
            if status.stamp() == seen:
                continue
            seen, problems = status.stamp(), status.read()
            if problems == shown:
                continue
            for problem in problems:
                logger.error(f"dev loop: not restarted: {problem}")
            if not problems:
                logger.info("dev loop: the code is fixed; restarting")
            shown = problems
            runtime.broadcaster.publish(Message("sync", to_xml(DevBanner(problems, hx_swap_oob="true"))))
    return asyncio.create_task(follow())


# ---- in the supervisor (parent) process ----

class Changes(FileSystemEventHandler):
    """Collects changed `.py` paths from the observer; `wait` returns a batch once it is quiet."""

    def __init__(self):
        self.paths: set[str] = set()
        self.last = 0.0
        self.condition = threading.Condition()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [p for p in (event.src_path, getattr(event, "dest_path", "")) if is_code(p)]
        if paths:
            with self.condition:
                self.paths.update(map(os.fsdecode, paths))
                self.last = time.monotonic()
                self.condition.notify_all()

    def wait(self, timeout: float) -> set[str]:
        """The changed paths after QUIET_SECONDS without news; empty if none came within timeout."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while not self.paths or time.monotonic() - self.last < QUIET_SECONDS:
                left = deadline - time.monotonic()
                if left <= 0:
                    return set()
                quiet = QUIET_SECONDS - (time.monotonic() - self.last) if self.paths else left
                self.condition.wait(max(0.01, min(left, quiet)))
            batch, self.paths = self.paths, set()
        return batch


def is_code(path) -> bool:
    name = os.path.basename(os.fsdecode(path))
    return name.endswith(".py") and not name.startswith((".", "#")) and "__pycache__" not in os.fsdecode(path)


class Supervisor:
    """Runs the server as a child process and restarts it when the code changes and is sound."""

    def __init__(self, config: Config, dirs: list[Path] | None = None):
        self.config = config
        self.dirs = dirs if dirs is not None else watched_dirs(config)
        self.status = StatusFile.of(config)
        self.changes = Changes()
        self.failing: set[str] = set()  # files with syntax errors: checked again with every batch
        self.child: subprocess.Popen | None = None
        self.stopping = threading.Event()

    def command(self) -> list[str]:
        config = self.config
        return [sys.executable, "-m", "theseus", "serve", "--no-watch", "--supervised", "--host", config.host,
                "--port", str(config.port), "--data", str(config.data_dir)]

    def start_child(self) -> None:
        token = {"THESEUS_TOKEN": self.config.token} if self.config.token else {}  # the same token after restarts
        self.child = subprocess.Popen(self.command(), env={**os.environ, **token})
        logger.info(f"dev loop: server started (pid {self.child.pid}) on {self.config.origin}")

    def stop_child(self) -> None:
        """Stop the server gracefully (its tabs are told it restarts); kill it if it hangs."""
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning(f"dev loop: the server did not stop within {STOP_SECONDS:.0f} s; killing it")
            child.kill()
            child.wait()

    def handle(self, batch: set[str]) -> None:
        """Check a batch of changed files; restart, or keep the old code and report why."""
        names = ", ".join(sorted(Path(p).name for p in batch))
        logger.info(f"dev loop: changed: {names}")
        to_check = batch | self.failing
        problems = check_syntax(to_check) or preflight(to_check)
        if problems:
            self.failing = {p.path for p in problems if p.path in to_check}
            for problem in problems:
                logger.error(f"dev loop: not restarting: {problem}")
            self.status.write(problems)
            return
        self.failing = set()
        if self.status.read():
            self.status.write([])
        self.restart()

    def restart(self) -> None:
        logger.info("dev loop: restarting the server")
        self.stop_child()
        self.start_child()

    def run(self) -> int:
        """Serve and watch until SIGINT or SIGTERM; return the exit code."""
        self.status.remove()
        observer = Observer()
        for folder in self.dirs:
            observer.schedule(self.changes, str(folder), recursive=True)
        observer.start()
        logger.info("dev loop: watching " + ", ".join(str(d) for d in self.dirs))
        previous = {sig: signal.signal(sig, lambda *_: self.stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start_child()
            while not self.stopping.is_set():
                batch = self.changes.wait(0.5)
                if batch:
                    self.handle(batch)
                self.notice_exit()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            observer.stop()
            self.stop_child()
            observer.join(5)
            self.status.remove()
        return 0

    def notice_exit(self) -> None:
        """Say so once when the server exits by itself (it is started again by the next sound change)."""
        if self.child is not None and self.child.poll() is not None:
            logger.error(f"dev loop: the server exited (code {self.child.returncode}); "
                         "fix the code and save: it restarts by itself")
            self.child = None


def supervise(config: Config) -> int:
    """`theseus serve --watch`: the supervisor's entry point."""
    logger.remove()
    logger.add(sys.stderr, format="{time:HH:mm:ss} | {level: <7} | {message}", level="INFO")
    return Supervisor(with_token(config)).run()
