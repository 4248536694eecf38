"""``store-harness run``: the examples at reduced scale, and a threshold that stops a run.

Real locust runs in subprocesses against servers on 127.0.0.1. The examples run at
``--scale`` (participants, stage durations and starts times the factor; rates stay),
so each takes seconds instead of minutes.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from harness.plan.stages import StagePlan
from harness.server.embedded import EmbeddedServer

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: (example, scale, extra flags): the moderation scenario's 5% writers would often be
#: none among 20 participants, so the join storm runs with more of them.
REDUCED = [
    ("ci-smoke.toml", 0.3, []),
    ("join-storm.toml", 0.05, ["--writer-fraction", "0.5"]),
    ("soak.toml", 0.004, []),
]


def run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def user_counts(run_dir: Path) -> list[tuple[int, int]]:
    """(Unix second, participants) from locust's stats history, one row a second."""
    with open(run_dir / "locust" / "stats_stats_history.csv", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["Name"] == "Aggregated"]
    return [(int(row["Timestamp"]), int(row["User Count"])) for row in rows]


def assert_follows_the_plan(run_dir: Path, info: dict) -> None:
    """Every count locust logged is within one spawn step of what the plan asked for then.

    locust logs whole seconds and the shape ticks once a second, so the plan's count
    anywhere in the second around a row counts, widened by one second of spawning.
    """
    plan = StagePlan.from_json(info["plan"]["stages"])
    origin = info["plan"]["origin"]
    checked = 0
    for second, users in user_counts(run_dir):
        t = second - origin
        if not 0 <= t < plan.duration - 1:
            continue  # before the first tick, or the run is ending
        around = [plan.participants_at(min(max(0.0, t + d / 10), plan.duration - 1e-3))
                  for d in range(-10, 11)]  # fmt: skip
        stage = plan.at(max(0.0, t))
        step = stage.spawn_rate if stage is not None else 0.0
        assert min(around) - step - 1 <= users <= max(around) + step + 1, (t, users, around)
        checked += 1
    assert checked >= plan.duration / 2  # the check saw most of the run


@pytest.mark.parametrize(("example", "scale", "extra"), REDUCED, ids=[e[0] for e in REDUCED])
def test_each_example_runs_at_reduced_scale(
    tmp_path: Path, example: str, scale: float, extra: list[str]
) -> None:
    run_dir = tmp_path / "run"
    done = run(str(EXAMPLES / example), "--scale", str(scale), "--out", str(run_dir), *extra)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    info = orjson.loads((run_dir / "run.json").read_bytes())
    assert info["complete"] is True and info["verdict"] == "valid"
    assert "aborted" not in info
    dry = run("--dry-run", str(EXAMPLES / example), "--scale", str(scale))
    planned = [line.split()[0] for line in dry.stdout.splitlines()[4:] if line.startswith("  ")]
    assert [s["name"] for s in info["plan"]["stages"]][: len(planned)] == planned[
        : len(info["plan"]["stages"])
    ]
    for name in ("verdict.json", "locust/report.html", "report/report.html", "report/report.json"):
        assert (run_dir / name).is_file(), name
    report = orjson.loads((run_dir / "report" / "report.json").read_bytes())
    marks = [m["name"] for m in report["timeline"]["stages"]]
    assert marks[0] == info["plan"]["stages"][0]["name"]
    assert all(t["passed"] for t in report["thresholds"]) and report["thresholds"]
    assert 'class="stage-mark"' in (run_dir / "report" / "report.html").read_text()
    assert_follows_the_plan(run_dir, info)
    if example == "soak.toml":  # processes = 2 in the file: two locust workers
        assert len(info["processes"]) == 2
        assert info["requests"]["SET"] > 0  # the open model wrote on its schedule


def test_an_abort_on_fail_threshold_stops_a_stalling_run_early(tmp_path: Path) -> None:
    test = tmp_path / "stall.toml"
    test.write_text(
        'participants = 10\nspawn_rate = 10\nrun_time = "5m"\n\n'
        "[[thresholds]]\n"
        'threshold = "notify.p99<100ms"\nabort_on_fail = true\ndelay = "2s"\nwindow = "5s"\n'
    )
    run_dir = tmp_path / "run"
    # Every notification is held a second: the server stalls its observers.
    with EmbeddedServer(notify_delay=1.0) as server:
        started = time.monotonic()
        done = run(str(test), "--url", server.url, "--out", str(run_dir), timeout=120)
        took = time.monotonic() - started
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert took < 30  # configured for 5 minutes
    assert "notify.p99<100ms breached over" in done.stdout
    assert "stopping the run (abort_on_fail)" in done.stdout
    info = orjson.loads((run_dir / "run.json").read_bytes())
    assert info["complete"] is True
    aborted = info["aborted"]
    assert aborted["threshold"] == "notify.p99<100ms" and aborted["measured"] >= 100_000
    assert info["started"] <= aborted["at"] <= info["ended"]
    for name in ("verdict.json", "verdict.txt", "locust/report.html", "report/report.html"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "history").glob("*.jsonl")) and list(
        (run_dir / "latency").glob("*.jsonl")
    )
    report = orjson.loads((run_dir / "report" / "report.json").read_bytes())
    (outcome,) = report["thresholds"]
    assert outcome["passed"] is False and outcome["stopped_run"]
    assert report["verdict"] == "failed"
