"""A worker whose run directory is not the master's, as on another machine: it sends
its files as they grow, and the master's checker judges them during the run."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import harness.swarm
from harness.server.embedded import EmbeddedServer

pytestmark = pytest.mark.slow

LOCUSTFILE = str(Path(harness.swarm.__file__).with_name("locustfile.py"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_worker_elsewhere_streams_its_history_and_is_judged_live(tmp_path: Path) -> None:
    master_dir, worker_dir = tmp_path / "master", tmp_path / "worker"
    master_dir.mkdir()
    worker_dir.mkdir()
    port = str(free_port())
    with EmbeddedServer() as server:
        # A relative run directory: the worker, started elsewhere, writes its own copy
        # where the master cannot read it, as a worker on another machine does.
        master = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--master", "--headless",
             "--users", "10", "--spawn-rate", "10", "--run-time", "10s",
             "--host", server.url, "--expect-workers", "1", "--stop-timeout", "5",
             "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
             "--loglevel", "WARNING", "--only-summary", "--run-dir", "run"],
            cwd=master_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--worker",
             "--master-host", "127.0.0.1", "--master-port", port, "--loglevel", "WARNING"],
            cwd=worker_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            output, _ = master.communicate(timeout=120)
            worker.wait(30)
        finally:
            for process in (master, worker):
                if process.poll() is None:
                    process.kill()
    assert master.returncode == 0, output[-3000:]
    assert "verdict: VALID" in output
    [shipped] = (master_dir / "run" / "history").iterdir()
    kept = worker_dir / "run" / "history" / shipped.name
    # Every byte the worker recorded reached the master, and nothing else.
    assert shipped.read_bytes() == kept.read_bytes() and kept.stat().st_size > 0
    info = orjson.loads((master_dir / "run" / "run.json").read_bytes())
    assert info["complete"] and info["problems"] == []
    assert info["checker"]["events_judged"] == kept.read_bytes().count(b"\n") - 1
    # Judged while the run went on: the live lines count events the master read.
    judged = [int(n.replace(",", "")) for n in re.findall(r"judged ([\d,]+)", output)]
    assert judged and max(judged) > 0, output[-3000:]
