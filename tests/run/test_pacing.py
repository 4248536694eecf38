"""The open model: fixed-rate schedules, and a stall the closed loop hides."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from harness.errors import HarnessUsageError
from harness.latency.histograms import stat_us
from harness.protocol import Set
from harness.run.loadgen import LoadPlan, run_load
from harness.run.pacing import CLOSED, OPEN, TOTAL, LoadModel, Schedule
from harness.server.aio import Connection, ReferenceServer
from harness.server.embedded import EmbeddedServer


def test_a_schedule_spaces_sends_at_its_rate() -> None:
    schedule = Schedule(200, start_ns=1_000_000_000)
    due = [schedule.next_due() for _ in range(5)]
    assert due == [1_000_000_000 + n * 5_000_000 for n in range(5)]
    assert schedule.peek() == 1_025_000_000


def test_senders_sharing_a_total_rate_interleave() -> None:
    schedules = [Schedule.share(100, 4, i, start_ns=0) for i in range(4)]
    first = sorted(s.next_due() for s in schedules)
    assert first == [0, 10_000_000, 20_000_000, 30_000_000]
    assert all(s.rate == 25 for s in schedules)


def test_a_late_sender_does_not_wait_and_knows_how_far_behind_it_is() -> None:
    schedule = Schedule(10, start_ns=0)
    schedule.next_due()
    assert Schedule.wait_s(0, now_ns=2_000_000_000) == 0.0
    assert schedule.behind(now_ns=2_000_000_000) == 20
    assert Schedule.wait_s(3_000_000_000, now_ns=2_500_000_000) == 0.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "poisson"}, "load model"),
        ({"model": OPEN}, "needs a rate"),
        ({"model": OPEN, "rate": 0}, "positive"),
        ({"model": CLOSED, "rate": 5, "rate_per": "worker"}, "per 'participant' or 'total'"),
    ],
)
def test_bad_load_options_are_usage_errors(options: dict, message: str) -> None:
    with pytest.raises(HarnessUsageError, match=message):
        LoadModel(**options)


def test_the_model_describes_itself_for_the_report() -> None:
    assert LoadModel(OPEN, 50, TOTAL).describe() == "open model, 50 writes/s in total"
    assert LoadModel(CLOSED).to_json() == {"model": CLOSED, "rate": None, "rate_per": "participant"}


class StallingServer(ReferenceServer):
    """Stops the world for one second at its 50th write."""

    STALL_AT, STALL_S = 50, 1.0

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.sets = 0
        self.stalled = threading.Event()

    def handle_set(self, conn: Connection, request: Set) -> None:
        self.sets += 1
        if self.sets == self.STALL_AT:
            time.sleep(self.STALL_S)  # blocks the server's event loop: every client waits
            self.stalled.set()
        super().handle_set(conn, request)


def _run(model: LoadModel, run_dir: Path) -> dict:
    with EmbeddedServer(StallingServer) as server:
        plan = LoadPlan(server.url, participants=2, writers=1, load=model, duration_s=2.5)
        result = asyncio.run(asyncio.wait_for(run_load(plan, run_dir, history=False), 60))
        assert server.server is not None and server.server.stalled.is_set()
    return result.recorder.totals


def test_the_open_model_reports_a_stall_that_a_closed_loop_hides(tmp_path: Path) -> None:
    closed = _run(LoadModel(CLOSED, 100), tmp_path / "closed")
    opened = _run(LoadModel(OPEN, 100), tmp_path / "open")
    # Both runs met the stall: each saw one write take about a second.
    assert stat_us(closed["set"], "max") >= 900_000
    assert stat_us(opened["set"], "max") >= 900_000
    # The closed loop sent nothing while it waited, so the stall is one sample in ~150.
    assert stat_us(closed["set"], "p90") < 300_000
    # The open model counts every write the stall delayed, from when it was due.
    assert stat_us(opened["set"], "p90") >= 300_000
    assert stat_us(opened["notify"], "p90") >= 300_000
