"""What the live exporter knows: each swarm process's figures, and the run's sum of them.

A :class:`ProcessMetrics` lives in every locust process that runs participants. It
counts locust's request events by operation and error code, and takes the latency
recorder's one-second interval histograms as the recorder writes them to its log
(:class:`harness.latency.log.LatencyLog`), so its counts are the latency report's
counts, interval for interval. Every second or two it hands a :class:`Snapshot`
to the :class:`RunMetrics` of the process that serves ``/metrics``: directly in a
single-process run, in a locust message from a worker in a distributed one.

Why interval histograms rather than Prometheus histogram buckets: HDR histograms
give every quantile within 0.1% where fixed buckets interpolate across a bucket
(p99 of 3.1 ms in a 2.5-5 ms bucket), they merge exactly across workers, and only
one exporter (the master) speaks for the whole run, so nothing needs Prometheus to
aggregate buckets. The quantiles cover the last :data:`WINDOW_S` seconds (what a
live dashboard wants, as report.html's per-second timeline); count and sum cover
the run, as a Prometheus summary's do.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from hdrh.histogram import HdrHistogram

from harness.errors import OutcomeUnknown, ProtocolViolation, StoreError
from harness.latency.histograms import (
    METRICS,
    NO_REPLY,
    NOTIFY,
    decode_histogram,
    encode_histogram,
    new_histogram,
)
from harness.metrics import exposition as ex
from harness.protocol.kinds import KINDS
from harness.swarm.reporting import CONNECT, PROTOCOL
from harness.swarm.reporting import NOTIFY as NOTIFY_ROW

if TYPE_CHECKING:
    from harness.latency.recorder import IntervalSink, LatencyRecorder

K = TypeVar("K")

#: The operation label of each locust row (harness.protocol.kinds; the report's names).
OPERATION = {kind.locust: kind.metric for kind in KINDS} | {NOTIFY_ROW: NOTIFY, CONNECT: "connect"}


@dataclass(frozen=True, slots=True)
class ProcessState:
    """A swarm process's state beside its counters (harness.swarm.process.SwarmProcess)."""

    connected: int = 0
    recording: bool = False
    paused: bool = False
    epoch: int = 0
    restarting: bool = False


