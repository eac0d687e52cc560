"""Long job: hash every file of a folder in the background, with a live progress bar.

The job step runs in a background thread (workflows/jobs.py): its bar moves in
every open tab, it keeps running when the page is reloaded (the bar
re-attaches), it can be cancelled, and a failure is reported on its card.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from fasthtml.common import Code, Li, P, Small, Strong, Ul

from theseus.workflows.engine import Step, Workflow, folder_step

CHUNK = 1 << 20
PACES = {"full speed": 0, "gentle (20 MB/s)": 20 << 20, "very gentle (2 MB/s)": 2 << 20}
MAX_FILES = 200_000


def files_of(folder: Path) -> list[Path]:
    """Every regular file under the folder (symlinks not followed), in a stable order."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found += [Path(root) / n for n in sorted(names) if (Path(root) / n).is_file()
                  and not (Path(root) / n).is_symlink()]
        if len(found) > MAX_FILES:
            raise ValueError(f"the folder has more than {MAX_FILES:,} files")
    return found


def hash_folder(values: dict, job) -> dict:
    """sha256 of every file and one digest over them all; progress in bytes."""
    folder = Path(values["step_01"]).expanduser()
    pace = PACES.get(values["step_02"], 0)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is no longer a folder")
    files = files_of(folder)
    total = sum(f.stat().st_size for f in files)
    job.progress(0, total, f"{len(files):,} files to hash")
    overall, done, started, skipped, largest = hashlib.sha256(), 0, time.monotonic(), [], []
    for number, path in enumerate(files, 1):
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    done += len(chunk)
                    job.progress(done, total, f"file {number:,} of {len(files):,}: {path.name}")
                    if pace:  # keep to the chosen pace: sleep until the bytes done are due
                        time.sleep(max(0.0, done / pace - (time.monotonic() - started)))
        except OSError as error:
            skipped.append(f"{path.relative_to(folder)}: {error.strerror or error}")
            continue
        relative = str(path.relative_to(folder))
        overall.update(f"{relative}\0{digest.hexdigest()}\n".encode())
        largest = sorted([*largest, (path.stat().st_size, relative)], reverse=True)[:5]
    job.progress(total, total, "done")
    return {"files": len(files) - len(skipped), "bytes": done, "digest": overall.hexdigest(),
            "seconds": round(time.monotonic() - started, 2), "skipped": skipped[:20],
            "largest": [{"path": p, "bytes": s} for s, p in largest]}


def show_hashes(entry: dict, values: dict):
    result = entry.get("result") or {}
    return P(Strong(f"{result.get('files', 0):,} files, {result.get('bytes', 0) / 1e6:,.1f} MB"),
             f" in {result.get('seconds', 0)} s", Small(" · digest "), Code(result.get("digest", "")[:16]),
             Ul(*[Li(f"{f['path']} ({f['bytes'] / 1e6:,.2f} MB)") for f in result.get("largest", [])]),
             Ul(*[Li(Small(s)) for s in result.get("skipped", [])], cls="skipped"))


class LongJob(Workflow):
    name = "longjob"
    display_name = "Long job"
    description = "Hash every file of a folder in the background, with a live, cancellable progress bar."
    order = 220

    steps = [
        folder_step("step_01", "Folder", notes="longjob.md#Folder",
                    say="Which folder should I hash? Give its full path; the app's own docs folder is filled in."),
        Step(id="step_02", label="Pace", kind="select", options=tuple(PACES), notes="longjob.md#Pace",
             say="How fast? Full speed is quickest; a gentle pace keeps the computer responsive."),
        Step(id="step_03", label="Hash the files", kind="job", job=hash_folder, show=show_hashes,
             notes="longjob.md#Hashing",
             say="Press Start to hash {step_01}. It runs in the background: you can reload or leave the page."),
    ]

    def result(self, values):
        return P("Every file was hashed. Finalize to keep this run as a record.")
