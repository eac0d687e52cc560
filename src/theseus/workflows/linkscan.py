"""Mapping the links of a folder of markdown and HTML pages, with every part of the work bounded.

Links are read with real parsers (markdown-it for markdown, html.parser for
HTML), so links inside code blocks are not counted. A relative link to a file
that does not exist is broken; a page no other page links to is an orphan;
a page that cannot be reached from the start page by following links is
unreachable.

A folder can be huge (a home folder, one README with 150,000 links), so a scan
looks at a limited number of files and folders, reads a limited number of
pages, bytes per page and links, within a time budget, and says which limit
stopped it. Its result keeps the counts and only the first few of each list,
cut to fit `RESULT_CHARS`, so storing, logging and rendering it are quick
whatever the folder held. The Link graph workflow (linkgraph.py) runs a scan
as a background job step.
"""

from __future__ import annotations

import itertools
import json
import os
import posixpath
import time
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt

from theseus.workflows.jobs import RESULT_LIMIT

PAGE_SUFFIXES = {".md", ".markdown", ".html", ".htm"}
HTML_SUFFIXES = {".html", ".htm"}
# a scan's bounds
MAX_ENTRIES = 50_000      # files and folders looked at to find the pages
MAX_PAGES = 2_000         # pages read
MAX_BYTES = 500_000       # bytes read of each page (the rest is not read)
MAX_LINKS = 10_000        # links checked per page
MAX_ALL_LINKS = 500_000   # links checked in all
TIME_BUDGET = 120.0       # seconds; the scan stops where it is after that
# its result
LISTED = 100              # at most this many broken links, orphans, unreachable pages, notes
RESULT_CHARS = RESULT_LIMIT - 1_000  # the result's JSON fits this, so the job's result is kept whole
CUT = 160                 # characters kept of a page path or a link
DRAWN = 60                # pages drawn in the picture
DRAWN_LINKS = 300         # lines drawn in the picture
TICK = 1_000              # files or links between progress reports (each is also a chance to cancel)


def cut(text: str, limit: int = CUT) -> str:
    """The text, cut to `limit` characters (with … when cut)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---- finding the pages ----
@dataclass
class Listing:
    """The pages found under a folder, and why the search stopped early ('' if it did not)."""

    pages: list[str] = field(default_factory=list)
    stopped: str = ""
    unreadable: list[str] = field(default_factory=list)


def is_page(entry: os.DirEntry) -> bool:
    return os.path.splitext(entry.name)[1].lower() in PAGE_SUFFIXES and entry.is_file(follow_symlinks=False)


def find_pages(folder: Path, max_entries: int, max_pages: int, tick=None) -> Listing:
    """The folder's pages ('/'-separated, relative), shallowest folders first; hidden folders and symlinks skipped.

    Looks at no more than `max_entries` files and folders; `tick(seen, found)` is called every TICK of them.
    """
    listing, seen, pending = Listing(), 0, deque([folder])
    while pending:
        directory = pending.popleft()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(itertools.islice(scan, max_entries - seen + 1), key=lambda e: e.name)
        except OSError as error:
            listing.unreadable.append(f"{Path(directory).relative_to(folder).as_posix()}/: {error.strerror or error}")
            continue
        for entry in entries:
            seen += 1
            if seen > max_entries:
                listing.stopped = f"stopped after looking at {max_entries:,} files and folders"
                return listing
            if tick and seen % TICK == 0:
                tick(seen, len(listing.pages))
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                pending.append(entry.path)
            elif is_page(entry):
                if len(listing.pages) == max_pages:
                    listing.stopped = f"stopped after {max_pages:,} pages"
                    return listing
                listing.pages.append(Path(entry.path).relative_to(folder).as_posix())
    return listing


# ---- reading links ----
class HrefParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, int]] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append((href, self.getpos()[0]))


def markdown_links(text: str) -> list[tuple[str, int]]:
    """(href, line) of every link in a markdown text."""
    found = []
    for block in MarkdownIt("commonmark").parse(text):
        line = (block.map or [0])[0] + 1
        for child in block.children or []:
            if child.type == "link_open" and child.attrGet("href"):
                found.append((str(child.attrGet("href")), line))
            line += child.type in ("softbreak", "hardbreak")
    return found


def html_links(text: str) -> list[tuple[str, int]]:
    parser = HrefParser()
    parser.feed(text)
    return parser.links


def links_in(page: str, text: str) -> list[tuple[str, int]]:
    """(href, line) of every link in a page's text, parsed as HTML or markdown by its suffix."""
    return html_links(text) if posixpath.splitext(page)[1].lower() in HTML_SUFFIXES else markdown_links(text)


