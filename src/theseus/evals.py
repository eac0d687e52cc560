"""`theseus eval commands FILE.jsonl`: how well Chip maps requests to commands, for any app.

A case: `{"app": "contacts", "state": {"contacts": [rows]}, "request": "...",
"expect": {"operation": "contacts.update", "args": {"id": 4, "phone": "555-0100"}}}`.
Each case loads its state into a scratch data dir (never the user's; the
plugins of `--apps DIR` are copied in), runs the request from a tab showing
`app` through the same command path as the chat, and compares the command
with the expected one: the operation, each expected argument (ids exactly,
text by its words: what the person meant must be in what Chip wrote), and
that no other argument was written (a field the message did not give is
"invented", and counted). Destructive commands are counted as proposed
(nothing asks for a confirmation click here).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from .actions import OperationError
from .chat.commands import Plan, decode_plan, validate
from .config import Config
from .llm.base import Backend, BackendError
from .location import Location
from .runtime import Runtime


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
    return load_jsonl(path, lambda case: isinstance(case["request"], str) and isinstance(case["app"], str)
                      and isinstance(case["expect"]["operation"], str) and isinstance(case.get("state", {}), dict)
                      and isinstance(case["expect"].get("args", {}), dict))


def normalized(text) -> str:
    """Lower case, without emoji, quotes and extra spaces (text is compared by its words)."""
    text = re.sub(r"[^\w\s#'.:,&/@-]", " ", str(text).lower()).replace("'", " ")
    return " ".join(text.strip(" .,:").split())


def scratch_runtime(folder: Path, backend: Backend, state: dict, apps: Path | None = None) -> Runtime:
    """A runtime on a fresh data dir with the user plugins of `apps` and the state's rows, by app."""
    if apps is not None:
        shutil.copytree(apps, folder / "apps", ignore=shutil.ignore_patterns("__pycache__"))
    runtime = Runtime(Config(data_dir=folder, knowledge=False), backend)
    missing = sorted(set(state) - set(runtime.plugins))
    if missing:
        runtime.close()
        raise ValueError(f"no app called {missing[0]!r} is loaded (its plugin file goes in the folder given "
                         "with --apps)")
    with runtime.db.transaction():
        for name, rows in state.items():
            app = runtime.plugins[name]
            for priority, row in enumerate(rows):
                extra = {"priority": priority} | ({"profile_id": runtime.profile_id} if app.per_profile else {})
                runtime.db.table(app.table).insert({**row, **extra})
    return runtime


def judge(case: dict, plan: Plan) -> tuple[bool, str, list[str]]:
    """(passed, why not, the arguments written that the message did not give)."""
    expect = case["expect"]
    wanted, args = expect["operation"], expect.get("args", {})
    if plan.ask:  # a question changes nothing: right when nothing was to be done
        return wanted == "none", "" if wanted == "none" else f"Chip asked: {plan.ask!r}", []
    if wanted == "none" or plan.is_none:
        passed = plan.is_none and wanted == "none"
        return passed, "" if passed else f"expected {wanted}", []
    if len(plan.commands) != 1 or plan.commands[0].operation != wanted:
        return False, f"expected {wanted}", []
    got = {k: v for k, v in plan.commands[0].args.items() if v not in (None, "")}
    invented = sorted(set(got) - set(args))
    wrong = [k for k, v in args.items() if not matches(v, got.get(k))]
    if wrong or invented:
        return False, "; ".join([f"expected {k}={args[k]!r}" for k in wrong] +
                                [f"wrote {k}={got[k]!r}, not given" for k in invented]), invented
    return True, "", []


def matches(expected, got) -> bool:
    """Whether Chip's value is what was meant: ids and lists exactly, text by containment of its words."""
    if isinstance(expected, str):
        return got is not None and normalized(expected) in normalized(got)
    return expected == got


async def run_case(case: dict, backend: Backend, folder: Path, apps: Path | None = None) -> dict:
    runtime = scratch_runtime(folder, backend, case.get("state", {}), apps)
    started = time.perf_counter()
    try:
        plan = await decode_plan(runtime, backend, case["request"], location=Location(case["app"]))
        seconds = time.perf_counter() - started
        for command in plan.commands:
            validate(runtime, command)
        passed, detail, invented = judge(case, plan)
        return {"passed": passed, "detail": detail, "seconds": seconds, "invalid": False, "plan": plan,
                "invented": invented}
    except OperationError as error:  # the model chose arguments the registry refuses
        return {"passed": False, "detail": f"invalid: {error.message}", "seconds": time.perf_counter() - started,
                "invalid": True, "plan": None, "invented": []}
    except BackendError as error:
        return {"passed": False, "detail": f"model failed: {error}", "seconds": time.perf_counter() - started,
                "invalid": True, "plan": None, "invented": []}
    finally:
        runtime.close()


def plan_text(plan: Plan | None) -> str:
    """A decoded plan in one line: its commands, the question it asks, or what talk it is."""
    if plan is None:
        return "-"
    if plan.ask:
        return f"asks {plan.ask!r}"
    if plan.is_none:
        return f"none ({plan.talk})"
    return "; ".join(f"{c.operation} {json.dumps(c.args, ensure_ascii=False)}" for c in plan.commands)


async def run_commands_eval(cases: list[dict], backend: Backend, out=print, apps: Path | None = None) -> dict:
    """Run every case; print one line each, then per-operation figures, invented fields, and `accuracy: N/M (P%)`
    last."""
    results, by_op = [], defaultdict(list)
    for number, case in enumerate(cases, 1):
        with tempfile.TemporaryDirectory(prefix="theseus-eval-") as folder:
            result = await run_case(case, backend, Path(folder), apps)
        results.append(result)
        by_op[case["expect"]["operation"]].append(result)
        shown = plan_text(result["plan"])
        out(f"{'PASS' if result['passed'] else 'FAIL'} {number:3} {case['expect']['operation']:16} "
            f"{result['seconds']:5.2f}s  {case['request']!r} -> {shown}"
            + (f"  ({result['detail']})" if result["detail"] else ""))
    for op, found in sorted(by_op.items()):
        median = statistics.median(r["seconds"] for r in found)
        out(f"  {op:16} {sum(r['passed'] for r in found)}/{len(found)}  median {median:.2f}s")
    passed = sum(r["passed"] for r in results)
    invented = sum(bool(r["invented"]) for r in results)
    out(f"schema-invalid commands: {sum(r['invalid'] for r in results)}; "
        f"median latency {statistics.median(r['seconds'] for r in results):.2f}s")
    out(f"cases where a field the message did not give was written: {invented}")
    out(f"accuracy: {passed}/{len(results)} ({100 * passed / max(1, len(results)):.0f}%)")
    return {"passed": passed, "total": len(results), "invented": invented, "results": results}
