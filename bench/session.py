"""Session benchmark: a whole chat session with Chip, typed into a real browser, against the real server.

Run by hand (not a test; a full run takes many minutes on two cores):
    .venv/bin/python bench/session.py [--turns N] [--data DIR] [--keep] [--json FILE] [--no-restart] [--no-limit]

What a user lives, end to end. The data dir is a fresh temp dir (or --data);
the model is the one already assembled (THESEUS_MODELS, default data/models),
so nothing is assembled. As `./run serve` does, `theseus index` first brings
the knowledge index up to date (timed and printed apart); then the real server
runs as a subprocess (`theseus serve --no-watch` on a free port of 127.0.0.1,
the default embedded backend, THESEUS_INDEX=0 so no background indexing
competes for the cores: the index is already built). Its log is
<data>/server.log.

Once the server says it has read ahead (the model reads what a first message
starts with once it is up, as it would while a person opens the page), a real
Chromium (Playwright) opens /apps/tasks, starts a new conversation (so a
reused data dir does not carry on the last run's) and waits for live sync
(body[data-live=open]) and the chat socket (body[data-chat=open]). Then
SCRIPT's turns are typed, TYPING_MS per character as a fast typist does (the
app may read ahead meanwhile; the clock starts at Enter), one after another, each once the previous reply is
complete (the stored reply replaced the streamed one and the message box is
enabled again): talk, commands on the task list, questions that need a docs or
code lookup, and questions about the list, interleaved as a user would. Replies
are at temperature 0 (--temperature) so runs compare.

Every time is measured inside the page with performance.now(), from t0 = the
keydown of Enter (a capture listener installed before the page's own scripts),
by a MutationObserver on the page installed before each turn:
  ack    Chip's reply appeared (the "…" placeholder);
  text   the first visible text of the reply: its body shows a character that
         is neither the placeholder nor a progress bar (a body of class
         `reading`, "Reading… 45%"); an action's reply is a stored message
         replacing the placeholder in one go, which counts too;
  row    (commands) the first mutation under the task list (#tasks-list-N, or
         the list itself replaced, as a reorder does);
  done   the stored reply is in place and the message box is enabled again.

The tokens each turn cost come from server.log: the embedded backend logs one
line per model job ("llm: chat|decoder read N new tokens (M cached) ...;
G generated; ..."); the lines written between the start of a turn and the start
of the next are that turn's. A missing line counts as zero tokens (the table
says "-"). "context: the transcript filled ..." lines (a block set aside) are
noted per turn.

The physical limit, measured in the same run once the browser and the server
are gone (the cores are free): the same GGUF loaded by llama_cpp.Llama with
the app's n_ctx and threads. For each job of a turn, `cached` tokens are
evaluated first (untimed: real text, the crash course repeated; the KV
cache always holds a prefix of that same text, so a shorter prefix is reused
by truncation), then timed: the `new` tokens in one llama.eval, then tokens
one at a time, as many as the user waits for: every generated token of a
decoder job (the command must be complete before anything happens), one of a
chat job (its first). A turn's limit is the sum over its jobs; the ratio is
app ÷ limit, where app is Enter→text (Enter→row for commands). What the limit
leaves out (sampling, the decoder's grammar, the query embedding, the web
stack, the browser) is what the ratio shows.

Restart (unless --no-restart): after the session the server is stopped and
started again on the same data dir (the prompt states saved in <data>/states
are read back), the page reloads, and one more talk turn is typed; it is
compared with the median warm talk turn (talk turns after turn 1, the session's
cold start).

"others" is how many cores processes outside this benchmark (itself, its
server, Playwright and Chromium) kept busy during a turn (from /proc/stat): on
a 2-core machine any outside load slows llama.cpp many times over.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from cores import OthersMeter  # bench/: run as a script, its folder is on sys.path
from llama_limit import N_CTX, Limit
from theseus.llm import DEFAULT_MODEL
from theseus.llm.embedded import default_threads

ROOT = Path(__file__).resolve().parents[1]
THESEUS = [str(Path(sys.executable).with_name("theseus"))] if Path(sys.executable).with_name("theseus").exists() \
    else [sys.executable, "-m", "theseus"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]

# The session, in the order a user types it: (kind, message).
SCRIPT = [
    ("talk", "hi Chip, what can you do?"),
    ("command", "add buy oat milk to my list"),
    ("retrieval", "How do I create my own workflow?"),
    ("command", "remind me to call the plumber"),
    ("talk", "thanks, that's great"),
    ("list", "what is on my list?"),
    ("command", "I bought the oat milk"),
    ("retrieval", "Where in your code is undo implemented?"),
    ("command", "rename call the plumber to call the plumber on Friday"),
    ("talk", "are you running on my machine?"),
    ("command", "add wash the car"),
    ("command", "move call the plumber on Friday to the top"),
    ("retrieval", "how do I reorder my tasks by hand?"),
    ("talk", "nice, that was quick"),
    ("list", "what is still open on my list?"),
    ("command", "add book a dentist appointment"),
    ("talk", "ok, that's all for now, bye!"),
]
RESTART_MESSAGE = "hi again, are you there?"
TYPING_MS = 60  # per character typed (a fast typist: 200 words a minute); the clock starts at Enter
KINDS = ("talk", "command", "retrieval", "list")

TEXT_TARGETS = {"talk": 1.5, "retrieval": 3.5}  # median Enter→first text, seconds
ROW_TARGET = 2.5  # commands: median Enter→row changed, seconds
RATIO_TARGET = 1.3  # median app ÷ limit, per kind
RESTART_TARGET = 1.5  # first text after a restart ÷ the median warm talk turn
QUIET_CORES = 0.1  # a turn during which other processes kept more cores busy than this was disturbed

JOB = re.compile(r"llm: (chat|decoder) read (\d+) new tokens \((\d+) cached\) in ([\d.]+) s"
                 r"(?:; first piece at ([\d.]+) s)?; (\d+) generated; ([\d.]+) s in all")
DECODED = re.compile(r"chat: decoded (\S+)")
SET_ASIDE = re.compile(r"context: the transcript filled .*")
RESTORED = re.compile(r"llm: .* loaded in ([\d.]+) s; saved prompt states read back: (.*) tokens")

# Installed in every page before its own scripts: the clock starts at the keydown of Enter, and
# benchTurn() watches the page for what a turn changes (times in ms from t0, the page's clock).
PAGE_SCRIPT = r"""
(() => {
  const LIST = '[id^="tasks-list-"]';
  let turn = null, observer = null;
  document.addEventListener('keydown', (event) => {
    if (turn && turn.t0 === null && event.key === 'Enter' && !event.shiftKey) turn.t0 = performance.now();
  }, true);
  const inList = (node) => {
    const el = node.nodeType === 1 ? node : node.parentElement;
    return !!(el && el.closest(LIST));
  };
  const isList = (node) => node.nodeType === 1 && (node.matches(LIST) || !!node.querySelector(LIST));
  const touchesList = (r) => inList(r.target) || [...r.addedNodes, ...r.removedNodes].some(isList);
  const reply = () => [...document.querySelectorAll('#chat-log article.message.assistant')]
    .filter((a) => !turn.old.has(a.id)).pop() || null;
  const notice = () => [...document.querySelectorAll('#chat-log .chat-notice')]
    .filter((n) => n.id && !turn.old.has(n.id)).pop() || null;
  const idle = () => {
    const form = document.getElementById('chat-form'), box = form && form.querySelector('textarea');
    return !!(form && box && form.dataset.streaming === 'false' && !box.disabled);
  };
  function check(records) {
    if (turn.t0 === null) return;
    const now = performance.now() - turn.t0;
    if (turn.row === null && records.some(touchesList)) turn.row = now;  // live sync may come after the reply
    if (turn.done !== null) return;
    const article = reply(), body = article && article.querySelector('.body');
    if (article && turn.ack === null) turn.ack = now;
    if (body && turn.text === null && !body.classList.contains('reading')) {
      const text = body.textContent.trim();
      if (text && text !== '…' && !text.startsWith('Waiting for the model')) turn.text = now;
    }
    const problem = notice();
    if (problem && idle()) {
      turn.error = problem.textContent.trim();
      turn.done = now;
    } else if (article && idle() && !article.classList.contains('streaming') && !/^message-s\d+$/.test(article.id)) {
      turn.reply = body ? body.textContent.trim() : '';
      turn.card = !!article.querySelector('.action-card');  // an Undo (or Confirm) card: Chip acted
      turn.done = now;
    }
  }
  window.benchTurn = () => {
    if (observer) observer.disconnect();
    const ids = [...document.querySelectorAll('#chat-log [id^="message-"]')].map((e) => e.id);
    turn = {t0: null, ack: null, text: null, row: null, done: null, error: null, reply: null, card: false,
            old: new Set(ids)};
    observer = new MutationObserver(check);
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
  };
  window.benchState = () => turn && {ack: turn.ack, text: turn.text, row: turn.row, done: turn.done,
                                     error: turn.error, reply: turn.reply, card: turn.card};
})();
"""
BOX = "#chat-form textarea"
ROW_GRACE = 10.0  # seconds the list may take to change after a reply with an Undo card


@dataclass
class Job:
    """One model job of a turn, as server.log tells it (seconds in the server's own clock)."""

    role: str  # "chat" or "decoder"
    new: int
    cached: int
    read: float
    first: float | None
    generated: int
    total: float
    limit: float | None = None  # seconds the bare model takes for what the user waits for

    @property
    def waited_tokens(self) -> int:
        """Generated tokens the user waits for: the whole command of a decoder job, the first of a chat job."""
        return self.generated if self.role == "decoder" else 1


@dataclass
class Turn:
    """One typed message and what it cost (times in seconds from Enter; None: did not happen)."""

    label: str
    kind: str
    message: str
    ack: float | None = None
    text: float | None = None
    row: float | None = None
    done: float | None = None
    error: str | None = None
    reply: str = ""
    others: float = 0.0
    lines: list[str] = field(default_factory=list)  # server.log lines written during the turn
    jobs: list[Job] = field(default_factory=list)
    decoded: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)

    @property
    def app(self) -> float | None:
        """What the user waits for: the row changing for a command, else the first text."""
        return self.row if self.kind == "command" else self.text

    @property
    def limit(self) -> float | None:
        if not self.jobs or any(j.limit is None for j in self.jobs):
            return None
        return sum(j.limit for j in self.jobs)

    @property
    def ratio(self) -> float | None:
        return self.app / self.limit if self.app is not None and self.limit else None

    def tokens(self, role: str, what: str) -> int | None:
        jobs = [j for j in self.jobs if j.role == role]
        return sum(getattr(j, what) for j in jobs) if jobs else None

    def absorb(self, lines: list[str]) -> None:
        """Attribute server.log lines to this turn."""
        self.lines += lines
        for line in lines:
            if job := JOB.search(line):
                role, new, cached, read, first, generated, total = job.groups()
                self.jobs.append(Job(role, int(new), int(cached), float(read), first and float(first),
                                     int(generated), float(total)))
            elif decoded := DECODED.search(line):
                self.decoded.append(decoded[1])
            elif aside := SET_ASIDE.search(line):
                self.set_aside.append(aside[0])