def read_page(path: Path) -> tuple[str, bool]:
    """The page's text (at most MAX_BYTES of it) and whether it was cut."""
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return data[:MAX_BYTES].decode("utf-8", errors="replace"), len(data) > MAX_BYTES


def target_of(page: str, href: str) -> str | None:
    """The page a relative link points to (folder-relative), or None for external and in-page links."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), unquote(parts.path)))


# ---- mapping a folder (the job) ----
@dataclass
class Tally:
    """How many were found, and the first `keep` of them."""

    keep: int = LISTED
    count: int = 0
    first: list = field(default_factory=list)

    def add(self, item) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(item)


def no_progress(done: int, total: int | None = None, note: str = "") -> None:
    """Progress reports go nowhere (a scan outside a job)."""


class LinkScan:
    """One mapping of a folder: the links between its pages, what is broken, and which limit stopped it."""

    def __init__(self, folder: Path, start: str, progress=no_progress):
        self.folder, self.start, self.progress = folder, start, progress
        self.started = time.monotonic()
        self.edges: set[tuple[str, str]] = set()
        self.broken, self.notes = Tally(), Tally()
        self.broken_pages: set[str] = set()
        self.checked = 0  # links checked in all
        self.limits: list[str] = []
        self.known_files: dict[str, bool] = {}
        self.at, self.of = 0, 0  # the page being read, of how many

    def run(self) -> dict:
        """Find the pages, read each within the bounds, and summarize (capped)."""
        listing = find_pages(self.folder, MAX_ENTRIES, MAX_PAGES, self.looking)
        self.limits += [listing.stopped] if listing.stopped else []
        for problem in listing.unreadable:
            self.notes.add(cut(problem))
        pages = sorted(listing.pages)
        known, self.of = set(pages), len(pages)
        while self.at < self.of and not self.out_of_budget():
            page = pages[self.at]
            self.progress(self.at, self.of, f"page {self.at + 1:,} of {self.of:,}: {cut(page, 80)}")
            self.map_page(page, known)
            self.at += 1
        self.progress(self.of, self.of, "done")
        return summary(self, pages[:self.at])

    def looking(self, seen: int, found: int) -> None:
        self.progress(0, 0, f"looking for pages: {found:,} found among {seen:,} files and folders")

    def out_of_budget(self) -> bool:
        """True (and the limit noted) once the job has checked enough links or used its time."""
        if self.checked >= MAX_ALL_LINKS:
            self.limits.append(f"stopped after checking {MAX_ALL_LINKS:,} links "
                               f"({self.at:,} of {self.of:,} pages read)")
        elif time.monotonic() - self.started >= TIME_BUDGET:
            self.limits.append(f"stopped after {TIME_BUDGET:.0f} seconds ({self.at:,} of {self.of:,} pages read)")
        else:
            return False
        return True

    def map_page(self, page: str, known: set[str]) -> None:
        try:
            text, was_cut = read_page(self.folder / page)
        except OSError as error:
            self.notes.add(cut(f"{page}: could not be read ({error.strerror or error})"))
            return
        if was_cut:
            self.notes.add(cut(f"{page}: only its first {MAX_BYTES:,} bytes were read"))
        found = links_in(page, text)
        if len(found) > MAX_LINKS:
            self.notes.add(cut(f"{page}: only its first {MAX_LINKS:,} of {len(found):,} links were checked"))
        for number, (href, line) in enumerate(found[:min(MAX_LINKS, MAX_ALL_LINKS - self.checked)], 1):
            if number % TICK == 0:
                self.progress(self.at, self.of, f"page {self.at + 1:,} of {self.of:,}: link {number:,}")
            self.check(page, href, line, known)
            self.checked += 1

    def check(self, page: str, href: str, line: int, known: set[str]) -> None:
        target = target_of(page, href)
        if target is None:
            return
        if target in known:
            self.edges.add((page, target))
        elif not self.exists(target):
            self.broken.add({"page": cut(page), "line": line, "href": cut(href)})
            self.broken_pages.add(page)

    def exists(self, target: str) -> bool:
        """Whether a link's target exists (asked once per target)."""
        if target not in self.known_files:
            try:
                self.known_files[target] = (self.folder / target).exists()
            except PermissionError:
                self.known_files[target] = True
            except (OSError, ValueError):  # a name too long, a NUL byte: no such file
                self.known_files[target] = False
        return self.known_files[target]


