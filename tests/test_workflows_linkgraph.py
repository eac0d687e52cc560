"""Link graph: links, broken links and orphans, mapped by a bounded background job that never holds the lock."""

from __future__ import annotations

import json
import threading

import pytest
from fasthtml.common import to_xml

from theseus.actions import OperationError
from theseus.workflows import linkgraph, linkscan
from theseus.workflows.linkscan import MAX_BYTES, MAX_LINKS, RESULT_CHARS, link_graph
from tests.waits import wait_until

HX = {"HX-Request": "true"}


def data_of(runtime, key: str) -> dict:
    return json.loads(runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (key,)))


def submit(runtime, key: str, step: str, value: str = ""):
    return runtime.registry.execute("linkgraph.submit", {"key": key, "step": step, "value": value})


def start_mapping(runtime, folder, start: str = "README.md") -> str:
    """A Link graph run through its three steps: the folder, the start page, and Start of the job."""
    key = runtime.registry.execute("linkgraph.start").value["key"]
    submit(runtime, key, "step_01", str(folder))
    submit(runtime, key, "step_02", start)
    submit(runtime, key, "step_03")
    return key


def mapped(runtime, key: str) -> dict:
    """The job's saved result, once the job has ended."""
    entry = wait_until(lambda: (e := data_of(runtime, key).get("step_03", {})).get("done") and e, "the map")
    return entry["result"]


def write_links(folder, count: int) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "README.md").write_text("# Links\n\n" + "\n".join(["[x](nope.md)"] * count) + "\n")


@pytest.fixture
def held(monkeypatch):
    """Hold the mapping job inside its first page until `release` is set; `inside` is set once it is there."""
    inside, release = threading.Event(), threading.Event()
    parse = linkscan.links_in

    def holding(page, text):
        inside.set()
        release.wait(60)
        return parse(page, text)

    monkeypatch.setattr(linkscan, "links_in", holding)
    yield inside, release
    release.set()


# ---- what it finds ----

def test_the_link_graph_finds_links_broken_links_and_orphans(tmp_path):
    (tmp_path / "guide").mkdir()
    (tmp_path / "README.md").write_text("# Home\n\nSee [the guide](guide/intro.md) and [web](https://x.org).\n\n"
                                        "```\n[not a link](nowhere.md)\n```\n")
    (tmp_path / "guide" / "intro.md").write_text("Back [home](../README.md#top), [missing](gone.md).\n")
    (tmp_path / "guide" / "page.html").write_text('<p><a href="intro.md">intro</a> <a href="#x">x</a></p>')
    (tmp_path / "lonely.md").write_text("nobody links here")
    graph = link_graph(str(tmp_path), "README.md")
    assert graph["counts"] == {"pages": 4, "links": 3, "broken": 1, "orphans": 2, "unreachable": 2, "notes": 0,
                               "checked": 6}
    assert graph["nodes"] == [["README", "start"], ["intro", "page broken"], ["page", "orphan"],
                              ["lonely", "orphan"]]
    assert graph["edges"] == [[0, 1], [1, 0], [2, 1]]
    assert graph["broken"] == [{"page": "guide/intro.md", "line": 1, "href": "gone.md"}]
    assert graph["orphans"] == ["guide/page.html", "lonely.md"]
    assert graph["unreachable"] == ["guide/page.html", "lonely.md"]
    assert graph["limits"] == [] and graph["capped"] is False


def test_the_link_graph_of_the_apps_own_docs_renders_a_picture(client, runtime):
    key = runtime.registry.execute("linkgraph.start").value["key"]
    submit(runtime, key, "step_01", runtime.plugins["linkgraph"].steps[0].suggest({}))
    card = client.get(f"/apps/linkgraph/runs/{key}/steps/step_02", headers=HX).text
    assert "crash-course.md" in card and 'name="value"' in card
    submit(runtime, key, "step_02", "crash-course.md")
    submit(runtime, key, "step_03")
    assert mapped(runtime, key)["counts"]["pages"] > 5
    page = client.get(f"/apps/linkgraph?run={key}").text
    assert "<svg" in page and "link-graph" in page and "revert step 3" in page


# ---- bounded work, small results ----

def test_a_readme_with_150000_links_is_mapped_in_the_background_and_kept_small(client, runtime, tmp_path, held):
    inside, release = held
    write_links(tmp_path / "site", 150_000)
    key = start_mapping(runtime, tmp_path / "site")
    assert inside.wait(30), "the job never reached the page"
    assert runtime.jobs.get(key, "step_03") is not None  # the job is running, in the middle of the page...
    assert client.get("/health").status_code == 200  # ...and the app answers meanwhile
    runtime.registry.execute("tasks.insert", {"name": "written while mapping"})  # the database lock is free
    release.set()
    result = mapped(runtime, key)
    counts = result["counts"]
    assert counts["checked"] == MAX_LINKS and counts["broken"] == MAX_LINKS  # work bounded, counted
    assert result["capped"] is True and 0 < len(result["broken"]) < counts["broken"]
    assert [b["line"] for b in result["broken"][:2]] == [3, 4]  # each link's own line
    assert any(f"first {MAX_BYTES:,} bytes" in note for note in result["notes"])
    assert any(f"first {MAX_LINKS:,} of " in note for note in result["notes"])
    assert len(runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (key,))) < RESULT_CHARS + 1_000
    rows = runtime.db.query("SELECT args, changes FROM events WHERE operation LIKE 'linkgraph.%'")
    assert rows and max(len(r["args"]) + len(r["changes"]) for r in rows) < 50_000
    page = client.get(f"/apps/linkgraph?run={key}").text
    assert len(page) < 100_000
    assert f"the first {len(result['broken']):,} broken links of {MAX_LINKS:,}" in page
    assert page.count("<tr") < 300


