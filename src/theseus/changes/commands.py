"""`theseus change apply|list|revert`: through the running server of the data dir when there is one (so the change
goes through its check, restart and verify), else offline with the same checks and a fresh process to verify."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..running import answers, running_server
from .files import ChangeError
from .service import Change, prepare

WAIT_SECONDS = 180.0  # how long the command waits for the server to restart and verify a change


def change_command(config, action: str, file: Path | None = None, path: str = "", number: int | None = None) -> int:
    """Run one `theseus change` action; 0 if it applied (or listed), 1 if not."""
    if action == "list":
        return list_changes(config)
    if action == "verify":
        return asyncio.run(verify(config))
    record = running_server(config.data_dir)
    url = record["url"] if record and answers(record) else None
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}  # a server beyond loopback
    try:
        if action == "apply":
            text = read_change(file)
            change = through_server(url, headers, "/changes/apply", {"text": text, "path": path}) if url else \
                asyncio.run(offline(config, lambda changes: changes.apply(prepare(config, text, path))))
        else:
            change = through_server(url, headers, f"/changes/{number}/revert", {}) if url else \
                asyncio.run(offline(config, lambda changes: changes.revert(number)))
    except (ChangeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(describe(change))
    return 0 if change["status"] == "applied" else 1


def read_change(file: Path) -> str:
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ChangeError(f"{file} is not UTF-8 text") from None


def through_server(url: str, headers: dict, route: str, body: dict) -> dict:
    """Post to the running server, then wait for the change's fate across its restart."""
    response = httpx.post(url + route, json=body, headers=headers, timeout=120)
    try:
        change = response.json()
    except ValueError:
        raise ChangeError(f"the server answered {response.status_code} {response.reason_phrase}") from None
    if "id" not in change:
        raise ChangeError(change.get("error") or f"the server answered {response.status_code}")
    deadline = time.monotonic() + WAIT_SECONDS
    while change["status"] == "restarting" and time.monotonic() < deadline:
        time.sleep(0.25)  # the command polls the server, which is restarting: no state to wait on here
        try:
            change = httpx.get(f"{url}/changes/{change['id']}.json", headers=headers, timeout=5).json()
        except (httpx.HTTPError, ValueError):
            continue
    return change


async def offline(config, work) -> dict:
    """Apply with this process's own runtime; a fresh process then starts the app on the new files and verifies."""
    from ..logs import setup_logging
    from ..runtime import Runtime

    setup_logging(config.data_dir / "change.log", console=False)
    runtime = Runtime(config)
    runtime.restart = lambda: subprocess.run([sys.executable, "-m", "theseus", "change", "verify", "--data",
                                              str(config.data_dir)], check=False)
    try:
        change = await work(runtime.changes)
        return runtime.changes.get(change.id).to_json()
    finally:
        runtime.close()


async def verify(config) -> int:
    """`theseus change verify` (the offline restart): start the app on the files as they are, and verify."""
    from ..app import create_app
    from ..logs import setup_logging
    from ..runtime import Runtime
    from .service import roll_back_pending

    setup_logging(config.data_dir / "change.log", console=False)
    try:
        runtime = Runtime(config)
        app = create_app(config, runtime)
    except Exception as error:
        roll_back_pending(config, error)
        return 1
    try:
        await runtime.changes.verify_pending(app)
    finally:
        runtime.close()
    return 0


def list_changes(config) -> int:
    from ..db import Database

    db = Database(config.db_path)
    try:
        rows = db.query("SELECT * FROM code_changes ORDER BY id DESC LIMIT 50")
    finally:
        db.close()
    for row in rows:
        print(describe(Change.from_row(row).to_json()))
    if not rows:
        print("No code change yet.")
    return 0


def describe(change: dict) -> str:
    files = ", ".join(f["path"] for f in change["files"])
    line = f"#{change['id']} {change['status']:10} {change['time'][:16].replace('T', ' ')} {change['actor']:5} " \
           f"{change['title']} ({files})"
    return line + (f"\n    {change['error']}" if change["error"] else "")