@dataclass
class Snapshot:
    """One process's figures: counters over the run, interval histograms since the last one."""

    process: str
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)
    #: metric -> (count, sum µs) over the run
    latency: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: (wall second, metric, histogram) not in an earlier snapshot
    intervals: list[tuple[int, str, HdrHistogram]] = field(default_factory=list)
    state: ProcessState = ProcessState()

    def to_message(self) -> dict[str, Any]:
        """Plain data for a locust message (msgpack): histograms in HDR's lossless encoding."""
        return {
            "process": self.process,
            "requests": self.requests,
            "errors": [[op, code, n] for (op, code), n in self.errors.items()],
            "violations": self.violations,
            "latency": {m: list(v) for m, v in self.latency.items()},
            "intervals": [[s, m, encode_histogram(h)] for s, m, h in self.intervals],
            "state": [
                self.state.connected,
                self.state.recording,
                self.state.paused,
                self.state.epoch,
                self.state.restarting,
            ],
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> Snapshot:
        connected, recording, paused, epoch, restarting = data["state"]
        return cls(
            process=data["process"],
            requests=dict(data["requests"]),
            errors={(op, code): n for op, code, n in data["errors"]},
            violations=dict(data["violations"]),
            latency={m: (int(c), float(s)) for m, (c, s) in data["latency"].items()},
            intervals=[(s, m, decode_histogram(text)) for s, m, text in data["intervals"]],
            state=ProcessState(connected, bool(recording), bool(paused), epoch, bool(restarting)),
        )


class _Tee:
    """The recorder's interval sink that also hands each interval to the exporter."""

    def __init__(
        self, inner: IntervalSink | None, take: Callable[[int, Mapping[str, HdrHistogram]], None]
    ) -> None:
        self.inner = inner
        self.take = take

    def write_interval(
        self, second: int, histograms: Mapping[str, HdrHistogram], errors: Mapping[str, int]
    ) -> None:
        if self.inner is not None:
            self.inner.write_interval(second, histograms, errors)
        self.take(second, histograms)


class ProcessMetrics:
    """One locust process's figures, as they happen."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.requests: Counter[str] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.violations: Counter[str] = Counter()
        self._latency: dict[str, list[float]] = {}
        self._intervals: list[tuple[int, str, HdrHistogram]] = []
        self._recorder: LatencyRecorder | None = None

    def on_request(
        self,
        request_type: str,
        name: str = "",
        response_time: float = 0.0,
        response_length: int = 0,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        """locust's request event: one completed request, notification or connect.

        Its arguments are named, so locust's usual keywords build no dict: this runs
        for every request and notification (about 1 µs a call).
        """
        operation = OPERATION.get(request_type)
        if operation is None:
            if request_type == PROTOCOL:
                self.violations[getattr(exception, "requirement", None) or "spec"] += 1
                return
            operation = request_type.lower()
        self.requests[operation] += 1
        if exception is not None:
            self.errors[operation, error_code(exception)] += 1

    def follow(self, recorder: LatencyRecorder) -> None:
        """Take ``recorder``'s intervals from now on, and count what it rolled before.

        Nothing runs between reading its totals and taking its sink (one greenlet),
        so no interval is counted twice or lost.
        """
        if recorder is self._recorder:
            return
        self._recorder = recorder
        for metric, histogram in recorder.totals.items():
            self._count(metric, histogram)
        recorder.log = _Tee(recorder.log, self._take_interval)

    def _take_interval(self, second: int, histograms: Mapping[str, HdrHistogram]) -> None:
        for metric, histogram in histograms.items():
            self._count(metric, histogram)
            self._intervals.append((second, metric, histogram))

    def _count(self, metric: str, histogram: HdrHistogram) -> None:
        count = histogram.get_total_count()
        figures = self._latency.setdefault(metric, [0, 0.0])
        figures[0] += count
        # HDR's mean: within 0.1% of the exact sum, like every figure of the histogram.
        figures[1] += histogram.get_mean_value() * count

    def snapshot(self, state: ProcessState) -> Snapshot:
        """The figures so far; the intervals since the last snapshot."""
        intervals, self._intervals = self._intervals, []
        return Snapshot(
            process=self.process,
            requests=dict(self.requests),
            errors=dict(self.errors),
            violations=dict(self.violations),
            latency={m: (int(c), s) for m, (c, s) in self._latency.items()},
            intervals=intervals,
            state=state,
        )


def error_code(exception: BaseException) -> str:
    """The code label of a failed request: the server's error code, NO_REPLY, or the kind."""
    if isinstance(exception, StoreError):
        return str(exception.code)
    if isinstance(exception, OutcomeUnknown):
        return NO_REPLY
    if isinstance(exception, ProtocolViolation):
        return "PROTOCOL_VIOLATION"
    return type(exception).__name__


class RunMetrics:
    """The run's figures: the sum of every process's latest snapshot, ready to render."""

    def __init__(self, window_s: int = ex.WINDOW_S, clock: Callable[[], float] = time.time):
        self.window_s = window_s
        self.clock = clock
        self._latest: dict[str, Snapshot] = {}
        #: metric -> wall second -> that second's histogram, merged over processes
        self._window: dict[str, dict[int, HdrHistogram]] = {}
        self._anomalies: dict[str, int] | None = None

    def update(self, snapshot: Snapshot) -> None:
        self._latest[snapshot.process] = snapshot
        for second, metric, histogram in snapshot.intervals:
            seconds = self._window.setdefault(metric, {})
            merged = seconds.get(second)
            if merged is None:
                merged = seconds[second] = new_histogram()
            merged.add(histogram)
        self._trim()

    def report_anomalies(self, counts: Mapping[str, int]) -> None:
        """The hook for whatever knows the anomalies found so far.

        Today only the checker at the end of the run does (``verdict.json``); until
        something reports, the exporter serves no anomaly series at all.
        """
        self._anomalies = dict(counts)

    def _trim(self) -> None:
        oldest = int(self.clock()) - self.window_s
        for seconds in self._window.values():
            for second in [s for s in seconds if s <= oldest]:
                del seconds[second]

    def samples(self, users: int | None = None) -> dict[str, list[ex.Sample]]:
        """Every sample the exporter serves now, by sample name."""
        self._trim()
        snapshots = list(self._latest.values())
        out: dict[str, list[ex.Sample]] = {}
        requests = _sum(s.requests for s in snapshots)
        out[ex.REQUESTS.name] = [({"operation": op}, n) for op, n in sorted(requests.items())]
        errors = _sum(s.errors for s in snapshots)
        out[ex.ERRORS.name] = [
            ({"operation": op, "code": code}, n) for (op, code), n in sorted(errors.items())
        ]
        violations = _sum(s.violations for s in snapshots)
        out[ex.VIOLATIONS.name] = [({"requirement": r}, n) for r, n in sorted(violations.items())]
        self._latency_samples(snapshots, out)
        if users is not None:
            out[ex.USERS.name] = [({}, users)]
        states = [s.state for s in snapshots]
        out[ex.PROCESSES.name] = [({}, len(snapshots))]
        if states:
            out[ex.CONNECTED.name] = [({}, sum(s.connected for s in states))]
            out[ex.RECORDING.name] = [({}, sum(s.recording for s in states))]
            out[ex.PAUSED.name] = [({}, sum(s.paused for s in states))]
            out[ex.EPOCH.name] = [({}, max(s.epoch for s in states))]
            out[ex.RESTARTING.name] = [({}, max(s.restarting for s in states))]
        if self._anomalies is not None:
            out[ex.ANOMALIES.name] = [({"kind": k}, n) for k, n in sorted(self._anomalies.items())]
        return out

    def _latency_samples(self, snapshots: list[Snapshot], out: dict[str, list[ex.Sample]]) -> None:
        totals: dict[str, list[float]] = {}
        for snapshot in snapshots:
            for metric, (count, sum_us) in snapshot.latency.items():
                figures = totals.setdefault(metric, [0, 0.0])
                figures[0] += count
                figures[1] += sum_us
        quantiles = out.setdefault(ex.LATENCY.name, [])
        counts = out.setdefault(f"{ex.LATENCY.name}_count", [])
        sums = out.setdefault(f"{ex.LATENCY.name}_sum", [])
        maxima = out.setdefault(ex.LATENCY_MAX.name, [])
        order = {metric: n for n, metric in enumerate(METRICS)}
        for metric in sorted(totals, key=lambda m: (order.get(m, len(order)), m)):
            count, sum_us = totals[metric]
            label = {"operation": metric}
            window = _merged(self._window.get(metric, {}).values())
            # No observation in the window: NaN, as Prometheus's own summaries say it.
            at = {q: float("nan") for q in ex.QUANTILES}
            highest = float("nan")
            if window is not None:
                # One pass for every quantile; the same values as histograms.stat_us.
                found = window.get_percentile_to_value_dict([q * 100 for q in ex.QUANTILES])
                at = {q: found[q * 100] / 1e6 for q in ex.QUANTILES}
                highest = window.get_highest_equivalent_value(window.get_max_value()) / 1e6
            quantiles.extend(({**label, "quantile": str(q)}, at[q]) for q in ex.QUANTILES)
            counts.append((label, count))
            sums.append((label, sum_us / 1e6))
            maxima.append((label, highest))


def _merged(histograms: Iterable[HdrHistogram]) -> HdrHistogram | None:
    merged: HdrHistogram | None = None
    for histogram in histograms:
        if merged is None:
            merged = new_histogram()
        merged.add(histogram)
    return merged if merged is not None and merged.get_total_count() else None


def _sum(counters: Iterable[Mapping[K, int]]) -> Counter[K]:
    total: Counter[K] = Counter()
    for counter in counters:
        total.update(counter)
    return total