def test_every_list_is_cut_to_fit_and_the_page_says_first_n_of_m(client, runtime, tmp_path):
    folder = tmp_path / "long"
    folder.mkdir()
    (folder / "README.md").write_text("start")
    for number in range(150):
        (folder / f"{'a-long-page-name-' * 8}{number:03d}.md").write_text(f"[x]({'missing-' * 15}{number}.md)")
    key = start_mapping(runtime, folder)
    result = mapped(runtime, key)
    assert result["counts"]["broken"] == 150 and result["counts"]["orphans"] == 150
    assert len(json.dumps(result, ensure_ascii=False)) <= RESULT_CHARS
    assert len(result["broken"]) < 150 and len(result["orphans"]) < 150 and result["capped"] is True
    assert "Showing the first" in client.get(f"/apps/linkgraph?run={key}").text


@pytest.mark.parametrize("bound, value, limit", [
    ("MAX_PAGES", 3, "stopped after 3 pages"),
    ("MAX_ENTRIES", 4, "stopped after looking at 4 files and folders"),
    ("MAX_ALL_LINKS", 2, "stopped after checking 2 links"),
    ("TIME_BUDGET", 0, "stopped after 0 seconds"),
])
def test_each_bound_stops_the_scan_and_says_so(tmp_path, monkeypatch, bound, value, limit):
    for name in ("a", "b", "c", "d", "e"):
        (tmp_path / f"{name}.md").write_text("[next](a.md) [gone](gone.md)")
    monkeypatch.setattr(linkscan, bound, value)
    graph = link_graph(str(tmp_path), "a.md")
    assert any(line.startswith(limit) for line in graph["limits"]) and graph["capped"] is True
    assert graph["counts"]["pages"] < 5


# ---- stopping ----

def test_cancel_stops_the_job_inside_a_page(runtime, tmp_path, held):
    inside, release = held
    write_links(tmp_path / "site", 3 * linkscan.TICK)
    key = start_mapping(runtime, tmp_path / "site")
    assert inside.wait(30)
    runtime.registry.execute("linkgraph.cancel", {"key": key})
    release.set()
    error = wait_until(lambda: data_of(runtime, key).get("step_03", {}).get("error"), "the cancellation")
    assert error.startswith("Cancelled")


def test_a_server_stop_ends_the_job_and_leaves_the_step_to_start_again(runtime, tmp_path, held):
    inside, release = held
    write_links(tmp_path / "site", 3 * linkscan.TICK)
    key = start_mapping(runtime, tmp_path / "site")
    assert inside.wait(30)
    thread = next(t for t in threading.enumerate() if t.name == f"job-{key}")
    runtime.jobs.close()
    release.set()
    thread.join(30)
    assert not thread.is_alive() and "step_03" not in data_of(runtime, key)


# ---- the folder ----

@pytest.mark.parametrize("folder", ["/", "/usr", "/proc/self", "/etc"])
def test_system_folders_are_refused_without_looking_inside(runtime, monkeypatch, folder):
    looked = []
    monkeypatch.setattr(linkgraph, "find_pages", lambda *args: looked.append(args))
    key = runtime.registry.execute("linkgraph.start").value["key"]
    with pytest.raises(OperationError, match="is a system folder"):
        submit(runtime, key, "step_01", folder)
    assert looked == [] and "step_01" not in data_of(runtime, key)


def test_a_folder_without_pages_is_refused_after_a_bounded_look(runtime, tmp_path, monkeypatch):
    for number in range(20):
        (tmp_path / f"{number}.txt").write_text("not a page")
    key = runtime.registry.execute("linkgraph.start").value["key"]
    with pytest.raises(OperationError, match="has no markdown or HTML pages"):
        submit(runtime, key, "step_01", str(tmp_path))
    monkeypatch.setattr(linkgraph, "CHOICE_ENTRIES", 10)
    (tmp_path / "z.md").write_text("a page, but past the first ten entries")
    with pytest.raises(OperationError, match="No markdown or HTML page among the first 10 files"):
        submit(runtime, key, "step_01", str(tmp_path))


def test_a_run_stored_before_the_limits_still_renders_small():
    """A result saved by an older version may list every broken link it found: showing it stays bounded."""
    broken = [{"page": "README.md", "line": n, "href": "nope.md"} for n in range(150_000)]
    old = {"counts": {"pages": 1, "links": 150_000, "broken": 150_000}, "broken": broken,
           "orphans": [f"p{n}.md" for n in range(50_000)], "nodes": [[f"p{n}.md", "page"] for n in range(5_000)],
           "edges": [[0, n] for n in range(1, 5_000)]}
    html = to_xml(linkgraph.show_graph({"result": old}, {}))
    assert html.count("<tr>") <= 2 * (linkscan.LISTED + 1)
    assert html.count("<circle") <= linkscan.DRAWN and html.count("<line") <= linkscan.DRAWN_LINKS
