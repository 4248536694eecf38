"""Thresholds judged while a run goes (``abort_on_fail``), from locust's live stats.

Every few seconds the master (or the only process) takes a :class:`Snapshot` of
locust's stats, which in a distributed run already add up what every worker
reported. Each threshold with ``abort_on_fail`` is then judged twice, once its
``delay`` has passed: over its sliding ``window`` (the difference between now and
the snapshot that long ago) and over the run so far. With ``@stage`` both are
limited to that stage, judged while it runs, and the delay counts from its start.

locust keeps response times rounded to two significant digits (and whole
milliseconds below 100 ms), so a live percentile is as coarse as that; the
verdict at the end comes from the HDR histograms. A window without samples of a
metric judges nothing: the end-of-run check calls missing data a breach.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.latency.thresholds import ERRORS, RATE, Threshold
from harness.plan.stages import StagePlan
from harness.protocol.kinds import KINDS

#: locust request_type -> the metric thresholds name it by.
METRIC_OF_ROW = {kind.locust: kind.metric for kind in KINDS} | {"NOTIFY": "notify"}
OPERATION_ROWS = tuple(kind.locust for kind in KINDS)


@dataclass
class Counts:
    """One metric's cumulative figures, as locust keeps them (milliseconds)."""

    times: Counter[int] = field(default_factory=Counter)
    count: int = 0
    failures: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0


@dataclass
class Snapshot:
    t: float
    metrics: dict[str, Counts]

    @classmethod
    def of_stats(cls, t: float, entries: Iterable[Any]) -> Snapshot:
        """From locust StatsEntry objects (``runner.stats.entries.values()``)."""
        metrics: dict[str, Counts] = {}
        for entry in entries:
            metric = METRIC_OF_ROW.get(entry.method)
            if metric is None:
                continue
            counts = metrics.setdefault(metric, Counts())
            counts.times.update(entry.response_times)
            counts.count += entry.num_requests
            counts.failures += entry.num_failures
            counts.total_ms += entry.total_response_time
            counts.max_ms = max(counts.max_ms, entry.max_response_time or 0.0)
        return cls(t, metrics)

    @classmethod
    def empty(cls, t: float) -> Snapshot:
        return cls(t, {})


def _since(now: Counts, then: Counts | None) -> Counts:
    if then is None:
        return now
    times = Counter(now.times)
    times.subtract(then.times)
    return Counts(
        +times,  # drops what was already there
        now.count - then.count,
        now.failures - then.failures,
        now.total_ms - then.total_ms,
        max((ms for ms, n in times.items() if n > 0), default=0.0),
    )


def _percentile_ms(times: Mapping[int, int], count: int, share: float) -> float:
    needed = max(1, math.ceil(count * share))
    seen = 0
    for ms in sorted(times):
        seen += times[ms]
        if seen >= needed:
            return float(ms)
    return float(max(times, default=0))


def measure(threshold: Threshold, now: Snapshot, then: Snapshot) -> float | None:
    """What ``threshold`` measures between two snapshots (µs, a fraction, or per second)."""
    span = now.t - then.t
    if threshold.metric == ERRORS:
        requests = failures = 0
        for metric in (METRIC_OF_ROW[row] for row in OPERATION_ROWS):
            if metric in now.metrics:
                counts = _since(now.metrics[metric], then.metrics.get(metric))
                requests, failures = requests + counts.count, failures + counts.failures
        return failures / requests if requests else None
    current = now.metrics.get(threshold.metric)
    if current is None:
        return 0.0 if threshold.stat == RATE and span > 0 else None
    counts = _since(current, then.metrics.get(threshold.metric))
    if threshold.stat == RATE:
        return counts.count / span if span > 0 else None
    if counts.count <= 0:
        return None
    if threshold.stat == "mean":
        return counts.total_ms / counts.count * 1000
    if threshold.stat == "max":
        return counts.max_ms * 1000
    share = float(threshold.stat[1:]) / 100
    return _percentile_ms(counts.times, counts.count, share) * 1000


@dataclass(frozen=True, slots=True)
class Breach:
    threshold: Threshold
    measured: float
    #: "the last 10s" or "the run so far" (or "stage NAME so far")
    over: str
    at_s: float
    stage: str | None

    def describe(self) -> str:
        t = self.threshold
        return (
            f"{t.text} breached over {self.over} (measured {t.format(self.measured)}) "
            f"{self.at_s:.0f}s into the run"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold.text,
            "measured": self.measured,
            "measured_text": self.threshold.format(self.measured),
            "over": self.over,
            "at_s": round(self.at_s, 3),
            "stage": self.stage,
        }


class LiveThresholds:
    """The thresholds with ``abort_on_fail``, judged on snapshots as they come."""

    def __init__(self, thresholds: Iterable[Threshold], plan: StagePlan | None) -> None:
        self.thresholds = [t for t in thresholds if t.abort_on_fail]
        self.plan = plan
        self.longest = max((t.window_s for t in self.thresholds), default=0.0)
        self.snapshots: deque[Snapshot] = deque()
        self.start = Snapshot.empty(0.0)
        #: The snapshot taken when each stage was first seen running.
        self.stage_starts: dict[str, Snapshot] = {}

    def add(self, snapshot: Snapshot) -> Breach | None:
        """Take a snapshot (``t`` is seconds into the run) and judge; the first breach."""
        self.snapshots.append(snapshot)
        while len(self.snapshots) > 2 and self.snapshots[1].t <= snapshot.t - self.longest:
            self.snapshots.popleft()
        stage = self.plan.at(snapshot.t) if self.plan is not None else None
        if stage is not None:
            self.stage_starts.setdefault(stage.name, snapshot)
        for threshold in self.thresholds:
            breach = self._judge(threshold, snapshot, stage.name if stage else None)
            if breach is not None:
                return breach
        return None

    def _scope_start(
        self, threshold: Threshold, stage: str | None
    ) -> tuple[float, Snapshot] | None:
        """Where the threshold's scope began: (its time in the plan, the snapshot then)."""
        if threshold.stage is None:
            return 0.0, self.start
        if stage is None or not threshold.covers(stage) or self.plan is None:
            return None  # judged only while a stage in its scope runs
        first = next(s for s in self.plan.stages if threshold.covers(s.name))
        mark = self.stage_starts.get(first.name) or self.stage_starts[stage]
        return first.start, mark

    def _judge(self, threshold: Threshold, now: Snapshot, stage: str | None) -> Breach | None:
        scope = self._scope_start(threshold, stage)
        if scope is None:
            return None
        began, so_far = scope
        if now.t - began < threshold.delay_s:
            return None
        window_start = now.t - threshold.window_s
        then = so_far
        for snapshot in self.snapshots:
            if snapshot.t <= window_start and snapshot.t >= so_far.t:
                then = snapshot
        whole = "the run so far" if threshold.stage is None else f"stage {threshold.stage} so far"
        # Until a window's length has passed, the window is the run (or stage) so far.
        judged = [(then, f"the last {threshold.window_s:g}s" if then is not so_far else whole)]
        if then is not so_far:
            judged.append((so_far, whole))
        for base, over in judged:
            measured = measure(threshold, now, base)
            if measured is not None and not threshold.holds(measured):
                return Breach(threshold, measured, over, now.t, stage)
        return None
