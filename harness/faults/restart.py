"""Server restarts during a swarm, and the epochs that keep the checker sound across them.

A restart may lose the server's state (the reference server keeps it in memory,
and the protocol promises nothing about restarts), so a history that spans one
would read as stale gets and lost updates of the server under test. Instead,
every restart starts a new **epoch**: participants that join after it join a
session of its own, ``<session>.r<N>``, and the checker judges each epoch's
session on its own, with every check it has: nothing is relaxed inside an epoch.

The epoch file (JSON ``{"epoch": N, "restarting": bool}``, replaced atomically)
is how the swarm's processes learn the epoch. The restarter marks it
``restarting`` *before* it touches the server and writes the next epoch only
once the restart is over; a participant reads it *after* its connection is up
and joins only when no restart is under way. So a participant joins epoch N
only on a server of epoch N: if its connection reached the new server, the
restart had begun, and it either saw ``restarting`` (and backs off) or the new
epoch; a connection to the old server dies with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.faults.epochs import EpochFile
from harness.server.embedded import ServerProcess

#: Attempts to bind the restarted reference server to its old port (TIME_WAIT, races).
REBIND_ATTEMPTS = 10


@dataclass
class RestartRecord:
    """One restart, as run.json lists it."""

    epoch: int
    #: Seconds after the swarm started.
    at_s: float
    took_s: float
    ok: bool
    detail: str = ""


class RestartableServer:
    """The embedded reference server, as a child process restarted on the same port."""

    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args
        self.process = ServerProcess(extra_args)

    def start(self) -> RestartableServer:
        self.process.start()
        return self

    @property
    def url(self) -> str:
        return self.process.url

    def restart(self) -> str:
        url = self.process.url
        port = url.rsplit(":", 1)[1].split("/", 1)[0]
        self.process.stop()
        problem: HarnessError | None = None
        for _ in range(REBIND_ATTEMPTS):
            # argparse keeps the last --port: the same port as before.
            candidate = ServerProcess((*self.extra_args, "--port", port))
            try:
                candidate.start()
            except HarnessError as exc:
                problem = exc
                time.sleep(0.2)
                continue
            self.process = candidate
            return f"restarted the reference server on port {port}"
        raise HarnessError(f"could not restart the reference server on port {port}: {problem}")

    def stop(self) -> None:
        self.process.stop()


def run_restart_command(command: str, timeout: float, log_path: Path | None = None) -> str:
    """Run the user's restart command; raises HarnessError when it fails or times out.

    Its output goes to a log file, not a pipe: a command that starts a server in
    the background would keep a pipe open, and reading it would never end.
    """
    log = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            command, shell=True, stdout=log, stderr=log, start_new_session=True
        )
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            # Its own process group: the shell and whatever it started are stopped together.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise HarnessError(f"the restart command timed out after {timeout:g}s") from None
    finally:
        if log_path is not None:
            log.close()  # type: ignore[union-attr]
    if code != 0:
        where = f"; its output is in {log_path}" if log_path is not None else ""
        raise HarnessError(f"the restart command exited with {code}{where}")
    return f"ran {command!r}"


class Restarter:
    """Restarts the server every ``every_s`` seconds until ``until_s`` (or stop())."""

    def __init__(
        self,
        every_s: float,
        restart: Callable[[], str],
        epochs: EpochFile,
        *,
        until_s: float,
        on_record: Callable[[RestartRecord], None] | None = None,
    ) -> None:
        self.every_s = every_s
        self.restart = restart
        self.epochs = epochs
        self.until_s = until_s
        self.on_record = on_record
        self.records: list[RestartRecord] = []
        self.epoch = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="store-harness-restarts", daemon=True
        )
        self._started = 0.0

    def start(self) -> Restarter:
        self.epochs.write(0, restarting=False)
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        due = self.every_s
        # Bounded: one restart per period, none due after until_s.
        while due <= self.until_s and not self._stop.wait(
            max(0.0, self._started + due - time.monotonic())
        ):
            started = time.monotonic()
            self.epochs.write(self.epoch, restarting=True)
            try:
                detail, ok = self.restart(), True
            except HarnessError as exc:
                detail, ok = str(exc), False
                print(f"store-harness: restart {self.epoch + 1} failed: {exc}", flush=True)
            # A new epoch even after a failure: whatever state the server is in, the
            # next epoch's session starts empty, so the checker stays sound.
            self.epoch += 1
            self.epochs.write(self.epoch, restarting=False)
            record = RestartRecord(
                self.epoch,
                round(started - self._started, 3),
                round(time.monotonic() - started, 3),
                ok,
                detail,
            )
            self.records.append(record)
            if self.on_record is not None:
                self.on_record(record)
            due += self.every_s

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(record) for record in self.records]