def unreachable_from(start: str, pages: list[str], edges: set[tuple[str, str]]) -> list[str]:
    """The pages that following links from `start` never reaches."""
    following: dict[str, list[str]] = {}
    for source, target in edges:
        following.setdefault(source, []).append(target)
    seen, frontier = {start}, [start]
    while frontier:
        for target in following.get(frontier.pop(), []):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return [p for p in pages if p not in seen]


def picture(scan: LinkScan, pages: list[str], orphans: set[str]) -> dict:
    """What the picture draws: the first DRAWN pages (start first) as [label, kind], links as index pairs."""
    drawn = ([scan.start] if scan.start in pages else []) + [p for p in pages if p != scan.start]
    drawn = drawn[:DRAWN]
    index = {page: number for number, page in enumerate(drawn)}
    nodes = [[cut(posixpath.splitext(posixpath.basename(p))[0], 30),
              ("start" if p == scan.start else "orphan" if p in orphans else "page")
              + (" broken" if p in scan.broken_pages else "")] for p in drawn]
    edges = sorted([index[s], index[t]] for s, t in scan.edges if s in index and t in index and s != t)
    return {"nodes": nodes, "edges": edges[:DRAWN_LINKS]}


SHORTENED = ("broken", "orphans", "unreachable", "notes", "edges")  # the lists fit() may shorten


def summary(scan: LinkScan, pages: list[str]) -> dict:
    """The saved result: counts, the limits hit, and the first few of each list."""
    linked = {target for source, target in scan.edges if source != target}
    orphans = [p for p in pages if p not in linked and p != scan.start]
    unreachable = unreachable_from(scan.start, pages, scan.edges)
    result = {"start": cut(scan.start), "limits": scan.limits,
              "counts": {"pages": len(pages), "links": len(scan.edges), "broken": scan.broken.count,
                         "orphans": len(orphans), "unreachable": len(unreachable), "notes": scan.notes.count,
                         "checked": scan.checked},
              "broken": scan.broken.first, "orphans": [cut(p) for p in orphans[:LISTED]],
              "unreachable": [cut(p) for p in unreachable[:LISTED]], "notes": scan.notes.first,
              **picture(scan, pages, set(orphans))}
    result = fit(result)
    result["capped"] = bool(result["limits"]) or any(len(result[name]) < result["counts"][name]
                                                     for name in ("broken", "orphans", "unreachable", "notes"))
    return result


def json_size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False))


def fit(result: dict, limit: int = RESULT_CHARS - 20) -> dict:  # 20: room for the "capped" flag
    """The result with its longest list halved until its JSON has at most `limit` characters."""
    while json_size(result) > limit:
        longest = max(SHORTENED, key=lambda name: json_size(result[name]))
        if not result[longest]:
            break
        result[longest] = result[longest][:len(result[longest]) // 2]
    return result


def link_graph(folder_text: str, start: str, progress=no_progress) -> dict:
    """Map a folder's links from `start` (bounded; see the module notes)."""
    folder = Path(folder_text).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is no longer a folder")
    return LinkScan(folder, start, progress).run()