# --- the machine --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the server ---------------------------------------------------------------------------------

class ServerLog:
    """server.log, read a piece at a time (the server truncates it when it starts)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = path, 0, ""

    def wait_for(self, text: str, timeout: float = 180.0) -> None:
        """Wait until the log shows a line containing `text` (those lines belong to no turn)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.take()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"server.log never said {text!r} within {timeout:g} s")
            time.sleep(0.2)

    def take(self) -> list[str]:
        """The whole lines written since the last take."""
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as log:
                if log.seek(0, 2) < self.offset:  # a new server started a new log
                    self.offset, self.partial = 0, ""
                log.seek(self.offset)
                text = self.partial + log.read()
                self.offset = log.tell()
        except FileNotFoundError:
            return []
        *lines, self.partial = text.split("\n")
        return lines

    def settle(self, quiet: float = 0.3, limit: float = 3.0) -> list[str]:
        """The lines written until the log stays unchanged for `quiet` seconds (at most `limit`)."""
        lines, deadline = self.take(), time.monotonic() + limit
        last_change = time.monotonic()
        while time.monotonic() - last_change < quiet and time.monotonic() < deadline:
            time.sleep(0.05)
            if more := self.take():
                lines += more
                last_change = time.monotonic()
        return lines


class Server:
    """`theseus serve` as a subprocess on one data dir and port."""

    def __init__(self, data: Path, port: int, env: dict):
        self.data, self.port, self.env = data, port, env
        self.origin = f"http://127.0.0.1:{port}"
        self.console = data / "serve.console.log"  # its stdout and stderr (server.log has the same lines)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 240.0) -> tuple[float, float]:
        """Start and wait until the model is ready; (seconds until HTTP answered, until the model was ready)."""
        started = time.perf_counter()
        with self.console.open("ab") as out:
            self.process = subprocess.Popen([*THESEUS, "serve", "--no-watch", "--host", "127.0.0.1",
                                             "--port", str(self.port), "--data", str(self.data)],
                                            env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = started + timeout
        up = None
        with httpx.Client(base_url=self.origin, trust_env=False, timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited with code {self.process.returncode}:\n{self.tail()}")
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"the model was not ready after {timeout:g} s:\n{self.tail()}")
                state = self.model_state(client)
                if state is not None and up is None:
                    up = time.perf_counter() - started
                if state == "ready":
                    return up, time.perf_counter() - started
                if state == "error":
                    raise RuntimeError(f"the model failed to load:\n{self.tail()}")
                time.sleep(0.1)

    @staticmethod
    def model_state(client: httpx.Client) -> str | None:
        """The backend's state as /chat/status shows it (None while the server does not answer)."""
        try:
            response = client.get("/chat/status")
        except httpx.HTTPError:
            return None
        found = re.search(r'class="model-status (\w+)"', response.text)
        return found[1] if response.status_code == 200 and found else "starting"

    def stop(self) -> None:
        """Ask it to stop as Ctrl-C does; kill it if it does not within 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def tail(self, lines: int = 30) -> str:
        texts = []
        for path in (self.console, self.data / "server.log"):
            if path.exists():
                texts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)


def server_env(models: Path, temperature: float) -> dict:
    """The environment of `theseus index` and `theseus serve`: the assembled model, no background indexing."""
    env = {k: v for k, v in os.environ.items() if k not in ("THESEUS_DATA", "THESEUS_LLM", "THESEUS_PORT",
                                                             "THESEUS_HOST", "THESEUS_ALLOWED_HOSTS")}
    return env | {"THESEUS_MODELS": str(models), "THESEUS_INDEX": "0", "THESEUS_TEMPERATURE": f"{temperature:g}"}


def build_index(data: Path, env: dict) -> tuple[float, str]:
    """`theseus index` on the data dir, as ./run serve does first; (seconds, its summary line)."""
    started = time.perf_counter()
    done = subprocess.run([*THESEUS, "index", "--data", str(data)], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"theseus index failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds, (done.stdout.strip().splitlines() or ["(no summary)"])[-1]


# --- the browser --------------------------------------------------------------------------------

def open_tasks(page, origin: str) -> None:
    """Show /apps/tasks and wait until live sync and the chat socket are open."""
    page.goto(origin + "/apps/tasks")
    connected(page)


def new_conversation(page, origin: str) -> None:
    """Start a new conversation, as the chat pane's New button does, and show it."""
    response = page.request.post(origin + "/chat/new", headers={"HX-Request": "true", "Origin": origin})
    if not response.ok:
        raise RuntimeError(f"POST /chat/new: {response.status}")
    page.reload()
    connected(page)


def connected(page) -> None:
    page.wait_for_function("document.body.dataset.live === 'open' && document.body.dataset.chat === 'open'",
                           timeout=30_000)


def type_turn(page, turn: Turn, timeout: float) -> None:
    """Type the turn's message, press Enter, wait until the reply is complete; fill in its times."""
    page.evaluate("benchTurn()")
    page.type(BOX, turn.message, delay=TYPING_MS)  # as a person types: the app may read ahead meanwhile
    page.press(BOX, "Enter")
    try:
        page.wait_for_function("benchState().done !== null", timeout=timeout * 1000)
        if page.evaluate("benchState().card"):  # Chip changed something: live sync may show it after the reply
            page.wait_for_function("benchState().row !== null", timeout=ROW_GRACE * 1000)
    except PlaywrightTimeout:
        turn.error = "the list did not change" if page.evaluate("benchState().done !== null") else \
            f"no complete reply within {timeout:g} s"
    state = page.evaluate("benchState()")
    for name in ("ack", "text", "row", "done"):
        setattr(turn, name, state[name] / 1000 if state[name] is not None else None)
    turn.error = state["error"] or turn.error
    turn.reply = state["reply"] or ""


# --- the physical limit -------------------------------------------------------------------------

def measure_limits(turns: list[Turn], model_path: Path, threads: int) -> float:
    """Fill in each job's limit (shortest cached prefix first, so the untimed prefix only grows); seconds spent."""
    started = time.perf_counter()
    limit = Limit(model_path, threads)
    try:
        jobs = sorted((j for t in turns for j in t.jobs), key=lambda j: (j.cached, j.new))
        for job in jobs:
            job.limit = limit.job(job.cached, job.new, job.waited_tokens)
    finally:
        limit.close()
    return time.perf_counter() - started


# --- the session --------------------------------------------------------------------------------

def run_turn(page, log: ServerLog, turn: Turn, previous: Turn | None, timeout: float) -> None:
    """One turn: the lines since the previous turn began are the previous turn's; then type and time it."""
    if previous is not None:
        previous.absorb(log.take())
    meter = OthersMeter()
    meter.start()
    type_turn(page, turn, timeout)
    turn.others = meter.stop()
    turn.absorb(log.take())
    print_turn(turn)


def session(page, log: ServerLog, script: list[tuple[str, str]], timeout: float) -> list[Turn]:
    """Type the script's turns one after another; stop at a turn that failed to complete."""
    turns: list[Turn] = []
    for number, (kind, message) in enumerate(script, 1):
        turn = Turn(str(number), kind, message)
        run_turn(page, log, turn, turns[-1] if turns else None, timeout)
        turns.append(turn)
        if turn.done is None:
            print(f"(stopping the session: turn {number} did not complete)")
            break
    if turns:
        turns[-1].absorb(log.settle())
    return turns


def restart(page, server: Server, log: ServerLog, timeout: float) -> tuple[Turn, dict]:
    """Stop and start the server on the same data dir, reload the page, type one more talk turn."""
    server.stop()
    up, ready = server.start()
    startup = {"up": up, "ready": ready}
    for line in log.take():  # the new server's first lines (the log began anew)
        if found := RESTORED.search(line):
            startup |= {"load": float(found[1]), "states": found[2]}
    page.reload()
    connected(page)
    turn = Turn("R", "talk", RESTART_MESSAGE)
    run_turn(page, log, turn, None, timeout)
    turn.absorb(log.settle())
    return turn, startup


# --- the report ---------------------------------------------------------------------------------

def ms(seconds: float | None, width: int = 7) -> str:
    return f"{seconds * 1000:{width}.0f}" if seconds is not None else f"{'-':>{width}}"


def pair(turn: Turn, what: str) -> str:
    """Decoder+chat tokens of one kind ("-" where the log had no line for that role)."""
    values = [turn.tokens(role, what) for role in ("decoder", "chat")]
    return "+".join("-" if v is None else str(v) for v in values)


HEADER = (f"{'turn':>4} {'kind':9} {'message':32} {'ack ms':>7} {'text ms':>7} {'row ms':>7} {'done ms':>8} "
          f"{'decoded':14} {'new d+c':>9} {'cached d+c':>11} {'limit ms':>8} {'ratio':>6} {'others':>6}")


def print_turn(turn: Turn) -> None:
    message = turn.message if len(turn.message) <= 32 else turn.message[:31] + "…"
    ratio = f"{turn.ratio:6.2f}" if turn.ratio is not None else f"{'-':>6}"
    print(f"{turn.label:>4} {turn.kind:9} {message:32} {ms(turn.ack)} {ms(turn.text)} {ms(turn.row)} "
          f"{ms(turn.done, 8)} {','.join(turn.decoded)[:14] or '-':14} {pair(turn, 'new'):>9} "
          f"{pair(turn, 'cached'):>11} {ms(turn.limit, 8)} {ratio} {turn.others:6.2f}", flush=True)
    if turn.error:
        print(f"     ! {turn.error[:150]}")
    for note in turn.set_aside:
        print(f"     ! {note}")


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    if not values:
        return f"{'-':>15}"
    return f"{statistics.median(values) * 1000:7.0f} /{p90(values) * 1000:6.0f}"


def values(turns: list[Turn], what: str) -> list[float]:
    return [v for t in turns if (v := getattr(t, what)) is not None]


def summarize_kinds(turns: list[Turn]) -> None:
    print(f"\n{'kind':9} {'n':>3}  {'text ms med/p90':>15}  {'row ms med/p90':>15}  {'done ms med/p90':>15}  "
          f"{'ratio med/p90':>13}")
    for kind in KINDS:
        chosen = [t for t in turns if t.kind == kind]
        if not chosen:
            continue
        ratios = values(chosen, "ratio")
        ratio = f"{statistics.median(ratios):6.2f} /{p90(ratios):5.2f}" if ratios else f"{'-':>13}"
        print(f"{kind:9} {len(chosen):3}  {spread(values(chosen, 'text'))}  {spread(values(chosen, 'row'))}  "
              f"{spread(values(chosen, 'done'))}  {ratio}")


def warm_talk(turns: list[Turn]) -> list[Turn]:
    """The warm talk turns that showed text: all but turn 1 (the session's cold start: nothing cached yet)."""
    return [t for t in turns if t.kind == "talk" and t.text is not None and t.label != "1"]


def targets(turns: list[Turn], restarted: Turn | None) -> list[dict]:
    """Each target: what it asks, what was measured, met or missed (or not measured)."""
    found = []

    def judge(name: str, measured: float | None, bound: float, unit: str = "s") -> None:
        met = None if measured is None else measured <= bound
        found.append({"target": name, "measured": measured, "bound": bound, "unit": unit, "met": met})

    for kind, bound in TEXT_TARGETS.items():
        texts = values([t for t in turns if t.kind == kind], "text")
        judge(f"{kind} median Enter→first text", statistics.median(texts) if texts else None, bound)
    rows = values([t for t in turns if t.kind == "command"], "row")
    judge("command median Enter→row changed", statistics.median(rows) if rows else None, ROW_TARGET)
    for kind in KINDS:
        ratios = values([t for t in turns if t.kind == kind], "ratio")
        judge(f"{kind} median app÷limit", statistics.median(ratios) if ratios else None, RATIO_TARGET, "×")
    warm = warm_talk(turns)
    if restarted is not None and restarted.text is not None and warm:
        judge("first text after restart ÷ warm talk median",
              restarted.text / statistics.median(t.text for t in warm), RESTART_TARGET, "×")
    else:
        judge("first text after restart ÷ warm talk median", None, RESTART_TARGET, "×")
    return found


def print_targets(found: list[dict]) -> None:
    print("\ntargets")
    for t in found:
        measured = "not measured" if t["measured"] is None else f"{t['measured']:.2f} {t['unit']}"
        verdict = "-" if t["met"] is None else "met" if t["met"] else "MISSED"
        print(f"  {t['target']:46} {measured:>14}   (<= {t['bound']:g} {t['unit']}): {verdict}")


def print_restart(restarted: Turn, startup: dict, turns: list[Turn]) -> None:
    warm = warm_talk(turns)
    print(f"\nrestart: HTTP up in {startup['up']:.1f} s, model ready in {startup['ready']:.1f} s"
          + (f" (load {startup['load']:.1f} s; saved states read back: {startup['states']} tokens)"
             if "load" in startup else " (no 'saved prompt states read back' line in server.log)"))
    print(f"first turn after restart: Enter→text {ms(restarted.text).strip()} ms, new tokens d+c "
          f"{pair(restarted, 'new')}, cached d+c {pair(restarted, 'cached')}")
    if warm:
        median = statistics.median(t.text for t in warm)
        news = statistics.median(sum(j.new for j in t.jobs) for t in warm)
        ratio = f" (×{restarted.text / median:.2f})" if restarted.text is not None else ""
        print(f"median of the {len(warm)} warm talk turn(s): Enter→text {median * 1000:.0f} ms{ratio}, "
              f"{news:.0f} new tokens")
    else:
        print("no warm talk turn to compare with (talk turns after turn 1): type more turns")


def report(turns: list[Turn], restarted: Turn | None, startup: dict | None, meta: dict) -> list[dict]:
    if meta["limit_seconds"] is not None:  # the same table again, now with each turn's limit and ratio
        print(f"\nphysical limit measured in {meta['limit_seconds']:.1f} s (other processes kept "
              f"{meta['limit_others']:.2f} cores busy meanwhile)\n" + HEADER)
        for turn in turns + ([restarted] if restarted else []):
            print_turn(turn)
    summarize_kinds(turns)
    if restarted is not None and startup is not None:
        print_restart(restarted, startup, turns)
    busy = [t for t in turns if not math.isnan(t.others)]
    if busy:
        disturbed = [t.label for t in busy if t.others > QUIET_CORES]
        print(f"\nother processes kept up to {max(t.others for t in busy):.2f} cores busy during a turn (median "
              f"{statistics.median(t.others for t in busy):.2f}); "
              + (f"turn(s) {', '.join(disturbed)} were disturbed (> {QUIET_CORES} cores): rerun on a quiet machine"
                 if disturbed else "no turn was disturbed"))
    missing = [t.label for t in turns if t.done is not None and not t.jobs and not t.message.startswith("/")]
    if missing:
        print(f"no 'llm: ... read N new tokens' line in server.log for turn(s) {', '.join(missing)}: "
              f"their tokens show as '-' (no jobs in the JSON) and they have no limit")
    found = targets(turns, restarted)
    print_targets(found)
    print(f"\n{meta['machine']}; model {meta['model']} ({meta['threads']} threads, n_ctx {N_CTX}); "
          f"temperature {meta['temperature']:g}; index built in {meta['index_seconds']:.1f} s "
          f"({meta['index_summary']}); server up in {meta['up']:.1f} s, model ready in {meta['ready']:.1f} s")
    return found


def write_json(path: Path, turns: list[Turn], restarted: Turn | None, startup: dict | None, meta: dict,
               found: list[dict]) -> None:
    def turn_dict(turn: Turn) -> dict:
        return asdict(turn) | {"app": turn.app, "limit": turn.limit, "ratio": turn.ratio}
    document = {"meta": meta, "turns": [turn_dict(t) for t in turns],
                "restart": turn_dict(restarted) if restarted else None, "restart_startup": startup,
                "targets": found}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"raw figures written to {path}")


