"""What one locust process records during a swarm, shared by all its participants.

Each process (the only one, or each worker) streams its history and latency
histograms into the run directory as the run goes, so a killed run keeps what
it measured. At the end it reads every key once more (the audit, after its
participants stopped), closes its recorders and packs its files for the master.
"""

from __future__ import annotations

import os
import random
import socket
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gevent

from harness.client.base import ClientBase, ClientListener, process_tag
from harness.client.sync import StoreClient
from harness.errors import HarnessError, OutcomeUnknown, ProtocolViolation, StoreError
from harness.faults.epochs import EpochFile, epoch_session
from harness.history.events import FRAME_QUOTE_CHARS
from harness.history.recorder import HistoryRecorder
from harness.latency.log import LatencyLog
from harness.latency.recorder import LatencyRecorder
from harness.protocol import Error, PendingRequest, Reply, Update
from harness.protocol.messages import KIND_OF
from harness.swarm.scenarios import Scenario, scenario_named

#: Locust request_type for each protocol request (harness.protocol.kinds), and whether
#: its stats row is the key's group (else the session); then the harness's own rows.
_ROWS = {cls: (kind.locust, kind.keyed) for cls, kind in KIND_OF.items()}
NOTIFY, CONNECT, PROTOCOL = "NOTIFY", "CONNECT", "PROTOCOL"
#: Seconds every process pauses at the history checkpoint.
CHECKPOINT_S = 4.0
#: Violations quoted in full per process; the rest are only counted.
MAX_VIOLATIONS_KEPT = 20


def key_label(key: str) -> str:
    """Group generated keys (``key-17``) into one stats row (``key-*``)."""
    stem = key.rstrip("0123456789")
    return f"{stem}*" if stem != key else key


class LocustReporter(ClientListener):
    """Fires locust's request event for every completed request and every notification,
    and hands every protocol violation a client sees to ``on_violation``.

    Violations come here rather than to a listener of their own, so the per-message
    path calls no extra hook for them.
    """

    def __init__(
        self,
        request_event: Any,
        on_violation: Callable[[ProtocolViolation, ClientBase], None] | None = None,
    ) -> None:
        self.fire = request_event.fire
        self.on_violation = on_violation
        self.counts: Counter[str] = Counter()
        self.in_flight = 0

    def violation_seen(
        self, client: ClientBase, violation: ProtocolViolation, seen_ns: int
    ) -> None:
        if self.on_violation is not None:
            self.on_violation(violation, client)

    def request_sent(self, client: ClientBase, pending: PendingRequest) -> None:
        self.in_flight += 1

    def request_done(
        self, client: ClientBase, pending: PendingRequest, reply: Reply | None, done_ns: int
    ) -> None:
        self.in_flight -= 1
        request = pending.request
        if request is None:
            return
        kind, keyed = _ROWS[type(request)]
        exception: Exception | None = None
        if reply is None:
            exception = OutcomeUnknown("no reply: timed out or connection lost")
        elif isinstance(reply, Error):
            exception = StoreError(reply.code, reply.message, reply.id)
        label = key_label(request.key) if keyed else client.session or ""  # type: ignore[union-attr]
        self.counts[kind] += 1
        self.fire(
            request_type=kind,
            name=label,
            response_time=(done_ns - pending.sent_ns) / 1e6,
            response_length=len(pending.frame),
            exception=exception,
            context={},
        )

    def notified(self, update: Update, latency_us: int, clock: str) -> None:
        self.counts[NOTIFY] += 1
        self.fire(
            request_type=NOTIFY,
            name=f"{key_label(update.key)} ({clock} clock)",
            response_time=latency_us / 1000,
            response_length=0,
            exception=None,
            context={},
        )


class _ViolationsOnly(ClientListener):
    """For the audit's client: its violations are counted too, its reads are not."""

    def __init__(self, on_violation: Callable[[ProtocolViolation, ClientBase], None]) -> None:
        self.on_violation = on_violation

    def violation_seen(
        self, client: ClientBase, violation: ProtocolViolation, seen_ns: int
    ) -> None:
        self.on_violation(violation, client)


