"""Short swarms under each kind of fault: the reference server stays VALID under all of
them, and a replicated server that splits its brain under a partition is caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from split_brain import SplitBrainServer

from harness.server.embedded import EmbeddedServer

pytestmark = pytest.mark.slow


def swarm(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "swarm", "--users", "10", "--spawn-rate", "10",
         "--request-timeout", "5", "--out", str(run_dir), *args],
        capture_output=True,
        text=True,
        timeout=150,
    )  # fmt: skip


def valid_run(run_dir: Path, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """run.json of a run that must have ended VALID."""
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "verdict: VALID" in done.stdout
    info = orjson.loads((run_dir / "run.json").read_bytes())
    assert info["complete"] is True and info["verdict"] == "valid"
    return info


def test_latency_jitter_and_bandwidth(tmp_path):
    done = swarm(
        tmp_path, "--run-time", "4s", "--fault", "latency=10ms,jitter=5ms", "--fault",
        "bandwidth=64KiB",
    )  # fmt: skip
    faults = valid_run(tmp_path, done)["faults"]
    assert {"latency", "jitter", "bandwidth"} <= set(faults["kinds"])
    assert faults["proxy"]["bandwidth_bytes_per_s"] == 64 * 1024
    assert faults["proxy_stats"]["accepted"] >= 10 and faults["proxy_stats"]["bytes_down"] > 0


def test_dropped_connections_and_churn(tmp_path):
    done = swarm(tmp_path, "--run-time", "5s", "--fault", "drop=0.2", "--churn", "3")
    info = valid_run(tmp_path, done)
    faults = info["faults"]
    assert {"drop", "churn"} <= set(faults["kinds"]) and faults["churn_per_s"] == 3
    assert faults["proxy_stats"]["cut"].get("drop", 0) >= 1
    assert sum(p["connects"].get("churned", 0) for p in info["processes"]) >= 1


def test_partitions_that_drop_and_that_stall(tmp_path):
    done = swarm(
        tmp_path, "--run-time", "6s",
        "--fault", "partition=50%@2s+1s,partition=50%@4s+1s:stall",
    )  # fmt: skip
    faults = valid_run(tmp_path, done)["faults"]
    assert "partition" in faults["kinds"]
    assert [p["mode"] for p in faults["proxy"]["partitions"]] == ["drop", "stall"]
    assert faults["proxy_stats"]["partitions_run"] == 2


def test_restarts_of_the_embedded_server_start_new_epochs(tmp_path):
    done = swarm(tmp_path, "--run-time", "10s", "--restart-every", "3", "--processes", "2")
    info = valid_run(tmp_path, done)
    faults = info["faults"]
    assert "restart" in faults["kinds"]
    restarts = faults["restarts"]
    assert restarts and all(r["ok"] for r in restarts)
    # Every epoch after a restart is a session of its own, each checked on its own.
    assert len(faults["epoch_sessions"]) == len(restarts) + 1
    verdict = orjson.loads((tmp_path / "verdict.json").read_bytes())
    # The keys of every epoch whose session participants joined are judged apart. On a
    # loaded machine participants may still be backing off when the next restart comes,
    # so only the epochs joined are counted.
    joined = {
        event["s"]
        for path in (tmp_path / "history").glob("*.jsonl")
        for event in map(orjson.loads, path.read_bytes().splitlines())
        if event.get("ev") == "invoke" and event.get("op") != "join" and event.get("s")
    }
    assert joined
    if len(joined) > 1:
        assert verdict["stats"]["keys"] > 20  # the mixed scenario's 20 keys, per session


def test_a_failing_restart_command_is_reported_not_waited_for(tmp_path):
    with EmbeddedServer() as server:
        done = swarm(
            tmp_path, "--url", server.url, "--run-time", "5s", "--restart-every", "1",
            "--restart-cmd", "echo cannot restart; exit 3", "--restart-timeout", "5",
        )  # fmt: skip
    faults = valid_run(tmp_path, done)["faults"]
    assert faults["restarts"] and not any(r["ok"] for r in faults["restarts"])
    assert "exited with 3" in faults["restarts"][0]["detail"]
    assert "restart 1 failed" in done.stdout
    assert "cannot restart" in (tmp_path / "restart.log").read_text()


def test_bad_fault_options_exit_2_naming_the_problem(tmp_path):
    for args, message in [
        (["--fault", "partition=30%"], "FRACTION@START+DURATION"),
        (["--restart-cmd", "true"], "--restart-cmd needs --url"),
        (["--url", "ws://127.0.0.1:9/", "--restart-every", "2"], "needs --restart-cmd"),
        (["--churn", "-1"], "--churn"),
    ]:
        done = swarm(tmp_path, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr


def test_a_split_brain_under_a_partition_fails_and_names_the_anomaly(tmp_path):
    healthy, split = tmp_path / "healthy", tmp_path / "split"
    with EmbeddedServer(SplitBrainServer) as server:
        # Without faults its replicas agree: the anomaly below is the partition's doing.
        valid_run(healthy, swarm(healthy, "--url", server.url, "--run-time", "5s"))
        done = swarm(
            split, "--url", server.url, "--run-time", "7s",
            "--fault", "partition=50%@3s+2s",
        )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "verdict: INVALID" in done.stdout
    verdict = orjson.loads((split / "verdict.json").read_bytes())
    found = set(verdict["counts"])
    assert found & {"lost_update", "order_divergence", "gap", "nonlinearizable", "stale_read"}
    assert any(kind in done.stdout for kind in found)  # the anomaly is named in the output
    info = orjson.loads((split / "run.json").read_bytes())
    assert "partition" in info["faults"]["kinds"] and info["verdict"] == "invalid"
