"""A small asyncio load generator that writes a run directory.

N participants join one session and observe the same keys; ``writers`` of
them write stamped values (:func:`harness.run.values.make_value`) in a closed loop
or at a fixed rate (open model, :mod:`harness.run.pacing`), bounded by time and by
a count. Every observer is notified of every write, so notifications a second
= write rate x participants. At the end each participant reads a key and
stops observing, so every operation appears in the report.

The run directory is the contract the locust swarm follows too::

    RUN_DIR/run.json          what ran; "complete" stays false until it ends cleanly
    RUN_DIR/latency/*.jsonl   interval histograms, one file per process (harness.latency.log)
    RUN_DIR/history/*.jsonl   operation histories, when a history recorder is given
    RUN_DIR/verdict.json      the consistency checker's verdict, when one ran

    python -m harness.run.loadgen --participants 20 --rate 50 --model open --duration 10 runs/demo
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import __version__
from harness.checker import check
from harness.client.aio import StoreClient
from harness.client.core import ClientListener
from harness.errors import ConnectionLost, HarnessError, HarnessUsageError, StoreError
from harness.history.reader import read_history
from harness.history.recorder import HistoryRecorder
from harness.latency.log import LatencyLog
from harness.latency.recorder import LatencyRecorder
from harness.run.directory import write_run_json, write_verdict
from harness.run.pacing import (
    CLOSED,
    MODELS,
    OPEN,
    PER_PARTICIPANT,
    TOTAL,
    LoadModel,
    Schedule,
    sleep_until,
)
from harness.run.values import make_value

SCENARIO = "broadcast"
#: How long to wait after the last write for its notifications to arrive.
DRAIN_S = 5.0


@dataclass(frozen=True)
class LoadPlan:
    url: str
    participants: int = 10
    writers: int = 1
    keys: int = 1
    load: LoadModel = field(default_factory=LoadModel)
    duration_s: float = 10.0
    max_writes: int = 1_000_000
    value_size: int = 0
    session: str = ""

    def __post_init__(self) -> None:
        if self.participants < 1:
            raise HarnessUsageError(f"participants must be at least 1, got {self.participants}")
        if not 1 <= self.writers <= self.participants:
            raise HarnessUsageError(
                f"writers must be between 1 and participants ({self.participants}), "
                f"got {self.writers}"
            )
        if not 1 <= self.keys <= 100:
            raise HarnessUsageError(f"keys must be between 1 and 100, got {self.keys}")
        if not self.duration_s > 0 or self.max_writes < 1:
            raise HarnessUsageError("a run needs a positive duration and write count")


@dataclass
class RunResult:
    run_dir: Path
    writes: int
    notifications_expected: int
    notifications_received: int
    recorder: LatencyRecorder


async def run_load(
    plan: LoadPlan,
    run_dir: str | os.PathLike[str],
    listeners: Sequence[ClientListener] = (),
    *,
    history: bool = True,
) -> RunResult:
    """Run ``plan`` against its server and record it in ``run_dir``.

    With ``history`` the run also records its history and writes the
    consistency checker's verdict to ``verdict.json``.
    """
    run_dir = Path(run_dir)
    (run_dir / "latency").mkdir(parents=True, exist_ok=True)
    process = f"{socket.gethostname()}-{os.getpid()}"
    log = LatencyLog(run_dir / "latency" / f"{process}.jsonl", process)
    recorder = LatencyRecorder(log)
    histories: HistoryRecorder | None = None
    if history:
        (run_dir / "history").mkdir(exist_ok=True)
        histories = HistoryRecorder(run_dir / "history" / f"{process}.jsonl", process=process)
        listeners = [*listeners, histories]
    session = plan.session or f"load-{time.time_ns():x}"
    info: dict[str, object] = {
        "tool": "store-harness",
        "version": __version__,
        "url": plan.url,
        "scenario": SCENARIO,
        "session": session,
        "participants": plan.participants,
        "writers": plan.writers,
        "keys": plan.keys,
        "load": plan.load.to_json(),
        "load_description": plan.load.describe(),
        "duration_s": plan.duration_s,
        "started": time.time(),
        "ended": None,
        "complete": False,
        "notification_clock": None,
        "processes": 1,
    }
    write_run_json(run_dir, info)
    clients = [
        StoreClient(plan.url, listeners=[recorder, *listeners]) for _ in range(plan.participants)
    ]
    keys = [f"key-{k}" for k in range(plan.keys)]
    ticker = asyncio.get_running_loop().create_task(_tick(recorder))
    try:
        await _bounded_gather(_enter(client, session, i, keys) for i, client in enumerate(clients))
        writes = await _write_phase(plan, clients[: plan.writers], keys, recorder)
        expected = writes * plan.participants
        await _drain(recorder, expected)
        received = _received(recorder)
        await _bounded_gather(_leave(client, keys[0]) for client in clients)
    finally:
        ticker.cancel()
        for client in clients:
            with contextlib.suppress(HarnessError, OSError):
                await client.close()
        recorder.close()
        log.close(recorder)
        if histories is not None:
            histories.close()
    if histories is not None:
        verdict = check(read_history(sorted((run_dir / "history").glob("*.jsonl"))))
        write_verdict(run_dir, verdict.to_json())
    info.update(
        ended=time.time(),
        complete=True,
        notification_clock=recorder.clock(),
        writes=writes,
        notifications={"expected": expected, "received": received},
    )
    write_run_json(run_dir, info)
    return RunResult(run_dir, writes, expected, received, recorder)


async def _enter(client: StoreClient, session: str, index: int, keys: list[str]) -> None:
    await client.open()
    await client.join(session, f"p{index}", f"Participant {index}")
    for key in keys:
        await client.observe(key)


async def _leave(client: StoreClient, key: str) -> None:
    with contextlib.suppress(HarnessError):
        await client.get(key)
        for observer_id in list(client.observers):
            await client.stop_observing(observer_id)


async def _write_phase(
    plan: LoadPlan, writers: list[StoreClient], keys: list[str], recorder: LatencyRecorder
) -> int:
    deadline = time.monotonic_ns() + int(plan.duration_s * 1e9)
    budget = [plan.max_writes]
    start_ns = time.monotonic_ns()
    rate = plan.load.per_sender(len(writers))
    wall_offset = time.time_ns() - time.monotonic_ns()

    async def writer(index: int, client: StoreClient) -> int:
        schedule = None
        if plan.load.model == OPEN:
            assert rate is not None
            schedule = Schedule(rate, start_ns=start_ns, phase=index / len(writers))
        done = 0
        while budget[0] > 0:
            if schedule is not None:
                due = schedule.next_due()
                if due >= deadline:
                    break
                await sleep_until(due)
                recorder.intend(client, due)
                stamp = min(due, time.monotonic_ns()) + wall_offset
                value = make_value(f"p{index}", done, plan.value_size, wall_ns=stamp)
            else:
                if time.monotonic_ns() >= deadline:
                    break
                value = make_value(f"p{index}", done, plan.value_size)
            budget[0] -= 1
            try:
                await client.set(keys[done % len(keys)], value)
                done += 1
            except StoreError:
                pass  # counted by the recorder under its code
            except ConnectionLost:
                break
            if schedule is None and rate is not None:
                await asyncio.sleep(1 / rate)  # the closed model's think time
            elif schedule is None:
                await asyncio.sleep(0)  # let observers read between back-to-back writes
        return done

    counts = await asyncio.gather(*(writer(i, c) for i, c in enumerate(writers)))
    return sum(counts)


def _received(recorder: LatencyRecorder) -> int:
    return sum(recorder.clocks.values()) + recorder.unstamped


async def _drain(recorder: LatencyRecorder, expected: int) -> None:
    deadline = time.monotonic() + DRAIN_S
    while _received(recorder) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _tick(recorder: LatencyRecorder) -> None:
    # Events roll intervals too; this covers quiet seconds and pending fan-outs.
    while True:
        await asyncio.sleep(0.25)
        recorder.roll()


async def _bounded_gather(coroutines: object, limit: int = 50) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: object) -> None:
        async with semaphore:
            await coroutine  # type: ignore[misc]

    await asyncio.gather(*(one(c) for c in coroutines))  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.run.loadgen", description=__doc__)
    parser.add_argument("run_dir", help="directory to write the run into")
    parser.add_argument("--url", help="server (default: start the embedded reference server)")
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--model", choices=MODELS, default=CLOSED)
    parser.add_argument("--rate", type=float, help="writes/s (needed by --model open)")
    parser.add_argument("--rate-per", choices=(PER_PARTICIPANT, TOTAL), default=TOTAL)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--writes", type=int, default=1_000_000, help="at most this many writes")
    parser.add_argument("--value-size", type=int, default=0)
    parser.add_argument("--notify-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        load = LoadModel(args.model, args.rate, args.rate_per)
        plan_options = dict(
            participants=args.participants,
            writers=args.writers,
            keys=args.keys,
            load=load,
            duration_s=args.duration,
            max_writes=args.writes,
            value_size=args.value_size,
        )
        if args.url:
            result = asyncio.run(run_load(LoadPlan(args.url, **plan_options), args.run_dir))
        else:
            from harness.server.embedded import EmbeddedServer

            with EmbeddedServer(notify_delay=args.notify_delay) as server:
                plan = LoadPlan(server.url, **plan_options)
                result = asyncio.run(run_load(plan, args.run_dir))
    except HarnessUsageError as exc:
        print(f"loadgen: error: {exc}", file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(f"loadgen: could not run: {exc}", file=sys.stderr)
        return 2
    print(
        f"{result.writes} writes, {result.notifications_received}/"
        f"{result.notifications_expected} notifications; run directory {result.run_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
