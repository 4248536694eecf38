"""abort_on_fail thresholds judged on locust's live stats: windows, the run so far, stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness.latency.thresholds import threshold_from_entry
from harness.plan.stages import StageSpec, resolve
from harness.swarm.live_thresholds import LiveThresholds, Snapshot, measure


@dataclass
class Entry:
    """What the judge reads of a locust StatsEntry."""

    method: str
    response_times: dict[int, int] = field(default_factory=dict)
    num_failures: int = 0

    @property
    def num_requests(self) -> int:
        return sum(self.response_times.values())

    @property
    def total_response_time(self) -> float:
        return float(sum(ms * n for ms, n in self.response_times.items()))

    @property
    def max_response_time(self) -> float:
        return float(max(self.response_times, default=0))


class Stats:
    """Cumulative rows, as locust keeps them: each second adds samples."""

    def __init__(self) -> None:
        self.notify = Entry("NOTIFY")
        self.sets = Entry("SET")

    def add(self, notify_ms: int, count: int, failures: int = 0) -> None:
        self.notify.response_times[notify_ms] = self.notify.response_times.get(notify_ms, 0) + count
        self.sets.response_times[1] = self.sets.response_times.get(1, 0) + count
        self.sets.num_failures += failures

    def snapshot(self, t: float) -> Snapshot:
        return Snapshot.of_stats(t, [self.notify, self.sets, Entry("CONNECT", {50: 3})])


def abort(text: str, **options: object) -> object:
    return threshold_from_entry({"threshold": text, "abort_on_fail": True, **options})


def test_measures_between_snapshots() -> None:
    stats = Stats()
    stats.add(5, 100)
    then = stats.snapshot(10)
    stats.add(500, 10)
    stats.add(5, 90)
    now = stats.snapshot(20)
    assert measure(abort("notify.p99<1s"), now, then) == 500_000  # only the last 100 samples
    assert measure(abort("notify.p50<1s"), now, then) == 5_000
    assert measure(abort("notify.max<1s"), now, then) == 500_000
    assert measure(abort("notify.rate>1/s"), now, then) == 10.0
    assert measure(abort("errors<1%"), now, then) == 0.0
    assert measure(abort("set.p99<1s"), then, then) is None  # no sample: nothing judged


def test_a_breach_waits_for_the_delay_and_is_seen_in_the_window() -> None:
    live = LiveThresholds([abort("notify.p99<100ms", delay="6s", window="4s")], plan=None)
    stats = Stats()
    for t in range(1, 4):
        stats.add(5, 50)
        assert live.add(stats.snapshot(t)) is None
    for t in range(4, 6):
        stats.add(900, 50)  # the server stalls; the delay has not passed yet
        assert live.add(stats.snapshot(t)) is None
    stats.add(900, 50)
    breach = live.add(stats.snapshot(6))
    assert breach is not None
    assert (breach.over, breach.measured, breach.at_s) == ("the last 4s", 900_000, 6)
    assert breach.to_json()["threshold"] == "notify.p99<100ms"


def test_the_run_so_far_catches_what_no_window_shows() -> None:
    # Errors at the start, none since: the windows pass, the whole run does not.
    live = LiveThresholds([abort("errors<5%", delay="0s", window="2s")], plan=None)
    stats = Stats()
    stats.add(5, 100, failures=20)
    assert live.add(stats.snapshot(1)).over == "the run so far"  # type: ignore[union-attr]


def test_a_stage_scoped_threshold_is_judged_only_during_its_stage() -> None:
    plan = resolve(
        [StageSpec(10, name="calm", participants=5), StageSpec(10, name="storm")],
        spawn_rate=5,
        write_rate=0,
    )
    live = LiveThresholds([abort("notify.p99<100ms@storm", delay="2s", window="3s")], plan)
    stats = Stats()
    for t in range(1, 10):
        stats.add(900, 10)  # slow, but in "calm": out of scope
        assert live.add(stats.snapshot(t)) is None
    stats.add(5, 1000)
    assert live.add(stats.snapshot(10)) is None  # storm starts: its delay counts from here
    stats.add(5, 1000)
    assert live.add(stats.snapshot(11)) is None
    stats.add(5, 1000)
    assert live.add(stats.snapshot(12)) is None  # calm's slow samples are not storm's
    stats.add(900, 1000)
    breach = live.add(stats.snapshot(13))
    assert breach is not None and breach.stage == "storm"


@pytest.mark.parametrize("bound", ["notify.rate>100/s", "notify.rate>=100/s"])
def test_a_throughput_floor(bound: str) -> None:
    live = LiveThresholds([abort(bound, delay="2s", window="2s")], plan=None)
    stats = Stats()
    for t in range(1, 4):
        stats.add(5, 10)  # 10 notifications/s
        breach = live.add(stats.snapshot(t))
    assert breach is not None and breach.measured == pytest.approx(10)
