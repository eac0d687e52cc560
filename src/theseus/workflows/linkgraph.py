"""Link graph: the links between the markdown and HTML pages of a folder, as a picture and tables.

Three steps: the folder, the start page, and the mapping, a background job step
(workflows/jobs.py): it runs outside the database lock with live progress and
Cancel, and stops at the bounds set in linkscan.py. The steps that run inside a
request (the folder check, the start page choices) look at a limited number of
files and folders, and refuse system folders such as `/` outright. The saved
result is small (counts plus the first few of each list), so showing it is
quick: "first N of M" where a list was cut, and a picture of a few dozen pages.
"""

from __future__ import annotations

import math
from pathlib import Path

from fasthtml.common import (Code, Details, Div, Li, P, Small, Strong, Summary, Table, Tbody, Td, Th, Thead, Tr,
                             Ul)
from fasthtml.svg import Circle, Line, Svg, Text

from theseus.workflows.engine import Step, Workflow, folder_step
from theseus.workflows.linkscan import DRAWN, DRAWN_LINKS, LISTED, find_pages, link_graph

START_NAMES = ("README.md", "index.md", "index.html", "crash-course.md")
# inside a request (folder check, start page choices): small bounds
CHOICE_ENTRIES = 2_000    # files and folders looked at (this walk runs while a step is saved or shown)
CHOICES = 500             # pages offered as start page

SYSTEM_FOLDERS = {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc",
                  "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/usr", "/var", "/Users", "/System",
                  "/Library", "/Volumes", "/private"}
VIRTUAL_FOLDERS = ("/proc", "/sys", "/dev")


def system_folder(folder: Path) -> bool:
    """A filesystem root, a top-level system folder, or a folder inside a virtual one (/proc, /sys, /dev)."""
    resolved = folder.resolve()
    return (resolved == Path(resolved.anchor) or resolved.as_posix() in SYSTEM_FOLDERS
            or any(resolved.as_posix().startswith(v + "/") for v in VIRTUAL_FOLDERS))


def folder_problem(folder: Path) -> str | None:
    """Why this folder can't be mapped (a system folder, or no pages found in a bounded look), or None."""
    if system_folder(folder):
        return (f"{folder} is a system folder, far too big to map; choose the folder of your pages, "
                "such as a project's docs folder.")
    listing = find_pages(folder, CHOICE_ENTRIES, 1)
    if listing.pages:
        return None
    if listing.stopped:
        return (f"No markdown or HTML page among the first {CHOICE_ENTRIES:,} files and folders of {folder}; "
                "choose the folder of your pages.")
    return f"{folder} has no markdown or HTML pages."


# ---- showing the result ----
HEADLINE = (("pages", "page"), ("links", "link"), ("broken", "broken link"), ("orphans", "orphan"))


