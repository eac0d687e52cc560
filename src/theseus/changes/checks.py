"""The checks of a change: before writing (every Python file parses, and the app and each changed plugin import in
a throwaway process, on a copy with the new files), and after the restart (the new process's health).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import httpx

from ..devloop import PACKAGE_DIR, PREFLIGHT_SECONDS, Problem, import_problem
from ..running import local_url
from .diffs import Edit
from .files import roots

IMPORT_CHECK = """
import importlib, sys
from theseus.plugins import import_file, plugin_classes
for name in ("theseus.app", "theseus.server"):
    importlib.import_module(name)
for index, path in enumerate(sys.argv[1:]):
    plugin_classes(import_file(f"theseus_change_check_{index}", __import__("pathlib").Path(path)))
"""


def syntax_problems(edits: list[Edit]) -> list[Problem]:
    """Each new Python file that does not parse."""
    problems = []
    for edit in edits:
        if edit.after is None or not edit.name.endswith(".py"):
            continue
        try:
            ast.parse(edit.after, filename=edit.name)
        except SyntaxError as error:
            problems.append(Problem(edit.name, error.lineno, error.msg))
        except ValueError as error:
            problems.append(Problem(edit.name, None, str(error)))
    return problems


def import_problems(edits: list[Edit]) -> list[Problem]:
    """Import the app (with the changed package files) and each changed plugin in a throwaway process, on a copy:
    nothing real is written. The problem, with its file and line as the change names them."""
    code = [e for e in edits if e.name.endswith(".py") and e.after is not None]
    if not code:
        return []
    with tempfile.TemporaryDirectory(prefix="theseus-change-") as tmp:
        root = Path(tmp)
        shutil.copytree(PACKAGE_DIR, root / "src/theseus", ignore=shutil.ignore_patterns("__pycache__"))
        plugins = []
        for edit in code:
            path = root / edit.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(edit.after, encoding="utf-8")
            if not edit.name.startswith("src/"):
                plugins.append(str(path))
        try:
            result = subprocess.run([sys.executable, "-c", IMPORT_CHECK, *plugins], capture_output=True, text=True,
                                    timeout=PREFLIGHT_SECONDS, cwd=root, env=check_env(root))
        except subprocess.TimeoutExpired:
            return [Problem("theseus", None, f"importing the changed app took over {PREFLIGHT_SECONDS:.0f} s")]
        if result.returncode == 0:
            return []
        problem = import_problem(result.stderr)
        return [Problem(named(problem.path, root), problem.line, problem.message)]


def check_env(root: Path) -> dict:
    import os
    return {**os.environ, "PYTHONPATH": str(root / "src"), "PYTHONDONTWRITEBYTECODE": "1"}


def named(path: str, root: Path) -> str:
    """A path in the copy as the change names it."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def problems_before_writing(edits: list[Edit]) -> list[Problem]:
    return syntax_problems(edits) or import_problems(edits)


async def health_problems(app, plugins_before: list[str], broken_before: list[str]) -> list[Problem]:
    """In the new process: every plugin that loaded before still loads (and none newly fails to), and each app
    page renders without a 5xx (a failing page: where it raised, and why)."""
    runtime = app.state.runtime
    problems = [Problem(b.source, None, b.error) for b in runtime.broken if b.source not in broken_before]
    problems += [Problem(name, None, f"the {name} app no longer loads") for name in plugins_before
                 if name not in runtime.plugins and not problems]
    token = app.state.access.token  # bound beyond loopback, the pages want it, as from a browser
    transport = httpx.ASGITransport(app=app)  # an exception in a page comes back here, with its traceback
    async with httpx.AsyncClient(transport=transport, base_url=local_url(runtime.config),
                                 headers={"Authorization": f"Bearer {token}"} if token else {}) as client:
        for name in runtime.plugins:
            try:
                response = await client.get(f"/apps/{name}")
            except Exception as error:
                problems.append(raised(error, f"the {name} page fails", runtime.config))
                continue
            if response.status_code >= 400:
                problems.append(Problem(f"/apps/{name}", None, f"the {name} page answers {response.status_code}"))
    return problems


def raised(error: BaseException, what: str, config) -> Problem:
    """Where an exception was raised (the innermost frame, as a change names its file) and why."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return Problem(change_name(Path(frame.filename), config), frame.lineno,
                   f"{what}: {type(error).__name__}: {error}")


def change_name(path: Path, config) -> str:
    """A file's name as a change names it ("apps/notes.py"), or its path if it is in no root."""
    for name, root in roots(config).items():
        if path.resolve().is_relative_to(root.resolve()):
            return f"{name}/{path.resolve().relative_to(root.resolve()).as_posix()}"
    return str(path)