class SwarmProcess:
    """Recording state of this process; created on first use from locust's options."""

    current: ClassVar[SwarmProcess | None] = None

    @classmethod
    def for_environment(cls, environment: Any) -> SwarmProcess:
        if cls.current is None or cls.current.environment is not environment:
            cls.current = cls(environment)
        return cls.current

    def __init__(self, environment: Any) -> None:
        options = environment.parsed_options
        self.environment = environment
        self.scenario: Scenario = scenario_from_options(options)
        count = max(1, int(getattr(options, "sessions", 1) or 1))
        session = getattr(options, "session", None) or "swarm"
        self.sessions = [session] if count == 1 else [f"{session}-{n}" for n in range(count)]
        self.request_timeout = float(getattr(options, "request_timeout", 10.0) or 10.0)
        rate = float(getattr(options, "write_rate", 0) or 0)
        self.write_rate_per_participant = rate
        self.tag = process_tag()
        runner = environment.runner
        index = getattr(runner, "worker_index", None)
        is_worker = type(runner).__name__ == "WorkerRunner"
        self.name = f"worker{index}-{self.tag}" if is_worker else f"local-{self.tag}"
        self.run_dir = Path(getattr(options, "run_dir", None) or f"runs/{self.tag}")
        self.reporter = LocustReporter(environment.events.request, self.report_violation)
        self.latency_log = LatencyLog(self.run_dir / "latency" / f"{self.name}.jsonl", self.name)
        self.latency = LatencyRecorder(self.latency_log, on_notify=self.reporter.notified)
        history_dir = self.run_dir / "history"
        history_dir.mkdir(parents=True, exist_ok=True)
        self.history = HistoryRecorder(history_dir / f"{self.name}.jsonl", process=self.name)
        self.listeners: list[ClientListener] = [self.reporter, self.latency, self.history]
        self.connects = Counter[str]()
        #: The first protocol violations participants saw, each quoting its frame.
        self.violations: list[dict[str, Any]] = []
        self.violation_count = 0
        #: What went wrong on the harness's side (an audit that failed...).
        self.problems: list[str] = []
        #: Set at the end of the run: participants start no new request.
        self.stopping = False
        #: Set during the history checkpoint: participants wait, then go on unrecorded.
        self.paused = False
        #: Participants of this process that are running (StoreParticipant instances).
        self.participants: set[Any] = set()
        epoch_file = getattr(options, "epoch_file", None)
        self.epochs = EpochFile(epoch_file) if epoch_file else None
        self.churn_rate = float(getattr(options, "churn", 0) or 0)
        self._ticker = gevent.spawn(self._tick)
        self._churner = gevent.spawn(self._churn) if self.churn_rate > 0 else None
        until = float(getattr(options, "history_until", 0) or 0)
        self._checkpointer = gevent.spawn(self._checkpoint, until) if until else None
        self._finished: dict[str, Any] | None = None

    def quiesce(self, timeout: float = 3.0) -> None:
        """Start no new request and let those in flight complete.

        locust kills users mid-request when a run ends; without this their
        requests would end as unknown outcomes and show up as failures.
        """
        self.stopping = True
        deadline = time.monotonic() + timeout
        while self.reporter.in_flight > 0 and time.monotonic() < deadline:
            gevent.sleep(0.02)

    def _checkpoint(self, until_wall: float) -> None:
        """Close the history at ``until_wall`` (the same wall-clock instant in every process).

        A long run's history outgrows what the checker can hold (about 450 bytes an
        event), so the load goes on unrecorded after a quiet checkpoint: every
        process pauses its participants at the same instant, lets requests and
        updates in flight land, audits every key and stops recording, and only
        resumes once every process has had time to do the same.
        """
        gevent.sleep(max(0.0, until_wall - time.time()))
        if self.stopping:
            return
        self.paused = True
        deadline = time.monotonic() + 3
        while self.reporter.in_flight > 0 and time.monotonic() < deadline:
            gevent.sleep(0.02)
        gevent.sleep(0.5)  # the last updates of the last writes arrive
        self.audit(self.environment.host)
        self.history.stop_recording(time.monotonic_ns())
        if time.time() > until_wall + CHECKPOINT_S:
            self.problems.append("the history checkpoint took longer than the pause")
        gevent.sleep(max(0.0, until_wall + CHECKPOINT_S - time.time()))
        self.paused = False

    def _tick(self) -> None:
        # Quiet seconds and fan-outs get written even when no event rolls the interval.
        while True:
            gevent.sleep(1.0)
            self.latency.roll()

    def _churn(self) -> None:
        # Participants leave and rejoin at churn_rate per second in all, at random times.
        rng = random.Random()
        while not self.stopping:
            gevent.sleep(rng.expovariate(self.churn_rate))
            joined = [
                p for p in self.participants if p.client is not None and not p.leave_requested
            ]
            if joined and not self.stopping:
                rng.choice(joined).leave_requested = True

    def epoch(self) -> tuple[int, bool]:
        """(server epoch, restart under way); (0, False) when the run restarts nothing."""
        return self.epochs.read() if self.epochs is not None else (0, False)

    def session_name(self, index: int, epoch: int) -> str:
        """The session participants of ``self.sessions[index]`` join in ``epoch``."""
        return epoch_session(self.sessions[index], epoch)

    def intend(self, client: ClientBase, due_ns: int) -> None:
        self.latency.intend(client, due_ns)

    def report_connect(self, started: float, error: BaseException | None) -> None:
        self.connects["failed" if error else "ok"] += 1
        self.environment.events.request.fire(
            request_type=CONNECT,
            name="connect+join",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )

    def report_violation(
        self, violation: ProtocolViolation, client: ClientBase | None = None
    ) -> None:
        """Count a violation in locust's PROTOCOL row and keep it, quoted, for run.json.

        Runs in the client's reader (gevent's hub): it must not block.
        """
        self.violation_count += 1
        requirement = violation.requirement or "spec"
        if len(self.violations) < MAX_VIOLATIONS_KEPT:
            frame = violation.frame
            if isinstance(frame, bytes):
                frame = frame.decode("utf-8", "backslashreplace")
            self.violations.append(
                {
                    "requirement": violation.requirement,
                    "kind": violation.kind,
                    "message": str(violation),
                    "frame": None if frame is None else frame[:FRAME_QUOTE_CHARS],
                    "connection": client.connection_id if client else None,
                    "participant": client.participant.id if client and client.participant else None,
                    "session": client.session if client else None,
                    "process": self.name,
                }
            )
        self.environment.events.request.fire(
            request_type=PROTOCOL,
            name=f"{requirement} {violation.kind}",
            response_time=0,
            response_length=0,
            # One text per kind: locust's failures table has a row per distinct text, and
            # frames and observer ids differ every time (run.json quotes them).
            exception=ProtocolViolation(
                f"{violation.kind.replace('_', ' ')}; run.json and the verdict quote the frames",
                requirement=requirement,
            ),
            context={},
        )

    def audit(self, host: str) -> None:
        """Read every key of the scenario once more, after this process's participants stopped.

        The checker's convergence check compares these reads with the last write.
        Only the last epoch's sessions hold the server's current state.
        """
        deadline = time.monotonic() + 30
        while self.epoch()[1] and time.monotonic() < deadline:
            gevent.sleep(0.2)  # a restart is finishing: audit the server that comes back
        epoch = self.epoch()[0]
        for session in (self.session_name(n, epoch) for n in range(len(self.sessions))):
            try:
                listeners = [self.history, _ViolationsOnly(self.report_violation)]
                with StoreClient(host, listeners=listeners, request_timeout=5) as client:
                    client.join(session, f"{self.tag}-auditor", "auditor")
                    for key in self.scenario.all_keys():
                        client.get(key)
            except ProtocolViolation:
                pass  # counted and quoted by the violation reporter already
            except HarnessError as exc:
                self.problems.append(f"audit of {session!r} failed: {exc}")

    def finish(self, host: str | None) -> dict[str, Any]:
        """Audit, close the recorders and pack this process's files; idempotent."""
        if self._finished is not None:
            return self._finished
        self._ticker.kill(block=False)
        if self._churner is not None:
            self._churner.kill(block=False)
        if self._checkpointer is not None:
            self._checkpointer.kill(block=False)
        if host and self.history.stopped_ns is None:
            gevent.sleep(0.5)  # let notifications still in flight arrive
            self.audit(host)
        self.latency.close()
        self.latency_log.close(self.latency)
        self.history.close()
        files = {}
        for path in (self.latency_log.path, self.history.path):
            assert path is not None
            files[str(path.relative_to(self.run_dir))] = zlib.compress(path.read_bytes(), 3)
        self._finished = {
            "name": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "files": files,
            "requests": dict(self.reporter.counts),
            "connects": dict(self.connects),
            "violations": self.violations,
            "violation_count": self.violation_count,
            "problems": self.problems[:20],
            "clock": self.latency.clock(),
            "history_stopped": self.history.stopped_ns is not None,
        }
        return self._finished


def scenario_from_options(options: Any) -> Scenario:
    think = getattr(options, "think_time", None)
    think_min = think_max = None
    if think:
        low, _, high = str(think).partition(",")
        try:
            think_min = float(low)
            think_max = float(high or low)
        except ValueError:
            think_min, think_max = -1.0, -1.0  # reported by validate()
    return scenario_named(getattr(options, "scenario", None) or "mixed").with_overrides(
        key_space=getattr(options, "key_space", None),
        value_size=getattr(options, "value_size", None),
        observers=getattr(options, "observers", None),
        writer_fraction=getattr(options, "writer_fraction", None),
        weight_set=getattr(options, "weight_set", None),
        weight_get=getattr(options, "weight_get", None),
        weight_delete=getattr(options, "weight_delete", None),
        weight_observe=getattr(options, "weight_observe", None),
        think_min=think_min,
        think_max=think_max,
    )
