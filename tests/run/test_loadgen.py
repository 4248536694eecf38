"""The load generator writes the run directory the reports (and the swarm) rely on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from harness.errors import HarnessUsageError
from harness.latency.log import read_latency
from harness.reports import build_report
from harness.run.loadgen import LoadPlan, run_load
from harness.run.pacing import OPEN, LoadModel


def test_a_run_directory_holds_run_json_latency_history_and_verdict(
    server_url: str, tmp_path: Path
) -> None:
    plan = LoadPlan(
        server_url, participants=4, writers=2, keys=2, load=LoadModel(OPEN, 40), duration_s=1.0
    )
    result = asyncio.run(asyncio.wait_for(run_load(plan, tmp_path), 60))
    info = orjson.loads((tmp_path / "run.json").read_bytes())
    assert info["complete"] is True
    assert info["participants"] == 4 and info["load"] == {
        "model": "open",
        "rate": 40.0,
        "rate_per": "participant",
    }
    assert info["notification_clock"] == "monotonic"
    assert info["ended"] > info["started"]
    assert result.writes == info["writes"] == 80
    assert result.notifications_received == result.notifications_expected == 80 * 4
    latency = read_latency(tmp_path / "latency")
    assert latency.unfinished == [] and latency.skipped_lines == 0
    assert latency.total("set").get_total_count() == 80
    for operation in ("join", "observe", "get", "stopObserving"):
        assert latency.total(operation).get_total_count() >= 4, operation
    assert list((tmp_path / "history").glob("*.jsonl"))
    assert orjson.loads((tmp_path / "verdict.json").read_bytes())["result"] == "valid"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"participants": 0}, "participants"),
        ({"participants": 2, "writers": 3}, "writers"),
        ({"keys": 101}, "keys"),
        ({"duration_s": 0}, "duration"),
    ],
)
def test_bad_plans_are_usage_errors(options: dict, message: str) -> None:
    with pytest.raises(HarnessUsageError, match=message):
        LoadPlan("ws://127.0.0.1:1/", **options)


def test_a_killed_run_still_reports_what_it_measured_marked_partial(tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.run.loadgen",
            str(run_dir),
            "--participants",
            "3",
            "--model",
            "open",
            "--rate",
            "50",
            "--duration",
            "60",
        ],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = list((run_dir / "latency").glob("*.jsonl"))
            if files and files[0].read_bytes().count(b'"metric":"notify"') >= 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the load generator recorded no interval within 30 s")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    result = build_report(run_dir, out_dir=tmp_path / "out")
    assert result.figures["partial"] is True
    assert result.figures["metrics"]["notify"]["count"] > 0
    assert "partial run" in (tmp_path / "out" / "report.md").read_text()
    assert "partial run" in (tmp_path / "out" / "report.html").read_text()