def counted(number: int, noun: str) -> str:
    """'1 page', '2,000 pages'."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def GraphPicture(graph: dict):
    """The drawn pages on a circle, links as lines; the start page, orphans and broken-link pages marked."""
    nodes, size, radius = graph.get("nodes", []), 520, 200
    angles = [2 * math.pi * i / max(len(nodes), 1) - math.pi / 2 for i in range(len(nodes))]
    spots = [(size / 2 + radius * math.cos(a), size / 2 + radius * math.sin(a)) for a in angles]
    lines = [Line(x1=f"{spots[s][0]:.1f}", y1=f"{spots[s][1]:.1f}", x2=f"{spots[t][0]:.1f}",
                  y2=f"{spots[t][1]:.1f}", cls="edge")
             for s, t in graph.get("edges", []) if s < len(spots) and t < len(spots)]
    dots = []
    for (name, kind), (x, y) in zip(nodes, spots):
        dots += [Circle(cx=f"{x:.1f}", cy=f"{y:.1f}", r="7", cls=f"node {kind}"),
                 Text(name, x=f"{x + 9:.1f}", y=f"{y + 4:.1f}", cls="label")]
    pages, links = graph.get("counts", {}).get("pages", 0), graph.get("counts", {}).get("links", 0)
    label = f"Link graph of {counted(pages, 'page')} and {counted(links, 'link')}"
    drawn = f" (the first {len(nodes)} drawn)" if len(nodes) < pages else ""
    return Svg(*lines, *dots, viewBox=f"-60 0 {size + 120} {size}", role="img", cls="link-graph",
               aria_label=label + drawn)


LABELS = {"broken": "broken links", "orphans": "orphans", "unreachable": "unreachable pages", "notes": "notes"}


def shown_of(graph: dict, name: str) -> str:
    """'showing the first N broken links of M' when the list was cut, else ''."""
    shown, total = len(graph.get(name, [])), graph.get("counts", {}).get(name, 0)
    return f"showing the first {shown:,} {LABELS[name]} of {total:,}" if shown < total else ""


def CappedNote(graph: dict):
    """One line saying which limit stopped the mapping and which lists are cut, e.g.
    'Stopped after 2,000 pages; showing the first 40 broken links of 150,000.'"""
    parts = list(graph.get("limits", [])) + [s for name in LABELS if (s := shown_of(graph, name))]
    if not parts:
        return ""
    text = "; ".join(parts)
    return P(Small(text[:1].upper() + text[1:] + "."), cls="graph-capped", role="status")


def BrokenTable(graph: dict):
    if not graph.get("broken"):
        return P(Small("No broken links."))
    return Table(Thead(Tr(Th("Page"), Th("Line"), Th("Broken link"))),
                 Tbody(*[Tr(Td(b["page"]), Td(b["line"]), Td(Code(b["href"]))) for b in graph["broken"]]),
                 cls="broken-links")


def OrphanTable(graph: dict):
    if not graph.get("orphans"):
        return P(Small("No orphans."))
    return Table(Thead(Tr(Th("Orphan page (nothing links to it)"))), Tbody(*[Tr(Td(p)) for p in graph["orphans"]]),
                 cls="orphans")


def ListDetails(graph: dict, name: str, title: str, cls: str):
    """A folded list (unreachable pages, notes), with how many there are."""
    items = graph.get(name, [])
    if not items:
        return ""
    return Details(Summary(f"{title} ({graph.get('counts', {}).get(name, len(items)):,})"),
                   Ul(*[Li(Small(item)) for item in items]), cls=cls)


def drawable(result: dict) -> dict:
    """The result with every list cut to what is shown: a run stored before the limits existed may hold millions."""
    limits = {"nodes": DRAWN, "edges": DRAWN_LINKS} | {name: LISTED for name in LABELS}
    return result | {name: result[name][:limit] for name, limit in limits.items() if isinstance(result.get(name), list)}


def show_graph(entry: dict, values: dict):
    """The finished map: counts, what was cut, the picture, broken links, orphans, unreachable pages, notes."""
    graph = drawable(entry.get("result") or {})
    counts = graph.get("counts", {})
    return Div(P(Strong(", ".join(counted(counts.get(name, 0), noun) for name, noun in HEADLINE))),
               CappedNote(graph), GraphPicture(graph), BrokenTable(graph), OrphanTable(graph),
               ListDetails(graph, "unreachable", f"Unreachable from {graph.get('start', '')}", "unreachable"),
               ListDetails(graph, "notes", "Not read, or not in full", "notes"),
               cls="graph-report")


# ---- the workflow ----
def start_choices(values: dict) -> list[str]:
    """The pages offered as start page: the first CHOICES found, shallowest folders first."""
    return sorted(find_pages(Path(values["step_01"]).expanduser(), CHOICE_ENTRIES, CHOICES).pages)


def map_links(values: dict, job) -> dict:
    """The job step: map the chosen folder from the chosen start page, with progress."""
    return link_graph(values["step_01"], values["step_02"], job.progress)


def default_start(values: dict) -> str:
    pages = start_choices(values)
    return next((n for n in START_NAMES if n in pages), pages[0] if pages else "")


class LinkGraph(Workflow):
    name = "linkgraph"
    display_name = "Link graph"
    description = "Map the links between the markdown and HTML pages of a folder: picture, orphans, broken links."
    order = 230

    steps = [
        folder_step("step_01", "Folder", notes="linkgraph.md#Folder", check=folder_problem,
                    say="Which folder of markdown or HTML pages should I map? The app's own docs are filled in."),
        Step(id="step_02", label="Start page", kind="select", options=start_choices, suggest=default_start,
             notes="linkgraph.md#Start page",
             say="Which page do readers start from? I'll check which pages can't be reached from it."),
        Step(id="step_03", label="Map the links", kind="job", job=map_links, show=show_graph,
             notes="linkgraph.md#Mapping",
             say="Press Start to map {step_01}. It runs in the background: you can reload or leave the page."),
    ]

    def result(self, values):
        return P("The map is above. Fix the broken links in your editor, then revert step 3 and start it "
                 "again to map the folder anew.")
