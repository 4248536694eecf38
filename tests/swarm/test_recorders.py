"""A worker ships its files to the master only when the master cannot read them itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# In a child process: importing the swarm's modules imports locust, which patches gevent.
SCRIPT = """
import json, sys
from pathlib import Path
from harness.swarm.recorders import Recorders
from harness.swarm.reporting import LocustReporter

run_dir, run_id = Path(sys.argv[1]), sys.argv[2]
from locust import events
recorders = Recorders(run_dir, "worker-1", LocustReporter(events.request), run_id=run_id)
print(json.dumps(sorted(recorders.close())))
"""


def shipped(run_dir: Path, run_id: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run_dir), run_id],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_a_worker_sharing_the_masters_run_directory_ships_nothing(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r-1"}))
    assert shipped(tmp_path, "r-1") == []


def test_a_worker_on_another_machine_ships_its_history_and_latency(tmp_path: Path) -> None:
    # Another machine: the same path holds no run.json of this run (or another run's).
    assert shipped(tmp_path, "r-1") == ["history/worker-1.jsonl", "latency/worker-1.jsonl"]
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "an-older-run"}))
    assert len(shipped(tmp_path, "r-1")) == 2
