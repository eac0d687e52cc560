"""server.json: which process serves a data dir, so `theseus mcp` can forward to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from theseus.running import announce, answers, record_path, running_server, withdraw


def test_a_serving_app_records_itself_and_removes_its_record(live_server):
    record = running_server(live_server.config.data_dir)
    assert record == {"pid": os.getpid(), "url": live_server.url} and answers(record)
    withdraw(live_server.config)
    assert running_server(live_server.config.data_dir) is None


def test_a_dead_servers_record_is_ignored(config):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    config.data_dir.mkdir(parents=True)
    record_path(config.data_dir).write_text(json.dumps({"pid": int(gone.stdout), "url": "http://127.0.0.1:9"}))
    assert running_server(config.data_dir) is None
    announce(config)  # a dead holder's record is replaced
    assert running_server(config.data_dir)["pid"] == os.getpid()


def test_a_second_server_leaves_a_living_ones_record_alone(config):
    config.data_dir.mkdir(parents=True)
    living = {"pid": os.getppid(), "url": "http://127.0.0.1:9"}
    record_path(config.data_dir).write_text(json.dumps(living))
    announce(config)
    withdraw(config)
    assert running_server(config.data_dir) == living
    assert not answers(living)  # nothing answers there as that process: not a server to forward to


def test_a_broken_record_is_no_server(config):
    config.data_dir.mkdir(parents=True)
    for text in ("", "[1, 2]", "{\"pid\": \"1\", \"url\": 5}", "not json"):
        record_path(config.data_dir).write_text(text)
        assert running_server(config.data_dir) is None
