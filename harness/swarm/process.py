"""What one locust process records during a swarm, shared by all its participants.

Each process (the only one, or each worker) streams its history and latency
histograms into the run directory as the run goes, so a killed run keeps what
it measured (a worker on another machine sends them to the master as they grow).
At the end it reads every key once more (the audit, after its participants
stopped) and closes its recorders.
The roles are modules of their own: :mod:`~harness.swarm.recorders`,
:mod:`~harness.swarm.reporting` (locust's rows), :mod:`~harness.swarm.checkpoint`
and :mod:`~harness.swarm.churn`; this one holds them together.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, ClassVar

import gevent

from harness.adapters import sync_client
from harness.client.core import ClientCore, process_tag
from harness.errors import HarnessError, ProtocolViolation
from harness.faults.epochs import EpochFile, epoch_session
from harness.swarm.checkpoint import Checkpoint, FallbackWindow
from harness.swarm.churn import Churn, Churnable
from harness.swarm.config import SwarmConfig
from harness.swarm.recorders import Recorders
from harness.swarm.reporting import Reporting, ViolationsOnly
from harness.swarm.scenarios import Scenario


class SwarmProcess:
    """Recording state of this process; created on first use from locust's options."""

    current: ClassVar[SwarmProcess | None] = None

    @classmethod
    def for_environment(cls, environment: Any) -> SwarmProcess:
        if cls.current is None or cls.current.environment is not environment:
            cls.current = cls(environment)
        return cls.current

    def __init__(self, environment: Any) -> None:
        config = SwarmConfig.from_locust(environment.parsed_options)
        self.environment = environment
        self.config = config
        self.scenario: Scenario = config.build_scenario()
        self.sessions = config.session_names()
        self.request_timeout = config.request_timeout or 10.0
        self.write_rate_per_participant = config.write_rate
        self.tag = process_tag()
        runner = environment.runner
        index = getattr(runner, "worker_index", None)
        is_worker = type(runner).__name__ == "WorkerRunner"
        self.name = f"worker{index}-{self.tag}" if is_worker else f"local-{self.tag}"
        self.run_dir = Path(config.run_dir or f"runs/{self.tag}")
        self.reporting = Reporting(environment.events.request, self.name)
        self.recorders = Recorders(
            self.run_dir,
            self.name,
            self.reporting.requests,
            run_id=config.run_id,
            send=runner.send_message if is_worker else None,
        )
        self.listeners = self.recorders.listeners
        #: What went wrong on the harness's side (an audit that failed...).
        self.problems: list[str] = []
        #: Set at the end of the run: participants start no new request.
        self.stopping = False
        #: Participants of this process that are running.
        self.participants: set[Churnable] = set()
        self.epochs = EpochFile(config.epoch_file) if config.epoch_file else None
        self._churn = (
            Churn(config.churn, self.participants, lambda: self.stopping)
            if config.churn > 0
            else None
        )
        self._checkpoint = (
            self._start_checkpoint(config.history_until) if config.history_until else None
        )
        # Without a window, one is closed only if the checker or the disk falls behind.
        self._fallback = (
            None if self._checkpoint else FallbackWindow(self.run_dir, self._start_checkpoint)
        )
        self._finished: dict[str, Any] | None = None

    def _start_checkpoint(self, until_wall: float) -> Checkpoint:
        self._checkpoint = Checkpoint(
            until_wall,
            in_flight=lambda: self.reporting.requests.in_flight,
            close_history=self._close_history,
            stopping=lambda: self.stopping,
            problem=self.problems.append,
        )
        return self._checkpoint

    @property
    def paused(self) -> bool:
        """During the history checkpoint: participants wait, then go on unrecorded."""
        return self._checkpoint is not None and self._checkpoint.paused

    def quiesce(self, timeout: float = 3.0) -> None:
        """Start no new request and let those in flight complete.

        locust kills users mid-request when a run ends; without this their
        requests would end as unknown outcomes and show up as failures.
        """
        self.stopping = True
        deadline = time.monotonic() + timeout
        while self.reporting.requests.in_flight > 0 and time.monotonic() < deadline:
            gevent.sleep(0.02)

    def _close_history(self) -> None:
        self.audit(self.environment.host)
        self.recorders.history.stop_recording(time.monotonic_ns())

    def epoch(self) -> tuple[int, bool]:
        """(server epoch, restart under way); (0, False) when the run restarts nothing."""
        return self.epochs.read() if self.epochs is not None else (0, False)

    def session_name(self, index: int, epoch: int) -> str:
        """The session participants of ``self.sessions[index]`` join in ``epoch``."""
        return epoch_session(self.sessions[index], epoch)

    def intend(self, client: ClientCore, due_ns: int) -> None:
        self.recorders.latency.intend(client, due_ns)

    def report_connect(self, started: float, error: BaseException | None) -> None:
        self.reporting.connect(started, error)

    def report_churned(self) -> None:
        self.reporting.connects["churned"] += 1

    def audit(self, host: str) -> None:
        """Read every key of the scenario once more, after this process's participants stopped.

        The checker's convergence check compares these reads with the last write.
        Only the last epoch's sessions hold the server's current state.
        """
        deadline = time.monotonic() + 30
        while self.epoch()[1] and time.monotonic() < deadline:
            gevent.sleep(0.2)  # a restart is finishing: audit the server that comes back
        epoch = self.epoch()[0]
        history = self.recorders.history
        for session in (self.session_name(n, epoch) for n in range(len(self.sessions))):
            try:
                listeners = [history, ViolationsOnly(self.reporting.violation)]
                access = self.config.access
                auditor = sync_client(
                    host,
                    adapter=self.config.adapter,
                    listeners=listeners,
                    request_timeout=5,
                    **access.client_options(),
                )
                participant_id = f"{self.tag}-auditor"
                with auditor as client:
                    token = access.token_for(session, participant_id)
                    client.join(session, participant_id, "auditor", token=token)
                    for key in self.scenario.all_keys():
                        client.get(key)
            except ProtocolViolation:
                pass  # counted and quoted by the violation reporter already
            except HarnessError as exc:
                self.problems.append(f"audit of {session!r} failed: {exc}")

    def finish(self, host: str | None) -> dict[str, Any]:
        """Audit, close the recorders (the last of a remote worker's files go); idempotent."""
        if self._finished is not None:
            return self._finished
        if self._churn is not None:
            self._churn.stop()
        if self._checkpoint is not None:
            self._checkpoint.stop()
        if self._fallback is not None:
            self._fallback.stop()
        history = self.recorders.history
        if host and history.stopped_ns is None:
            gevent.sleep(0.5)  # let notifications still in flight arrive
            self.audit(host)
        self.recorders.close()
        reporting = self.reporting
        self._finished = {
            "name": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "requests": dict(reporting.requests.counts),
            "connects": dict(reporting.connects),
            "violations": reporting.violations,
            "violation_count": reporting.violation_count,
            "problems": self.problems[:20],
            "clock": self.recorders.latency.clock(),
            "history_stopped": history.stopped_ns is not None,
        }
        return self._finished
