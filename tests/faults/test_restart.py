"""Server restarts: the epoch file, the embedded server on its old port, user commands."""

from __future__ import annotations

import threading

import pytest

from harness.client.sync import StoreClient
from harness.errors import ConnectionLost, HarnessError
from harness.faults.epochs import EpochFile, epoch_session
from harness.faults.restart import RestartableServer, Restarter, run_restart_command


def test_epoch_file_round_trip(tmp_path):
    epochs = EpochFile(tmp_path / "epoch.json")
    assert epochs.read() == (0, False)  # no file: no restart has happened
    epochs.write(2, restarting=True)
    assert epochs.read() == (2, True)
    (tmp_path / "epoch.json").write_text("{torn")
    assert epochs.read()[1] is True  # unreadable: nobody joins a session it cannot name


def test_each_epoch_is_its_own_session():
    assert epoch_session("swarm-1", 0) == "swarm-1"
    assert epoch_session("swarm-1", 3) == "swarm-1.r3"


def test_the_reference_server_restarts_on_the_same_port_and_forgets():
    server = RestartableServer().start()
    try:
        url = server.url
        with StoreClient(url) as client:
            client.join("s", "p", "P")
            client.set("k", "before")
            server.restart()
            with pytest.raises(ConnectionLost):
                client.get("k")
        assert server.url == url
        with StoreClient(url) as client:
            client.join("s", "p", "P")
            assert client.get("k") is None  # in memory: the restart lost it
    finally:
        server.stop()


def test_a_failing_restart_command_is_reported(tmp_path):
    log = tmp_path / "restart.log"
    with pytest.raises(HarnessError, match="exited with 3"):
        run_restart_command("echo going down; exit 3", 10, log)
    assert "going down" in log.read_text()
    assert run_restart_command("true", 10) == "ran 'true'"


def test_a_hanging_restart_command_is_killed_not_waited_for(tmp_path):
    with pytest.raises(HarnessError, match=r"timed out after 0\.5s"):
        run_restart_command("sleep 60", 0.5, tmp_path / "log")


def test_the_restarter_marks_each_restart_and_records_failures(tmp_path):
    epochs = EpochFile(tmp_path / "epoch.json")
    seen: list[tuple[int, bool]] = []
    recorded = threading.Semaphore(0)

    def restart() -> str:
        seen.append(epochs.read())  # what participants see while it runs
        if len(seen) == 2:
            raise HarnessError("the command exited with 1")
        return "ok"

    restarter = Restarter(
        0.05, restart, epochs, until_s=0.17, on_record=lambda record: recorded.release()
    ).start()
    for _ in range(3):
        assert recorded.acquire(timeout=30)
    restarter.stop()
    assert seen == [(0, True), (1, True), (2, True)]
    assert [(r.epoch, r.ok) for r in restarter.records] == [(1, True), (2, False), (3, True)]
    assert epochs.read() == (3, False)
