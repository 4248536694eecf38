"""Stages and live thresholds in a locust process: the locust event hooks of ``store-harness run``.

On the master (or the only process), at the start of the run:

* the run's start goes into ``--plan`` (as Unix time), so every process's write
  schedule ramps on the same clock (workers get the options with their spawn
  message), and run.json records the stages with their times, which the report's
  charts mark;
* thresholds with ``abort_on_fail`` (from ``--slo`` and ``--slo-file``; a test file
  is its own SLO file) are judged every few seconds (:mod:`harness.swarm.live_thresholds`).
  The first breach goes into run.json (``aborted``: which threshold, measured over
  what, when), and the run stops through locust: the shape's stop when one paces the
  run, else the runner's. The end-of-run exchange then runs as after any run, so the
  verdict and every report cover what ran, and the exit code is 1.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import events
from locust.runners import WorkerRunner

from harness.errors import HarnessError
from harness.latency.thresholds import gather
from harness.run.directory import read_run_json, write_run_json
from harness.swarm.config import SwarmConfig
from harness.swarm.live_thresholds import Breach, LiveThresholds, Snapshot
from harness.swarm.shape import StagedShape, plan_of

#: Seconds between evaluations when the plan does not say.
EVALUATE_EVERY_S = 2.0


class _Evaluation:
    def __init__(self) -> None:
        self.greenlet: gevent.Greenlet | None = None
        self.stopping = False


_evaluation = _Evaluation()


@events.test_start.add_listener
def on_test_start(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    options = environment.parsed_options
    config = SwarmConfig.from_locust(options)
    plan = None
    origin = time.time()
    if config.plan:
        data = orjson.loads(config.plan)
        data["origin"] = origin
        options.plan = orjson.dumps(data).decode()
        plan = plan_of(options)
        plan_info = {"file": data.get("file"), "origin": origin, "stages": data["stages"]}
        _record(Path(options.run_dir), {"plan": plan_info})
    try:
        live = LiveThresholds(gather(config.slo, config.slo_file), plan)
    except HarnessError:
        return  # the command checked them before the run; the report says what is wrong
    _evaluation.stopping = False
    if live.thresholds:
        every = EVALUATE_EVERY_S
        if config.plan:
            every = orjson.loads(config.plan).get("evaluate_every", every)
        _evaluation.greenlet = gevent.spawn(_evaluate, environment, live, origin, every)


@events.test_stopping.add_listener
def on_test_stopping(environment: Any, **_: Any) -> None:
    _evaluation.stopping = True
    greenlet = _evaluation.greenlet
    if greenlet is not None and greenlet is not gevent.getcurrent():
        greenlet.kill(block=False)
    _evaluation.greenlet = None


def _evaluate(environment: Any, live: LiveThresholds, origin: float, every: float) -> None:
    runner = environment.runner
    while not _evaluation.stopping:
        gevent.sleep(every)
        if _evaluation.stopping or runner.state not in ("spawning", "running"):
            continue
        snapshot = Snapshot.of_stats(time.time() - origin, runner.stats.entries.values())
        breach = live.add(snapshot)
        if breach is not None:
            _abort(environment, breach, origin)
            return


def _abort(environment: Any, breach: Breach, origin: float) -> None:
    print(f"store-harness: {breach.describe()}: stopping the run (abort_on_fail)", flush=True)
    record = breach.to_json() | {"at": origin + breach.at_s}
    _record(Path(environment.parsed_options.run_dir), {"aborted": record})
    shape = environment.shape_class
    if isinstance(shape, StagedShape):
        shape.request_stop()
    elif environment.parsed_options.headless:
        gevent.spawn(environment.runner.quit)
    else:
        gevent.spawn(environment.runner.stop)


def _record(run_dir: Path, entries: dict[str, Any]) -> None:
    info = read_run_json(run_dir)
    info.update(entries)
    write_run_json(run_dir, info)
