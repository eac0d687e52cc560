"""Unified diffs: read one into whole-file edits (applying its hunks to the files as they are now), and write one.

A hunk applies where its header says, or where its old lines appear nearest to
that; a hunk whose old lines appear nowhere is refused with the first line that
differs. The result is always a whole file's new text, so the rest of a change's
life (checks, writing, rollback, the action log) never deals with hunks again.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .files import ChangeError

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
NO_FILE = "/dev/null"
FUZZ_LINES = 200  # how far from its header's line a hunk may have moved (lines added or removed above it since)


@dataclass
class Edit:
    """One file of a change: its text before and after (None: it does not exist)."""

    name: str
    before: str | None
    after: str | None

    @property
    def diff(self) -> str:
        key = (self.before, self.after)
        if getattr(self, "_diff", (None, None))[0] != key:  # made once per text (lists show it often)
            self._diff = (key, unified(self.name, self.before, self.after))
        return self._diff[1]

    def counts(self) -> tuple[int, int]:
        """(lines added, lines removed)."""
        if getattr(self, "_counts", None) is None:
            lines = self.diff.splitlines()[2:]
            self._counts = (sum(1 for x in lines if x.startswith("+")), sum(1 for x in lines if x.startswith("-")))
        return self._counts

    def to_json(self) -> dict:
        added, removed = self.counts()
        return {"path": self.name, "before": self.before, "after": self.after, "added": added, "removed": removed}

    @classmethod
    def from_json(cls, data: dict) -> "Edit":
        edit = cls(data["path"], data["before"], data["after"])
        if "added" in data:  # counted when it was recorded: a list of changes never diffs them again
            edit._counts = (data["added"], data["removed"])
        return edit


def unified(name: str, before: str | None, after: str | None) -> str:
    """The unified diff from `before` to `after` of one file (git-style names)."""
    old, new = (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True)
    lines = difflib.unified_diff(old, new, NO_FILE if before is None else f"a/{name}",
                                 NO_FILE if after is None else f"b/{name}", n=3)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def is_diff(text: str) -> bool:
    return bool(re.search(r"^(--- |diff --git )", text, re.M)) and bool(re.search(r"^@@ ", text, re.M))


@dataclass
class FilePatch:
    old: str
    new: str
    hunks: list[tuple[int, list[str]]]  # (old start line, body lines)


def parse(text: str) -> list[FilePatch]:
    """The file patches of a unified diff, each hunk exactly as long as its header says; ChangeError if it is not
    one."""
    patches: list[FilePatch] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            patches.append(FilePatch(file_name(lines[i][4:]), file_name(lines[i + 1][4:]), []))
            i += 2
            continue
        header = HUNK.match(lines[i])
        if not header:
            i += 1
            continue
        if not patches:
            raise ChangeError(f"line {i + 1} of the diff: a hunk before any '--- file' / '+++ file' lines")
        old_left, new_left = int(header.group(2) or 1), int(header.group(4) or 1)
        body, i = [], i + 1
        while (old_left > 0 or new_left > 0 or (i < len(lines) and lines[i].startswith("\\"))) and i < len(lines):
            line = lines[i] if lines[i] else " "  # an editor may strip the space of an empty context line
            kind = line[:1]
            if kind not in (" ", "-", "+", "\\"):
                raise ChangeError(f"line {i + 1} of the diff: the hunk ends early (its header counts more lines)")
            old_left -= kind in (" ", "-")
            new_left -= kind in (" ", "+")
            body.append(line)
            i += 1
        if old_left > 0 or new_left > 0:
            raise ChangeError("the diff ends inside a hunk (its header counts more lines than it has)")
        patches[-1].hunks.append((int(header.group(1)), body))
    if not patches or not any(p.hunks for p in patches):
        raise ChangeError("This is not a unified diff: it needs '--- a/PATH', '+++ b/PATH' and '@@ ... @@' hunks.")
    return patches


def file_name(text: str) -> str:
    return text.split("\t")[0].strip()


def apply(patch: FilePatch, current: str | None, name: str) -> str | None:
    """The file's new text once the patch's hunks apply to `current`; ChangeError naming the hunk that does not."""
    if patch.new == NO_FILE:
        removed = [line[1:] for _, body in patch.hunks for line in body if line[:1] == "-"]
        if current is None or removed != current.splitlines():
            raise ChangeError(f"the diff deletes {name}, but the file is not as the diff shows it")
        return None
    if patch.old == NO_FILE and current is not None:
        raise ChangeError(f"{name} already exists; the diff creates it.")
    if patch.old != NO_FILE and current is None:
        raise ChangeError(f"{name} does not exist; the diff changes it.")
    lines = (current or "").splitlines()
    ends_with_newline = current is None or current.endswith("\n") or current == ""
    shift = 0
    for number, (start, body) in enumerate(patch.hunks, 1):
        if any(line.startswith("\\") for line in body):  # "\ No newline at end of file" after the new last line
            marks = [i for i, line in enumerate(body) if line.startswith("\\")]
            ends_with_newline = not any(body[i - 1][:1] in ("+", " ") for i in marks if i > 0)
            body = [line for line in body if not line.startswith("\\")]
        old = [line[1:] for line in body if line[:1] in (" ", "-")]
        new = [line[1:] for line in body if line[:1] in (" ", "+")]
        at = place(lines, old, start - 1 + shift if old else start + shift)
        if at is None:
            raise ChangeError(f"hunk {number} of {name} does not apply to the file as it is now: "
                              f"{first_difference(lines, old, start - 1 + shift)}")
        lines[at:at + len(old)] = new
        shift += len(new) - len(old)
    return "\n".join(lines) + ("\n" if ends_with_newline and lines else "")


def place(lines: list[str], old: list[str], wanted: int) -> int | None:
    """Where `old` appears in `lines`: at `wanted`, else the nearest place within FUZZ_LINES of it."""
    wanted = max(0, min(wanted, len(lines)))
    for distance in range(FUZZ_LINES + 1):
        for at in (wanted - distance, wanted + distance):
            if 0 <= at <= len(lines) - len(old) and (not old or lines[at] == old[0]) and lines[at:at + len(old)] == old:
                return at
    return None


def first_difference(lines: list[str], old: list[str], at: int) -> str:
    for offset, expected in enumerate(old):
        actual = lines[at + offset] if 0 <= at + offset < len(lines) else None
        if actual != expected:
            shown = "the end of the file" if actual is None else repr(actual[:80])
            return f"line {at + offset + 1} is {shown}, the diff expects {expected[:80]!r}"
    return "its lines appear nowhere in the file"
