"""Locust event hooks that turn a locust run into a store-harness swarm.

Custom arguments (declared in :mod:`harness.swarm.config`; they show in the web
UI), the live console line, and the
end-of-run protocol between master and workers:

1. The master's ``test_stopping`` asks every worker to stop its participants
   (``harness_stop``) and waits until all have (``harness_stopped``), so no
   write is still in flight anywhere when the audit reads begin.
2. It then asks for the audit (``harness_audit``): each worker reads every key
   once more, closes its recorders and sends its counts (``harness_results``).
   A worker on another machine has sent its history and latency files as they
   grew (``harness_files``, :mod:`harness.run.chunks`), the rest before its results.
3. The master's ``test_stop`` merges, checks and reports (:mod:`harness.swarm.finish`).

A single-process run does steps 2 and 3 itself in ``test_stop``.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from harness.run.chunks import FILES_MESSAGE, receive_chunk
from harness.run.directory import read_run_json, write_run_json
from harness.swarm import prometheus
from harness.swarm.config import SwarmConfig, add_locust_arguments
from harness.swarm.finish import finish_run, start_run
from harness.swarm.live import LiveView
from harness.swarm.process import SwarmProcess

#: How long the master waits for workers at the end, on top of locust's stop timeout.
END_WAIT_S = 60.0


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    # Straight on the parser: locust's include_in_web_ui only works there, not on groups.
    add_locust_arguments(parser)


class _EndOfRun:
    """The master's view of the end-of-run exchange with its workers."""

    def __init__(self) -> None:
        self.stopped: set[str] = set()
        self.results: dict[str, dict[str, Any]] = {}
        #: What went wrong receiving workers' files, for run.json's problems.
        self.problems: list[str] = []

    def wait_for(self, collection: set[str] | dict[str, Any], count: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while len(collection) < count and time.monotonic() < deadline:
            gevent.sleep(0.1)
        return len(collection) >= count


_end = _EndOfRun()
_live: LiveView | None = None


@events.init.add_listener
def on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message("harness_stop", _worker_stop, concurrent=True)
        runner.register_message("harness_audit", _worker_audit, concurrent=True)
        return
    options = environment.parsed_options
    config = SwarmConfig.from_locust(options)
    if not config.run_dir:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        options.run_dir = str(Path("runs") / stamp)
    if not config.session:
        # A fresh session per run: a server keeps earlier runs' keys, and values this
        # run's history never saw written would read as anomalies.
        options.session = f"swarm-{secrets.token_hex(4)}"
    if isinstance(runner, MasterRunner):
        runner.register_message("harness_stopped", _master_stopped)
        runner.register_message("harness_results", _master_results)
        runner.register_message(FILES_MESSAGE, _master_files)


@events.test_start.add_listener
def on_test_start(environment: Any, **_: Any) -> None:
    global _live
    if isinstance(environment.runner, WorkerRunner):
        return
    _end.stopped.clear()
    _end.results.clear()
    _end.problems.clear()
    options = environment.parsed_options
    config = SwarmConfig.from_locust(options)
    window = config.history_seconds
    # One wall-clock instant for every process: workers get it with their spawn message.
    options.history_until = time.time() + window if window > 0 else 0.0
    options.run_id = secrets.token_hex(8)
    run_dir = start_run(environment)
    _record_faults(config, run_dir)
    interval = config.live_interval
    if interval > 0:
        _live = LiveView(environment, interval)


@events.test_stopping.add_listener
def on_test_stopping(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    if not isinstance(runner, MasterRunner):
        if SwarmProcess.current is not None:
            SwarmProcess.current.quiesce()
        return
    workers = len(runner.clients)
    if not workers or _end.results:
        return
    runner.send_message("harness_stop")
    wait = environment.stop_timeout + END_WAIT_S
    if not _end.wait_for(_end.stopped, workers, wait):
        print(f"store-harness: only {len(_end.stopped)} of {workers} workers stopped in time")
    runner.send_message("harness_audit")
    if not _end.wait_for(_end.results, workers, END_WAIT_S):
        print(f"store-harness: results from only {len(_end.results)} of {workers} workers")


@events.test_stop.add_listener
def on_test_stop(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    if _live is not None:
        _live.stop()
    if isinstance(runner, MasterRunner):
        payloads = list(_end.results.values())
    else:
        process = SwarmProcess.current
        payloads = [process.finish(environment.host)] if process is not None else []
    environment.process_exit_code = finish_run(environment, payloads, _end.problems)


@events.quitting.add_listener
def on_quitting(environment: Any, **_: Any) -> None:
    # On SIGTERM or Ctrl-C locust quits without stopping first, and reads the exit
    # code before its runner stops; stopping here produces the verdict in time.
    runner = environment.runner
    if not isinstance(runner, WorkerRunner) and runner.state in ("spawning", "running"):
        runner.stop()


def _record_faults(config: SwarmConfig, run_dir: Path) -> None:
    """Say in run.json from the start which faults run, so a killed run still says it."""
    faults: dict[str, Any] = {}
    if config.faults_json:
        faults = orjson.loads(config.faults_json)
    churn = config.churn
    if churn > 0:
        faults["churn_per_s"] = churn
        faults["kinds"] = sorted({*faults.get("kinds", []), "churn"})
    if not faults:
        return
    info = read_run_json(run_dir)
    info["faults"] = faults
    write_run_json(run_dir, info)


def _worker_stop(environment: Any, msg: Any, **_: Any) -> None:
    if SwarmProcess.current is not None:
        SwarmProcess.current.quiesce()
    environment.runner.stop()
    name = SwarmProcess.current.name if SwarmProcess.current else f"worker-{id(environment)}"
    environment.runner.send_message("harness_stopped", {"name": name})


def _worker_audit(environment: Any, msg: Any, **_: Any) -> None:
    process = SwarmProcess.current
    if process is None:
        payload: dict[str, Any] = {"name": f"idle-worker-{id(environment)}"}
    else:
        payload = process.finish(environment.host)
    prometheus.flush(environment)  # the live figures' last word comes before the results
    environment.runner.send_message("harness_results", payload)


def _master_stopped(environment: Any, msg: Any, **_: Any) -> None:
    _end.stopped.add(msg.data["name"])


def _master_results(environment: Any, msg: Any, **_: Any) -> None:
    _end.results[msg.data["name"]] = msg.data


def _master_files(environment: Any, msg: Any, **_: Any) -> None:
    problem = receive_chunk(Path(environment.parsed_options.run_dir), msg.data)
    if problem is not None and problem not in _end.problems:
        _end.problems.append(problem)
        print(f"store-harness: {problem}", flush=True)  # as it happens; run.json at the end