# --- main ---------------------------------------------------------------------------------------

def run(args: argparse.Namespace, data: Path) -> None:
    env = server_env(args.models, args.temperature)
    model_path = args.models / DEFAULT_MODEL.filename
    if not model_path.exists():
        raise SystemExit(f"error: {model_path} is missing (run ./run setup, or set --models)")
    print(f"data dir {data}; model {model_path}", flush=True)
    index_seconds, index_summary = build_index(data, env)
    print(f"theseus index: {index_seconds:.1f} s ({index_summary})", flush=True)
    server = Server(data, free_port(), env)
    log = ServerLog(data / "server.log")
    restarted = startup = None
    try:
        up, ready = server.start()
        print(f"server {server.origin}: HTTP up in {up:.1f} s, model ready in {ready:.1f} s\n", flush=True)
        log.wait_for("chat: read ahead done")  # the start-up lines belong to no turn; the model read ahead
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.add_init_script(PAGE_SCRIPT)
                open_tasks(page, server.origin)
                new_conversation(page, server.origin)  # a reused data dir must not carry on the last session
                print(HEADER, flush=True)
                turns = session(page, log, SCRIPT[:args.turns], args.timeout)
                if not args.no_restart and turns and turns[-1].done is not None:
                    restarted, startup = restart(page, server, log, args.timeout)
                if errors:
                    print(f"JavaScript errors in the page: {errors[:5]}")
            finally:
                browser.close()
    finally:
        server.stop()
    limit_seconds = limit_others = None
    if not args.no_limit:
        print("\nmeasuring the physical limit (server and browser stopped)...", flush=True)
        meter = OthersMeter()
        meter.start()
        limit_seconds = measure_limits(turns + ([restarted] if restarted else []), model_path, default_threads())
        limit_others = meter.stop()
    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}",
            "model": DEFAULT_MODEL.name, "threads": default_threads(), "temperature": args.temperature,
            "index_seconds": index_seconds, "index_summary": index_summary, "up": up, "ready": ready,
            "limit_seconds": limit_seconds, "limit_others": limit_others, "data": str(data)}
    found = report(turns, restarted, startup, meta)
    if args.json:
        write_json(args.json, turns, restarted, startup, meta, found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="data dir to use (and keep); default: a fresh temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (its path is printed)")
    parser.add_argument("--turns", type=int, default=len(SCRIPT),
                        help=f"type only the first N turns of the script (default all {len(SCRIPT)})")
    parser.add_argument("--json", type=Path, help="write every raw figure to this file")
    parser.add_argument("--no-restart", action="store_true", help="skip the restart and its turn")
    parser.add_argument("--no-limit", action="store_true", help="skip measuring the physical limit")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one turn may take (default 300)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="Chip's reply temperature (THESEUS_TEMPERATURE; default 0, so runs compare)")
    parser.add_argument("--models", type=Path, default=Path(os.environ.get("THESEUS_MODELS", ROOT / "data/models")),
                        help="the directory holding the assembled model (default: $THESEUS_MODELS or data/models)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"error: {CHROMIUM} is missing (./run setup installs it)")
    if args.data:
        args.data.mkdir(parents=True, exist_ok=True)
        run(args, args.data.resolve())
        return
    data = Path(tempfile.mkdtemp(prefix="theseus-session-"))
    try:
        run(args, data)
    finally:
        if args.keep:
            print(f"data dir kept: {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
