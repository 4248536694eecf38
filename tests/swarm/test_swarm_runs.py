"""Real locust swarms, in subprocesses, against servers on 127.0.0.1."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import psutil
import pytest
from faulty_servers import ReorderingServer

from harness.server.embedded import EmbeddedServer

pytestmark = pytest.mark.slow


def swarm(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "swarm", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def swarm_under_way(users: int, *args: str, live_lines: int = 1) -> subprocess.Popen[str]:
    """Start a swarm and return once its live line shows every participant joined."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "swarm", "--users", str(users), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        seen += line.startswith("[") and f"users {users}/{users}" in line
        if seen == live_lines:
            break
    return process


def locust_totals(run_dir: Path) -> dict[str, int]:
    with open(run_dir / "locust" / "stats_stats.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    totals: dict[str, int] = {}
    for row in rows:
        if row["Type"]:
            totals[row["Type"]] = totals.get(row["Type"], 0) + int(row["Request Count"])
    return totals


def test_two_worker_swarm_merges_stats_and_is_valid(tmp_path):
    run_dir = tmp_path / "run"
    done = swarm(
        "--users", "24", "--spawn-rate", "24", "--run-time", "6s",
        "--processes", "2", "--out", str(run_dir), "--slo", "notify.p99<5s",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "verdict: VALID" in done.stdout
    assert "users 24/24" in done.stdout  # the live console line

    info = orjson.loads((run_dir / "run.json").read_bytes())
    assert info["complete"] is True and info["verdict"] == "valid"
    workers = info["processes"]
    assert len(workers) == 2 and len({w["name"] for w in workers}) == 2
    # The master's totals are the sum of what each worker reported, per request type.
    master = locust_totals(run_dir)
    for kind in ("SET", "GET", "JOIN", "NOTIFY"):
        per_worker = sum(w["requests"].get(kind, 0) for w in workers)
        assert per_worker > 0, kind
        assert master[kind] == per_worker == info["requests"][kind], kind
    assert sorted(p.name for p in (run_dir / "history").iterdir()) == sorted(
        f"{w['name']}.jsonl" for w in workers
    )
    for name in ("verdict.json", "locust/report.html", "report/report.html", "report/notify.hgrm"):
        assert (run_dir / name).is_file(), name
    report = orjson.loads((run_dir / "report" / "report.json").read_bytes())
    assert report["thresholds"][0]["passed"] is True


def test_swarm_against_a_reordering_server_fails_and_names_the_anomaly(tmp_path):
    run_dir = tmp_path / "run"
    with EmbeddedServer(ReorderingServer) as server:
        done = swarm(
            "--url", server.url, "--scenario", "notes", "--users", "8", "--spawn-rate", "8",
            "--run-time", "4s", "--out", str(run_dir),
        )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "verdict: INVALID" in done.stdout
    verdict = orjson.loads((run_dir / "verdict.json").read_bytes())
    assert verdict["result"] == "invalid"
    assert "order_divergence" in verdict["counts"], verdict["counts"]


def test_unreachable_server_exits_2_with_a_reason(tmp_path):
    done = swarm("--url", "ws://127.0.0.1:9/", "--run-time", "2s", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "unreachable" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "0"], "--users must be at least 1"),
        (["--run-time", "soon"], "is not a duration"),
        (["--slo", "notify.p99<fast"], "notify.p99<fast"),
        (["--weight-set", "-1"], "weights"),
    ],
)
def test_bad_options_exit_2_naming_the_option(tmp_path, args, message):
    done = swarm(*args, "--out", str(tmp_path), timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_interrupt_still_produces_the_verdict(tmp_path):
    run_dir = tmp_path / "run"
    process = swarm_under_way(10, "--run-time", "2m", "--out", str(run_dir))
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output[-3000:]
    assert "verdict: VALID" in output
    info = orjson.loads((run_dir / "run.json").read_bytes())
    assert info["complete"] is True and info["verdict"] == "valid"
    assert (run_dir / "report" / "report.html").is_file()


def test_a_server_that_goes_away_is_counted_not_waited_for(tmp_path):
    run_dir = tmp_path / "run"
    server = EmbeddedServer().start()
    process = swarm_under_way(
        6, "--url", server.url, "--run-time", "8s", "--request-timeout", "1", "--out", str(run_dir)
    )
    server.stop()
    output = process.communicate(timeout=90)[0]
    assert process.returncode in (0, 1), output[-3000:]
    assert "Traceback" not in output
    with open(run_dir / "locust" / "stats_stats.csv", newline="") as file:
        connects = [row for row in csv.DictReader(file) if row["Type"] == "CONNECT"]
    # Participants kept trying (with backoff) and every failed attempt was counted.
    assert connects and int(connects[0]["Failure Count"]) > 0
    assert orjson.loads((run_dir / "run.json").read_bytes())["complete"] is True


def test_a_killed_swarm_leaves_a_run_directory_that_reports_as_partial(tmp_path):
    run_dir = tmp_path / "run"
    # Two live lines: some seconds of recorded work.
    process = swarm_under_way(8, "--run-time", "2m", "--out", str(run_dir), live_lines=2)
    for child in psutil.Process(process.pid).children(recursive=True):
        child.kill()  # kill -9 of locust (and the server), then of the command itself
    process.kill()
    process.communicate(timeout=30)

    assert orjson.loads((run_dir / "run.json").read_bytes())["complete"] is False
    assert any(p.stat().st_size for p in (run_dir / "history").iterdir())
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(run_dir), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "partial run" in done.stdout
    report = orjson.loads((out / "report.json").read_bytes())
    assert report["partial"] is True
    assert report["metrics"]["set"]["count"] > 0
    checked = subprocess.run(
        [sys.executable, "-m", "harness", "check", *map(str, (run_dir / "history").iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_sweep_runs_each_count_and_charts_them(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "harness", "sweep", "--users", "4,8", "--run-time", "3s",
         "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = orjson.loads((tmp_path / "sweep.json").read_bytes())
    assert [row["participants"] for row in rows] == [4, 8]
    assert all(row["notify_p50"] for row in rows)
    assert (tmp_path / "sweep.html").is_file()
    assert orjson.loads((tmp_path / "users-8" / "run.json").read_bytes())["verdict"] == "valid"


def test_a_history_window_keeps_long_runs_checkable_and_sound(tmp_path):
    run_dir = tmp_path / "run"
    done = swarm(
        "--users", "16", "--spawn-rate", "16", "--run-time", "9s", "--processes", "2",
        "--history-seconds", "3", "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "covers the first 3 s" in done.stdout and "verdict: VALID" in done.stdout
    info = orjson.loads((run_dir / "run.json").read_bytes())
    assert info["history_window_s"] == 3 and info["verdict"] == "valid"
    events = [
        orjson.loads(line)
        for path in (run_dir / "history").iterdir()
        for line in path.read_bytes().splitlines()
    ]
    times = [event["t"] for event in events if "t" in event]
    # Recording stopped at the checkpoint, though the load went on for 9 s.
    assert (max(times) - min(times)) / 1e9 < 6
    assert sum(event["ev"] == "closed" for event in events) >= 16
    # The load itself was not cut short: locust counted requests after the checkpoint.
    assert info["requests"]["SET"] > sum(event.get("op") == "set" for event in events) // 2


def test_a_subclass_with_its_own_tasks_is_its_own_scenario(tmp_path, server_url):
    locustfile = tmp_path / "moderators.py"
    locustfile.write_text(
        "from locust import constant, task\n"
        "from harness.swarm.locustfile import StoreParticipant\n\n"
        "class Moderator(StoreParticipant):\n"
        "    wait_time = constant(0.05)\n\n"
        "    @task\n"
        "    def block_chat(self):\n"
        "        self.write('BLOCK_CHAT', self.new_value())\n"
    )
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "4",
         "-r", "4", "-t", "3s", "--host", server_url, "--run-dir", str(run_dir),
         "--only-summary", "--live-interval", "0"],
        capture_output=True,
        text=True,
        timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert orjson.loads((run_dir / "run.json").read_bytes())["verdict"] == "valid"
    writes = [
        event
        for path in (run_dir / "history").iterdir()
        for event in map(orjson.loads, path.read_bytes().splitlines())
        if event.get("op") == "set" and event["ev"] == "invoke"
    ]
    assert writes and {event["key"] for event in writes} == {"BLOCK_CHAT"}
