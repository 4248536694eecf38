"""``--prometheus PORT``: a running swarm's figures at ``/metrics``, for Prometheus.

The master of a distributed run, or the only process, serves them
(:mod:`harness.metrics.server`). Every process that runs participants counts its
own (:class:`harness.metrics.collect.ProcessMetrics`): a single process hands them to
its exporter every :data:`TICK_S`; a worker sends them to the master every
:data:`REPORT_S` in a ``harness_metrics`` message, and once more after its audit,
before its results, so the master holds the run's final figures before it checks.

Why a message of our own rather than locust's worker report: locust's stats carry
error texts, not codes, and no HDR histograms. A worker's message costs 0.1 to 0.3 ms
of encoding per metric and second (HDR's compressed encoding).

At the end the exporter serves the checker's anomaly counts and waits (bounded) for
one more scrape, so Prometheus sees the figures report.json ends with.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from harness.checker.verdict import KINDS as ANOMALY_KINDS
from harness.exits import EXIT_CANNOT_RUN
from harness.metrics.collect import ProcessMetrics, ProcessState, RunMetrics, Snapshot
from harness.metrics.exposition import render
from harness.metrics.server import MetricsServer, port_problem
from harness.run.directory import VERDICT_JSON
from harness.swarm.config import SwarmConfig
from harness.swarm.process import SwarmProcess

#: Seconds between a worker's messages to the master.
REPORT_S = 2.0
#: Seconds between a single process's hand-overs to its own exporter.
TICK_S = 1.0
MESSAGE = "harness_metrics"


class _Live:
    """This process's part: the exporter (master or only process), the counters (not master)."""

    def __init__(self) -> None:
        self.environment: Any = None
        self.run: RunMetrics | None = None
        self.server: MetricsServer | None = None
        self.process: ProcessMetrics | None = None
        self.greenlet: gevent.Greenlet | None = None


_live = _Live()


def enabled(environment: Any) -> bool:
    return SwarmConfig.from_locust(environment.parsed_options).prometheus is not None


@events.init.add_listener
def on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    # A worker decides at test_start: a remote worker gets the master's options with its
    # first spawn message.
    if isinstance(runner, WorkerRunner) or not enabled(environment):
        return
    port = SwarmConfig.from_locust(environment.parsed_options).prometheus
    assert port is not None
    run = RunMetrics()
    server = MetricsServer(port, lambda: render(run.samples(runner.user_count)))
    try:
        server.start()
    except OSError as exc:
        reason = port_problem(port) or f"--prometheus {port}: {exc.strerror or exc}"
        print(f"store-harness: {reason}", file=sys.stderr, flush=True)
        sys.exit(EXIT_CANNOT_RUN)
    _live.environment, _live.run, _live.server = environment, run, server
    print(f"store-harness: live metrics at http://127.0.0.1:{server.port}/metrics", flush=True)
    if isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE, _master_metrics)


@events.test_start.add_listener
def on_test_start(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner) or _live.process is not None or not enabled(environment):
        return
    worker = isinstance(runner, WorkerRunner)
    process = _live.process = ProcessMetrics(runner.client_id if worker else "local")
    environment.events.request.add_listener(process.on_request)
    _live.greenlet = gevent.spawn(_hand_over, environment, REPORT_S if worker else TICK_S)


def _hand_over(environment: Any, interval: float) -> None:
    while True:
        gevent.sleep(interval)
        _send(environment)


def _send(environment: Any) -> None:
    process = _live.process
    if process is None:
        return
    swarm = SwarmProcess.current
    if swarm is not None:
        process.follow(swarm.recorders.latency)
    snapshot = process.snapshot(_state(swarm))
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message(MESSAGE, snapshot.to_message())
    elif _live.run is not None:
        _live.run.update(snapshot)


def _state(swarm: SwarmProcess | None) -> ProcessState:
    if swarm is None:
        return ProcessState()
    epoch, restarting = swarm.epoch()
    return ProcessState(
        connected=sum(1 for participant in swarm.participants if participant.joined),
        recording=swarm.recorders.history.stopped_ns is None and not swarm.stopping,
        paused=swarm.paused,
        epoch=epoch,
        restarting=restarting,
    )


def flush(environment: Any) -> None:
    """A worker's last figures, after its audit closed its recorders (hooks._worker_audit)."""
    if _live.process is None:
        return
    if _live.greenlet is not None:
        _live.greenlet.kill(block=False)
        _live.greenlet = None
    _send(environment)


def _master_metrics(environment: Any, msg: Any, **_: Any) -> None:
    if _live.run is not None:
        _live.run.update(Snapshot.from_message(msg.data))


@events.quit.add_listener
def on_quit(**_: Any) -> None:
    # `quit` comes after the run's end (test_stop: the check and the report) in every
    # way a run ends, whatever the order in which listeners were added.
    server, run, environment = _live.server, _live.run, _live.environment
    if server is None or run is None:
        return
    if _live.process is not None:
        if _live.greenlet is not None:
            _live.greenlet.kill(block=False)
        _send(environment)  # the recorders closed at the end: their last interval
    _report_verdict(run, Path(environment.parsed_options.run_dir))
    server.last_scrape(after=time.monotonic())
    server.stop()


def _report_verdict(run: RunMetrics, run_dir: Path) -> None:
    """The checker's counts, once it has run: every kind it knows, 0 where it found none."""
    try:
        verdict = orjson.loads((run_dir / VERDICT_JSON).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return  # no verdict: nothing knows the anomalies
    counts = {kind: 0 for kind in ANOMALY_KINDS} | dict(verdict.get("counts", {}))
    run.report_anomalies(counts)
