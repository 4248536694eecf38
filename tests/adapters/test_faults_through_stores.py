"""Faults through a real store: a swarm against etcd through the fault proxy (latency,
jitter, a partition) and across restarts of the etcd process keeps a sound verdict."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from adapter_helpers import valid_swarm, wait_until
from etcd_server import EtcdServer

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent.parent

#: The restart command: SIGKILL the etcd named in the state file (no chance to flush or
#: say goodbye), wait until its port refuses, start a new one on the same ports and data
#: directory, wait until it is healthy, and record its pid for the next restart.
RESTART_SCRIPT = """\
import json, os, signal, socket, sys, time
from pathlib import Path

sys.path.insert(0, sys.argv[2])
from etcd_server import EtcdServer

state_path = Path(sys.argv[1])
state = json.loads(state_path.read_text())
os.kill(state["pid"], signal.SIGKILL)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", state["port"]), timeout=0.5).close()
    except OSError:
        break
    time.sleep(0.05)
else:
    sys.exit(f"etcd still listens on {state['port']} after SIGKILL")
etcd = EtcdServer(Path(state["data_dir"]), state["port"], state["peer_port"]).__enter__()
state["pid"] = etcd.process.pid
state["restarts"] += 1
state_path.write_text(json.dumps(state))
# Left running on purpose: the next restart, or the test's teardown, stops it.
"""


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def restartable_etcd(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """An etcd of this test's own (restarting it disturbs no other test), the command that
    restarts it, and its state file; the last etcd the command started is stopped after."""
    state_path, script = tmp_path / "etcd-state.json", tmp_path / "restart_etcd.py"
    script.write_text(RESTART_SCRIPT)
    command = shlex.join([sys.executable, str(script), str(state_path), str(TESTS)])
    with EtcdServer(tmp_path / "etcd") as etcd:
        assert etcd.process is not None
        first = etcd.process.pid
        state = {"pid": first, "port": etcd.port, "peer_port": etcd.peer_port, "restarts": 0}
        state_path.write_text(json.dumps({**state, "data_dir": str(etcd.data_dir)}))
        try:
            yield etcd.url("faults"), command, state_path
        finally:
            last = json.loads(state_path.read_text())["pid"]
            if last != first:  # not our child: the restart command started it
                os.kill(last, signal.SIGTERM)
                wait_until(lambda: pid_gone(last), "the restarted etcd to stop")


def test_latency_jitter_and_a_partition_between_swarm_and_etcd(etcd_url, tmp_path):
    info = valid_swarm(
        etcd_url, tmp_path / "run", "--fault", "latency=20ms,jitter=5ms,partition=30%@5s+3s"
    )
    faults = info["faults"]
    assert {"latency", "jitter", "partition"} <= set(faults["kinds"])
    stats = faults["proxy_stats"]
    assert stats["partitions_run"] == 1 and sum(stats["cut"].values()) >= 1
    # The verdict judged real traffic through the proxy, not an idle swarm.
    assert info["requests"]["SET"] > 0 and info["requests"]["NOTIFY"] > 0


def test_restarts_of_the_etcd_process_keep_the_verdict_sound(restartable_etcd, tmp_path):
    url, command, state_path = restartable_etcd
    info = valid_swarm(
        url, tmp_path / "run", "--run-time", "18s", "--restart-every", "6",
        "--restart-cmd", command, "--restart-timeout", "20",
    )  # fmt: skip
    faults = info["faults"]
    restarts = faults["restarts"]
    assert len(restarts) == 2 and all(r["ok"] for r in restarts), restarts
    assert json.loads(state_path.read_text())["restarts"] == 2  # etcd really was killed twice
    assert len(faults["epoch_sessions"]) == len(restarts) + 1
    verdict = json.loads((tmp_path / "run" / "verdict.json").read_text())
    # The mixed scenario's 20 keys, in more than one epoch's session: work went on after.
    assert verdict["stats"]["keys"] > 20
    assert info["requests"]["SET"] > 0 and info["requests"]["NOTIFY"] > 0
