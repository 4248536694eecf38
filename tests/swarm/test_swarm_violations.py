"""Swarms never swallow a protocol violation: counted, quoted, judged, and the run fails."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from faulty_servers import StopIgnoredServer
from test_swarm_runs import swarm

from harness.server.embedded import EmbeddedServer

pytestmark = pytest.mark.slow

LOCUST_WARNING = "had no tasks left after filtering"


def protocol_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "locust" / "stats_stats.csv", newline="") as file:
        return [row for row in csv.DictReader(file) if row["Type"] == "PROTOCOL"]


def assert_stop_violations_reported(run_dir: Path, output: str) -> dict[str, Any]:
    """What a run against a server that delivers after stop's ok must show; run.json."""
    info = orjson.loads((run_dir / "run.json").read_bytes())
    assert info["violation_count"] > 0 and info["violations"], info
    first = info["violations"][0]
    assert first["requirement"] == "R4.5" and first["kind"] == "update_after_stop"
    assert first["frame"].startswith('{"type":"update"') and first["frame"] in first["message"]
    assert "after stopObserving was acknowledged" in output

    verdict = orjson.loads((run_dir / "verdict.json").read_bytes())
    assert verdict["result"] == "invalid"
    # The real anomaly, and none that the client's own teardown would have caused.
    assert set(verdict["counts"]) == {"update_after_stop"}, verdict["counts"]
    assert verdict["counts"]["update_after_stop"] == info["violation_count"]
    example = verdict["examples"]["update_after_stop"]
    assert example["requirement"] == "R4.5"
    assert example["events"][0]["frame"] in example["message"]
    text = (run_dir / "verdict.txt").read_text()
    assert "update_after_stop (protocol check, R4.5)" in text and '"observerId"' in text

    rows = protocol_rows(run_dir)
    # locust writes its CSV when its runner stops; a stray update that lands while the
    # participants wind down still counts in run.json and the verdict, not in the CSV.
    counted = sum(int(row["Request Count"]) for row in rows)
    assert 0 < counted <= info["violation_count"], rows
    assert all(row["Name"] == "R4.5 update_after_stop" for row in rows), rows
    return info


def test_a_swarm_against_a_server_that_delivers_after_stop_fails_naming_r4_5(tmp_path):
    run_dir = tmp_path / "run"
    with EmbeddedServer(StopIgnoredServer) as server:
        done = swarm(
            "--url", server.url, "--users", "10", "--spawn-rate", "10", "--run-time", "8s",
            "--out", str(run_dir),
        )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert "verdict: INVALID" in done.stdout and "Traceback" not in output
    info = assert_stop_violations_reported(run_dir, done.stdout)
    # Every close after a violation is the client's: none reads as the server's doing.
    closes = [
        event
        for path in (run_dir / "history").iterdir()
        for event in map(orjson.loads, path.read_bytes().splitlines())
        if event["ev"] == "closed" and event.get("violation")
    ]
    assert len(closes) == info["violation_count"] and all(c["by_client"] for c in closes)


def test_a_sweep_against_it_fails_too(tmp_path):
    with EmbeddedServer(StopIgnoredServer) as server:
        done = subprocess.run(
            [sys.executable, "-m", "harness", "sweep", "--url", server.url, "--users", "8",
             "--spawn-rate", "8", "--run-time", "6s", "--out", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=150,
        )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert_stop_violations_reported(tmp_path / "users-8", done.stdout)
    assert (tmp_path / "sweep.html").is_file()


def test_the_default_swarm_prints_no_locust_warning_and_passes(tmp_path):
    done = swarm("--users", "10", "--run-time", "5s", "--out", str(tmp_path / "run"))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "verdict: VALID" in done.stdout
    assert LOCUST_WARNING not in output and "WARNING" not in output, output[-3000:]
    info = orjson.loads((tmp_path / "run" / "run.json").read_bytes())
    assert info["violations"] == [] and info["violation_count"] == 0
    assert protocol_rows(tmp_path / "run") == []


def test_scenario_classes_get_a_task_and_own_tasks_replace_it():
    # In a child process: importing locust monkey-patches the importer.
    script = textwrap.dedent(
        """
        import json
        from locust import task
        from harness.swarm.locustfile import MeetingParticipant, StoreParticipant

        class Moderator(StoreParticipant):
            @task
            def block(self):
                pass

        class Chatty(MeetingParticipant):
            @task(2)
            def chat(self):
                pass

        class Plain(MeetingParticipant):
            pass

        print(json.dumps({
            name: [t.__name__ for t in cls.tasks]
            for name, cls in [("meeting", MeetingParticipant), ("moderator", Moderator),
                              ("chatty", Chatty), ("plain", Plain)]
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {
        "meeting": ["scenario_task"],
        "moderator": ["block"],
        "chatty": ["chat", "chat"],
        "plain": ["scenario_task"],
    }
