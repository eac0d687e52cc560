"""Which server serves a data dir right now, so a command of the same data dir can talk to it.

A serving app writes DATA/server.json (its process id and loopback URL) when it
starts and removes it when it stops; a second server of the same data dir leaves
a living one's record alone. `running_server` trusts the file only while that
process lives (a crashed server's record is ignored) and its /health says so
(a process id reused by another program is not a server).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from .security import WILDCARDS, host_name

RECORD_FILE = "server.json"
HEALTH_SECONDS = 3.0


def record_path(data_dir: Path) -> Path:
    return Path(data_dir) / RECORD_FILE


def local_url(config) -> str:
    """The server's URL from this machine: a wildcard bind is reached on loopback."""
    host = "127.0.0.1" if config.host in WILDCARDS else host_name(config.host)
    return f"http://{host}:{config.port}"


def announce(config) -> None:
    """Record this process as the data dir's server (replacing the file atomically), unless another living one
    is recorded."""
    path = record_path(config.data_dir)
    holder = read_record(path).get("pid")
    if holder != os.getpid() and alive(holder):
        return
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"pid": os.getpid(), "url": local_url(config)}), encoding="utf-8")
    os.replace(partial, path)


def withdraw(config) -> None:
    """Remove the record, if it is still this process's."""
    path = record_path(config.data_dir)
    if read_record(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_server(data_dir: Path) -> dict | None:
    """The record ({"pid", "url"}) of the server of this data dir, if its process lives."""
    record = read_record(record_path(data_dir))
    return record if isinstance(record.get("url"), str) and alive(record.get("pid")) else None


def answers(record: dict) -> bool:
    """Whether the recorded server answers its /health as that process."""
    try:
        response = httpx.get(f"{record['url']}/health", timeout=HEALTH_SECONDS)
        return response.status_code == 200 and response.json().get("pid") == record["pid"]
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
