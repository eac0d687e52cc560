"""`theseus eval commands FILE.jsonl`: how well Chip maps requests to commands, judged by effect.

Each case loads its state into a scratch database (never the user's), runs the
request through the same command path as the chat, and compares the effect of
the decoded command with the expected one. Destructive commands are counted as
proposed (nothing asks for a confirmation click here).
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from .actions import OperationError
from .chat.commands import Command, decode_command, validate
from .config import Config
from .llm.base import Backend, BackendError
from .runtime import Runtime

OPERATIONS = ("insert", "update", "toggle", "delete", "list", "sort", "none")


def load_jsonl(path: Path, is_valid, want: str = "") -> list[dict]:
    """The cases of a JSONL file, each checked by `is_valid`; a clear ValueError names a bad line."""
    cases = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
            assert is_valid(case)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise ValueError(f"{path}:{number}: not a valid case{want}") from None
        cases.append(case)
    if not cases:
        raise ValueError(f"{path} has no cases")
    return cases


def load_cases(path: Path) -> list[dict]:
    """The command cases of a JSONL file."""
    return load_jsonl(path, lambda case: case["expect"]["operation"] in OPERATIONS and isinstance(case["request"], str))


def normalized(text: str) -> str:
    """Lower case, without emoji, quotes and extra spaces (names are compared by their words)."""
    text = re.sub(r"[^\w\s#'.:,&/-]", " ", text.lower()).replace("'", " ")
    return " ".join(text.split())


def scratch_runtime(folder: Path, backend: Backend, state: dict) -> Runtime:
    runtime = Runtime(Config(data_dir=folder), backend)
    with runtime.db.transaction():
        for priority, task in enumerate(state.get("tasks", [])):
            runtime.db.conn.execute("INSERT INTO tasks (id, name, done, priority, profile_id) VALUES (?, ?, ?, ?, ?)",
                                    (task["id"], task["name"], int(task.get("done", False)), priority,
                                     runtime.profile_id))
    return runtime


def judge(runtime: Runtime, case: dict, command: Command) -> tuple[bool, str]:
    """Whether the command has the expected effect (applied to the scratch database)."""
    expect = case["expect"]
    wanted, args = expect["operation"], expect.get("args", {})
    got = command.operation.split(".")[-1]
    if got != wanted:
        return False, f"expected {wanted}"
    if wanted in ("none", "list"):
        return True, ""
    if wanted == "delete":
        return command.args.get("id") == args["id"], f"expected id {args['id']}"
    before = {t["id"]: t for t in runtime.db.query("SELECT * FROM tasks")}
    outcome = runtime.registry.execute(command.operation, command.args, actor="llm")
    after = {t["id"]: t for t in runtime.db.query("SELECT * FROM tasks")}
    if wanted == "insert":
        new = [t for i, t in after.items() if i not in before]
        return bool(new) and normalized(args["name"]) in normalized(new[0]["name"]), f"expected name ~ {args['name']!r}"
    if wanted == "toggle":
        flipped = {i for i in before if before[i]["done"] != after[i]["done"]}
        return flipped == {args["id"]}, f"expected #{args['id']} flipped"
    if wanted == "update":
        return (outcome.value["id"] == args["id"] and normalized(args["name"]) in normalized(after[args["id"]]["name"]),
                f"expected #{args['id']} ~ {args['name']!r}")
    order = [t["id"] for t in runtime.db.query("SELECT id FROM tasks ORDER BY priority, id")]
    return order == args["ids"], f"expected order {args['ids']}"


async def run_case(case: dict, backend: Backend, folder: Path) -> dict:
    runtime = scratch_runtime(folder, backend, case["state"])
    started = time.perf_counter()
    try:
        command = await decode_command(runtime, backend, case["request"])
        seconds = time.perf_counter() - started
        validate(runtime, command)
        passed, detail = judge(runtime, case, command)
        return {"passed": passed, "detail": "" if passed else detail, "seconds": seconds, "invalid": False,
                "command": command}
    except OperationError as error:  # the model chose arguments the registry refuses
        return {"passed": False, "detail": f"invalid: {error.message}", "seconds": time.perf_counter() - started,
                "invalid": True, "command": None}
    except BackendError as error:
        return {"passed": False, "detail": f"model failed: {error}", "seconds": time.perf_counter() - started,
                "invalid": True, "command": None}
    finally:
        runtime.close()


async def run_commands_eval(cases: list[dict], backend: Backend, out=print) -> dict:
    """Run every case; print one line each, then per-operation figures and `accuracy: N/M (P%)` last."""
    results, by_op = [], defaultdict(list)
    for number, case in enumerate(cases, 1):
        with tempfile.TemporaryDirectory(prefix="theseus-eval-") as folder:
            result = await run_case(case, backend, Path(folder))
        results.append(result)
        by_op[case["expect"]["operation"]].append(result)
        command = result["command"]
        shown = f"{command.operation} {json.dumps(command.args, ensure_ascii=False)}" if command else "-"
        out(f"{'PASS' if result['passed'] else 'FAIL'} {number:3} {case['expect']['operation']:7} "
            f"{result['seconds']:5.2f}s  {case['request']!r} -> {shown}"
            + (f"  ({result['detail']})" if result["detail"] else ""))
    for op in OPERATIONS:
        if by_op[op]:
            passed = sum(r["passed"] for r in by_op[op])
            median = statistics.median(r["seconds"] for r in by_op[op])
            out(f"  {op:7} {passed}/{len(by_op[op])}  median {median:.2f}s")
    passed = sum(r["passed"] for r in results)
    out(f"schema-invalid commands: {sum(r['invalid'] for r in results)}; "
        f"median latency {statistics.median(r['seconds'] for r in results):.2f}s")
    out(f"accuracy: {passed}/{len(results)} ({100 * passed / max(1, len(results)):.0f}%)")
    return {"passed": passed, "total": len(results), "results": results}
