"""The recorder times operations and notifications from real client hooks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness.client.aio import StoreClient
from harness.errors import StoreError
from harness.latency.histograms import CLOCK_MONOTONIC, CLOCK_WALL, stat_us
from harness.latency.recorder import LatencyRecorder
from harness.run.values import make_value

WRITES, OBSERVERS = 40, 3


async def _session(url: str, writer_recorder: LatencyRecorder, observer_recorder: LatencyRecorder):
    writer = await StoreClient(url, listeners=[writer_recorder]).open()
    observers = [
        await StoreClient(url, listeners=[observer_recorder]).open() for _ in range(OBSERVERS)
    ]
    await writer.join("s", "w")
    for n, client in enumerate(observers):
        await client.join("s", f"o{n}")
        await client.observe("flag")
    return writer, observers


async def _wait_for(recorder: LatencyRecorder, count: int) -> None:
    for _ in range(200):
        if sum(recorder.clocks.values()) >= count:
            return
        await asyncio.sleep(0.02)


def test_same_process_writes_are_timed_on_the_monotonic_clock(
    server_url: str, run: Callable[[Awaitable[Any]], Any]
) -> None:
    recorder = LatencyRecorder()

    async def scenario() -> None:
        writer, observers = await _session(server_url, recorder, recorder)
        for n in range(WRITES):
            await writer.set("flag", make_value("w", n))
        await _wait_for(recorder, WRITES * OBSERVERS)
        for client in (writer, *observers):
            await client.close()

    run(scenario())
    recorder.close()
    assert recorder.clocks == {CLOCK_MONOTONIC: WRITES * OBSERVERS}
    assert recorder.clock() == CLOCK_MONOTONIC
    assert recorder.totals["notify"].get_total_count() == WRITES * OBSERVERS
    assert recorder.totals["set"].get_total_count() == WRITES
    assert recorder.totals["join"].get_total_count() == 1 + OBSERVERS
    assert recorder.totals["observe"].get_total_count() == OBSERVERS
    # One fan-out per write, completing at its slowest observer.
    fanout = recorder.totals["fanout"]
    assert fanout.get_total_count() == WRITES
    assert stat_us(fanout, "max") >= stat_us(recorder.totals["notify"], "p50")


def test_writes_from_elsewhere_are_timed_from_the_wall_clock_stamp(
    server_url: str, run: Callable[[Awaitable[Any]], Any]
) -> None:
    writer_side, observer_side = LatencyRecorder(), LatencyRecorder()

    async def scenario() -> None:
        writer, observers = await _session(server_url, writer_side, observer_side)
        # Stamped 200 ms in the past: the observers' recorder must count from the stamp.
        stamp = time.time_ns() - 200_000_000
        for n in range(5):
            await writer.set("flag", make_value("w", n, wall_ns=stamp))
        await writer.set("flag", "not a harness value")
        await _wait_for(observer_side, 5 * OBSERVERS)
        await asyncio.sleep(0.1)
        for client in (writer, *observers):
            await client.close()

    run(scenario())
    observer_side.close()
    assert observer_side.clocks == {CLOCK_WALL: 5 * OBSERVERS}
    assert observer_side.unstamped == OBSERVERS
    assert stat_us(observer_side.totals["notify"], "min") >= 200_000


def test_errors_are_counted_by_code(server_url: str, run: Callable[[Awaitable[Any]], Any]) -> None:
    recorder = LatencyRecorder()

    async def scenario() -> None:
        async with StoreClient(server_url, listeners=[recorder]) as client:
            await client.join("s", "p")
            for _ in range(3):
                with contextlib.suppress(StoreError):
                    await client.set("", "x")
            with contextlib.suppress(StoreError):
                await client.stop_observing("nobody")

    run(scenario())
    recorder.close()
    assert recorder.errors == {"INVALID_KEY": 3, "UNKNOWN_OBSERVER": 1}


def test_an_intended_send_time_is_where_latency_starts(
    server_url: str, run: Callable[[Awaitable[Any]], Any]
) -> None:
    recorder = LatencyRecorder()

    async def scenario() -> None:
        async with StoreClient(server_url, listeners=[recorder]) as client:
            await client.join("s", "p")
            await client.observe("k")
            # Due 300 ms ago: a sender that fell behind must not hide the delay.
            recorder.intend(client, time.monotonic_ns() - 300_000_000)
            await client.set("k", make_value("p", 1))
            await client.set("k", make_value("p", 2))  # not paced: timed from its send
            await _wait_for(recorder, 2)

    run(scenario())
    recorder.close()
    sets = recorder.totals["set"]
    assert stat_us(sets, "max") >= 300_000
    assert stat_us(sets, "min") < 300_000
    assert stat_us(recorder.totals["notify"], "max") >= 300_000
