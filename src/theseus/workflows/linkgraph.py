"""Link graph: the links between the markdown and HTML pages of a folder, as a picture and two tables.

Links are read with real parsers (markdown-it for markdown, html.parser for
HTML), so links inside code blocks are not counted. A relative link to a file
that does not exist is broken; a page no other page links to is an orphan;
a page that cannot be reached from the start page by following links is
unreachable.
"""

from __future__ import annotations

import math
import posixpath
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fasthtml.common import Code, Details, Div, P, Small, Strong, Summary, Table, Tbody, Td, Th, Thead, Tr
from fasthtml.svg import Circle, Line, Svg, Text
from markdown_it import MarkdownIt

from theseus.workflows.engine import Step, Workflow, folder_step

PAGE_SUFFIXES = {".md", ".markdown", ".html", ".htm"}
MAX_PAGES = 500
MAX_BYTES = 2_000_000  # larger pages are skipped
DRAWN = 80  # nodes drawn in the picture
START_NAMES = ("README.md", "index.md", "index.html", "crash-course.md")


def pages_in(folder: Path) -> list[str]:
    """The folder's pages, as paths relative to it ('/'-separated), sorted."""
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.suffix.lower() in PAGE_SUFFIXES and p.is_file() and not p.is_symlink())
    return found[:MAX_PAGES]


def has_no_pages(folder: Path) -> str | None:
    return None if pages_in(folder) else f"{folder} has no markdown or HTML pages."


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
    return found


def html_links(text: str) -> list[tuple[str, int]]:
    parser = HrefParser()
    parser.feed(text)
    return parser.links


def target_of(page: str, href: str) -> str | None:
    """The page a relative link points to (folder-relative), or None for external and in-page links."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), unquote(parts.path)))


def link_graph(folder_text: str, start: str) -> dict:
    """Pages, links, broken links, orphans and pages unreachable from `start`."""
    folder = Path(folder_text).expanduser()
    pages = pages_in(folder)
    known = set(pages)
    links, broken, skipped = [], [], []
    for page in pages:
        path = folder / page
        if path.stat().st_size > MAX_BYTES:
            skipped.append(f"{page}: larger than {MAX_BYTES // 1_000_000} MB")
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found = html_links(text) if path.suffix.lower() in {".html", ".htm"} else markdown_links(text)
        for href, line in found:
            target = target_of(page, href)
            if target is None:
                continue
            if target in known:
                links.append([page, target])
            elif not (folder / target).exists():
                broken.append({"page": page, "line": line, "href": href})
    linked = {target for source, target in links if source != target}
    return {"pages": pages, "links": sorted(map(list, {tuple(link) for link in links})), "broken": broken,
            "orphans": [p for p in pages if p not in linked and p != start],
            "unreachable": unreachable(pages, links, start), "skipped": skipped, "start": start}


def unreachable(pages: list[str], links: list[list[str]], start: str) -> list[str]:
    seen, frontier = {start}, [start]
    while frontier:
        page = frontier.pop()
        for source, target in links:
            if source == page and target not in seen:
                seen.add(target)
                frontier.append(target)
    return [p for p in pages if p not in seen]


def GraphPicture(graph: dict):
    """The pages on a circle, links as lines; orphans and broken-link pages marked."""
    pages = graph["pages"][:DRAWN]
    size, radius = 520, 200
    spot = {p: (size / 2 + radius * math.cos(2 * math.pi * i / max(len(pages), 1) - math.pi / 2),
                size / 2 + radius * math.sin(2 * math.pi * i / max(len(pages), 1) - math.pi / 2))
            for i, p in enumerate(pages)}
    broken_pages = {b["page"] for b in graph["broken"]}
    lines = [Line(x1=f"{spot[s][0]:.1f}", y1=f"{spot[s][1]:.1f}", x2=f"{spot[t][0]:.1f}", y2=f"{spot[t][1]:.1f}",
                  cls="edge") for s, t in graph["links"] if s in spot and t in spot and s != t]
    nodes = []
    for page, (x, y) in spot.items():
        kind = "start" if page == graph["start"] else "orphan" if page in graph["orphans"] else "page"
        nodes += [Circle(cx=f"{x:.1f}", cy=f"{y:.1f}", r="7", cls=f"node {kind}"
                         + (" broken" if page in broken_pages else "")),
                  Text(Path(page).stem, x=f"{x + 9:.1f}", y=f"{y + 4:.1f}", cls="label")]
    return Svg(*lines, *nodes, viewBox=f"-60 0 {size + 120} {size}", role="img", cls="link-graph",
               aria_label=f"Link graph of {len(graph['pages'])} pages and {len(graph['links'])} links")


def show_graph(entry: dict, values: dict):
    graph = entry["result"]
    broken = Table(Thead(Tr(Th("Page"), Th("Line"), Th("Broken link"))),
                   Tbody(*[Tr(Td(b["page"]), Td(b["line"]), Td(Code(b["href"]))) for b in graph["broken"]]),
                   cls="broken-links") if graph["broken"] else P(Small("No broken links."))
    orphans = Table(Thead(Tr(Th("Orphan page (nothing links to it)"))),
                    Tbody(*[Tr(Td(p)) for p in graph["orphans"]]), cls="orphans") \
        if graph["orphans"] else P(Small("No orphans."))
    return Div(P(Strong(f"{len(graph['pages'])} pages, {len(graph['links'])} links, "
                        f"{len(graph['broken'])} broken, {len(graph['orphans'])} orphans")),
               GraphPicture(graph), broken, orphans,
               Details(Summary(f"Unreachable from {graph['start']} ({len(graph['unreachable'])})"),
                       *[P(Small(p)) for p in graph["unreachable"]]) if graph["unreachable"] else "",
               cls="graph-report")


def start_choices(values: dict) -> list[str]:
    return pages_in(Path(values["step_01"]).expanduser())


def default_start(values: dict) -> str:
    pages = start_choices(values)
    return next((n for n in START_NAMES if n in pages), pages[0] if pages else "")


class LinkGraph(Workflow):
    name = "linkgraph"
    display_name = "Link graph"
    description = "Map the links between the markdown and HTML pages of a folder: picture, orphans, broken links."
    order = 230

    steps = [
        folder_step("step_01", "Folder", notes="linkgraph.md#Folder", check=has_no_pages,
                    say="Which folder of markdown or HTML pages should I map? The app's own docs are filled in."),
        Step(id="step_02", label="Start page", kind="select", options=start_choices, suggest=default_start,
             compute=lambda value, values: link_graph(values["step_01"], value), show=show_graph,
             notes="linkgraph.md#Reading the graph",
             say="Which page do readers start from? I'll check which pages can't be reached from it."),
    ]

    def result(self, values):
        return P("The map is above. Fix the broken links in your editor, then revert step 1 and submit it "
                 "again to map the folder anew.")
