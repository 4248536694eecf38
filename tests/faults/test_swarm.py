"""SwarmFaults: the timed faults count from the run's start, as run.json records it."""

from __future__ import annotations

import argparse
import time

import orjson

from harness.faults.swarm import SwarmFaults, run_started_since
from harness.run.directory import write_run_json


def faults_args(**given: object) -> argparse.Namespace:
    defaults = {
        "fault": [], "restart_every": None, "restart_cmd": None,
        "restart_timeout": 5.0, "run_time": "30s",
    }  # fmt: skip
    return argparse.Namespace(**{**defaults, **given})


def test_a_run_started_since_reads_run_json(tmp_path):
    assert not run_started_since(tmp_path, 0.0)  # no run.json yet
    (tmp_path / "run.json").write_bytes(b"{not json")
    assert not run_started_since(tmp_path, 0.0)
    write_run_json(tmp_path, {"started": 100.0})
    assert run_started_since(tmp_path, 100.0) and not run_started_since(tmp_path, 100.5)


def test_restarts_wait_for_the_run_to_start(tmp_path):
    # An earlier run's run.json in the same directory does not start the clock.
    write_run_json(tmp_path, {"started": time.time() - 60})
    args = faults_args(restart_every=0.2, restart_cmd="true", url="ws://127.0.0.1:9/")
    with SwarmFaults(args, "ws://127.0.0.1:9/", tmp_path, None) as faults:
        assert faults.restarter is not None
        time.sleep(0.6)  # three periods: restarts counted from before the run would be due
        assert faults.restarter.records == []
        write_run_json(tmp_path, {"started": time.time()})
        deadline = time.monotonic() + 10
        while not faults.restarter.records and time.monotonic() < deadline:
            time.sleep(0.05)
        assert faults.restarter.records, "the restarts never began after the run started"
    epoch = orjson.loads((tmp_path / "epoch.json").read_bytes())
    assert epoch["epoch"] >= 1 and epoch["restarting"] is False


def test_a_run_that_never_starts_leaves_nothing_running(tmp_path):
    args = faults_args(fault=["partition=50%@0s+1s"], restart_every=0.1, restart_cmd="true")
    with SwarmFaults(args, "ws://127.0.0.1:9/", tmp_path, None) as faults:
        assert faults.proxy is not None
    assert not faults._clock.is_alive()
    assert faults.restarter is not None and faults.restarter.records == []
    assert faults.proxy.stats.partitions_run == 0
