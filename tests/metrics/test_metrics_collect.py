"""Each process's figures follow its latency recorder exactly; the run sums processes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack

from harness.client.aio import StoreClient
from harness.errors import OutcomeUnknown, ProtocolViolation, StoreError
from harness.latency.histograms import new_histogram, stat_us
from harness.latency.recorder import LatencyRecorder
from harness.metrics.collect import ProcessMetrics, ProcessState, RunMetrics, Snapshot
from harness.protocol.limits import ErrorCode
from harness.run.values import make_value

OBSERVERS = 3


async def _writes(url: str, recorder: LatencyRecorder, first: int, count: int) -> None:
    writer = await StoreClient(url, listeners=[recorder]).open()
    observers = [await StoreClient(url, listeners=[recorder]).open() for _ in range(OBSERVERS)]
    await writer.join("s", "w")
    for n, client in enumerate(observers):
        await client.join("s", f"o{n}")
        await client.observe("flag")
    for n in range(first, first + count):
        await writer.set("flag", make_value("w", n))
    for _ in range(200):  # every observer's update has come
        if sum(recorder.clocks.values()) >= (first + count) * OBSERVERS:
            break
        await asyncio.sleep(0.02)
    for client in (writer, *observers):
        await client.close()


def test_the_counts_are_the_recorders_also_when_followed_late(
    server_url: str, run: Callable[[Awaitable[Any]], Any]
) -> None:
    recorder = LatencyRecorder()
    process = ProcessMetrics("p1")
    run(_writes(server_url, recorder, 0, 20))
    recorder.roll(final=True)  # what it rolled before the exporter followed it
    process.follow(recorder)
    process.follow(recorder)  # following twice counts nothing twice
    run(_writes(server_url, recorder, 20, 30))
    recorder.close()

    snapshot = process.snapshot(ProcessState())
    assert snapshot.latency["notify"][0] == 50 * OBSERVERS
    for metric, total in recorder.totals.items():
        count, sum_us = snapshot.latency[metric]
        assert count == total.get_total_count(), metric
        assert math.isclose(sum_us, total.get_mean_value() * count, rel_tol=1e-3), metric
    # Only the intervals after it followed are in the window: the second session's.
    window = sum(h.get_total_count() for _, m, h in snapshot.intervals if m == "notify")
    assert window == 30 * OBSERVERS
    assert process.snapshot(ProcessState()).intervals == []  # each interval is handed once


def test_request_events_count_by_operation_and_error_code() -> None:
    process = ProcessMetrics("p1")
    process.on_request(request_type="SET", exception=None, name="key-*", response_time=1.0)
    process.on_request(request_type="SET", exception=StoreError(ErrorCode.INVALID_KEY, "no"))
    process.on_request(request_type="GET", exception=OutcomeUnknown("timed out"))
    process.on_request(request_type="NOTIFY", exception=None)
    process.on_request(request_type="CONNECT", exception=ConnectionRefusedError())
    process.on_request(
        request_type="PROTOCOL", exception=ProtocolViolation("late reply", requirement="R1.3")
    )
    assert process.requests == {"set": 2, "get": 1, "notify": 1, "connect": 1}
    assert process.errors == {
        ("set", "INVALID_KEY"): 1,
        ("get", "NO_REPLY"): 1,
        ("connect", "ConnectionRefusedError"): 1,
    }
    assert process.violations == {"R1.3": 1}


def _interval(*values_us: int) -> Any:
    histogram = new_histogram()
    for value in values_us:
        histogram.record_value(value)
    return histogram


def test_the_run_sums_processes_and_its_quantiles_cover_the_window() -> None:
    now = [1010.2]
    run = RunMetrics(window_s=10, clock=lambda: now[0])
    old, recent = _interval(90_000), _interval(*range(1000, 2000))
    for name, connected in (("w1", 4), ("w2", 6)):
        snapshot = Snapshot(
            name,
            requests={"notify": 5},
            errors={("set", "INVALID_KEY"): 1},
            latency={"notify": (5, 5000.0)},
            intervals=[(999, "notify", old), (1005, "notify", recent)],
            state=ProcessState(connected=connected, recording=True, epoch=1 if name == "w2" else 0),
        )
        # A worker's snapshot travels as msgpack, as locust sends it.
        run.update(Snapshot.from_message(msgpack.unpackb(msgpack.packb(snapshot.to_message()))))
    samples = run.samples(users=10)
    assert samples["store_harness_requests_total"] == [({"operation": "notify"}, 10)]
    errors = samples["store_harness_errors_total"]
    assert errors == [({"operation": "set", "code": "INVALID_KEY"}, 2)]
    assert samples["store_harness_latency_seconds_count"] == [({"operation": "notify"}, 10)]
    assert samples["store_harness_participants_connected"] == [({}, 10)]
    assert samples["store_harness_history_recording"] == [({}, 2)]
    assert samples["store_harness_server_epoch"] == [({}, 1)]
    assert samples["store_harness_processes"] == [({}, 2)]
    # Second 999 is older than the window: the quantiles are the two recent intervals'.
    both = new_histogram()
    both.add(recent)
    both.add(recent)
    quantiles = {q["quantile"]: v for q, v in samples["store_harness_latency_seconds"]}
    assert quantiles["0.99"] == stat_us(both, "p99") / 1e6
    assert quantiles["0.5"] == stat_us(both, "p50") / 1e6
    assert samples["store_harness_latency_max_seconds"] == [
        ({"operation": "notify"}, stat_us(both, "max") / 1e6)
    ]
    assert "store_harness_anomalies" not in samples  # nobody knows them yet

    now[0] = 1100.0  # no interval in the last 10 s: no quantile to give
    samples = run.samples()
    assert all(math.isnan(v) for _, v in samples["store_harness_latency_seconds"])
    assert samples["store_harness_latency_seconds_count"] == [({"operation": "notify"}, 10)]
    assert "store_harness_users" not in samples

    run.report_anomalies({"lost_update": 2, "stale_read": 0})
    assert run.samples()["store_harness_anomalies"] == [
        ({"kind": "lost_update"}, 2),
        ({"kind": "stale_read"}, 0),
    ]
