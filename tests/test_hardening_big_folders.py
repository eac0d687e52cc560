"""A big folder can't freeze the server: Link graph on a README with 150,000 links, and on `/`.

Found by a probe of a running server: mapping such a README held the database lock for 12 minutes
(every other request waited), wrote a 9.4 MB event row, and rendering the run blocked the event
loop for minutes; `value=/` walked the whole filesystem under the lock. Now the mapping is a bounded
background job outside the lock, its result is small, and system folders are refused at once.
Each test waits for states (a threading.Event holds the job mid-page) and counts work, never time.
"""

from __future__ import annotations

import json
import threading

import httpx

from tests.test_workflows_linkgraph import HX, data_of, held, write_links  # noqa: F401 (held is a fixture)
from tests.waits import wait_until
from theseus.db import Database
from theseus.workflows import linkgraph
from theseus.workflows.linkscan import MAX_LINKS

SIZE_BOUND = 200_000  # bytes: what a run's row, one event row or the run's page may grow to


def new_run(http) -> str:
    return http.post("/apps/linkgraph/new", headers=HX).headers["HX-Redirect"].split("run=")[1]


def test_mapping_the_filesystem_root_is_refused_at_once_without_walking(client, runtime, monkeypatch):
    looked = []
    monkeypatch.setattr(linkgraph, "find_pages", lambda *args: looked.append(args))
    key = new_run(client)
    response = client.post("/ops/linkgraph.submit", data={"key": key, "step": "step_01", "value": "/"}, headers=HX)
    assert response.status_code == 400 and "system folder" in response.text
    assert looked == [] and data_of(runtime, key) == {}


def test_a_readme_with_150000_links_leaves_the_server_answering_and_the_run_small(live_server, tmp_path, held):
    inside, release = held
    write_links(tmp_path / "site", 150_000)
    with httpx.Client(base_url=live_server.url, headers={"origin": live_server.url}, timeout=30) as http:
        key = new_run(http)
        for step, value in (("step_01", str(tmp_path / "site")), ("step_02", "README.md"), ("step_03", "")):
            answer = http.post("/ops/linkgraph.submit", data={"key": key, "step": step, "value": value}, headers=HX)
            assert answer.status_code == 200, answer.text
        assert inside.wait(30), "the job never reached the README"
        assert http.get("/health").status_code == 200  # the job is mid-page, and the server answers...
        assert http.post("/ops/tasks.insert", data={"name": "typed while mapping"}, headers=HX).status_code == 200
        release.set()  # ...and writes: the job does not hold the database lock
        runtime = live_server.runtime
        wait_until(lambda: data_of(runtime, key).get("step_03", {}).get("done"), "the map")
        page = http.get(f"/apps/linkgraph?run={key}")
    assert page.status_code == 200 and len(page.text) < SIZE_BOUND
    assert f"broken links of {MAX_LINKS:,}" in page.text
    result = data_of(runtime, key)["step_03"]["result"]
    assert result["capped"] is True and result["counts"]["checked"] == MAX_LINKS
    assert len(runtime.db.value("SELECT data FROM pipelines WHERE key = ?", (key,))) < SIZE_BOUND
    sizes = [len(r["args"]) + len(r["changes"]) for r in runtime.db.query("SELECT args, changes FROM events")]
    assert max(sizes) < SIZE_BOUND


def test_stopping_the_server_mid_mapping_ends_the_job_and_leaves_the_step_open(live_server, config, tmp_path, held):
    inside, release = held
    write_links(tmp_path / "site", 3_000)
    key = live_server.execute("linkgraph.start", actor="user").value["key"]
    for step, value in (("step_01", str(tmp_path / "site")), ("step_02", "README.md"), ("step_03", "")):
        live_server.execute("linkgraph.submit", {"key": key, "step": step, "value": value}, actor="user")
    assert inside.wait(30)
    job = next(t for t in threading.enumerate() if t.name == f"job-{key}")
    live_server.stop()  # the server shuts down while the job is held mid-page
    assert not live_server.thread.is_alive()
    release.set()
    job.join(30)
    assert not job.is_alive()
    database = Database(config.db_path)
    try:
        data = json.loads(database.value("SELECT data FROM pipelines WHERE key = ?", (key,)))
    finally:
        database.close()
    assert data["step_02"]["done"] and "step_03" not in data  # ready to start again
