"""The client listener that records latency into HDR histograms.

:class:`LatencyRecorder` records per-operation latency (``join``, ``set``,
``get``, ``observe``, ``stopObserving``) and notification latency: ``notify``
(a write to each observer that received it) and ``fanout`` (a write to the last
observer that received it). It rolls its histograms every second into a
:class:`harness.latency.log.LatencyLog`, so a run directory holds latency and
throughput over time, and a killed run keeps what it measured.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from time import monotonic_ns
from typing import TYPE_CHECKING, Protocol

from hdrh.histogram import HdrHistogram

from harness.client.core import ClientCore, ClientListener
from harness.latency.histograms import (
    CLOCK_MONOTONIC,
    CLOCK_WALL,
    FANOUT,
    LOWEST_US,
    NO_REPLY,
    NOTIFY,
    clamp_us,
    clock_name,
    new_histogram,
)
from harness.protocol import Error, PendingRequest, Reply, Set, Update
from harness.protocol.messages import KIND_OF
from harness.run.values import parse_value

#: The latency metric of each request class (harness.protocol.kinds).
_METRIC = {cls: kind.metric for cls, kind in KIND_OF.items()}

if TYPE_CHECKING:
    from harness.latency.log import LatencyLog


class IntervalSink(Protocol):
    def write_interval(
        self, second: int, histograms: Mapping[str, HdrHistogram], errors: Mapping[str, int]
    ) -> None: ...


class LatencyRecorder(ClientListener):
    """Records latency from client hooks into per-second and whole-run histograms.

    Per event the work is a dict lookup and one histogram increment: the swarm
    calls this about 20,000 times a second per process. Writes made through a
    client of this process are timed on its monotonic clock; writes seen only
    as updates are timed from the wall-clock stamp their value carries
    (:func:`harness.run.values.make_value`), so clock skew between machines shows up
    there. A write's fan-out completes at its last observer in this process;
    it is recorded once no update for it came for ``fanout_window_s``.
    """

    def __init__(
        self,
        log: LatencyLog | IntervalSink | None = None,
        *,
        fanout_window_s: float = 5.0,
        on_notify: Callable[[Update, int, str], None] | None = None,
    ) -> None:
        self.log = log
        #: Called with (update, latency µs, clock) for every timed notification.
        self.on_notify = on_notify
        self.fanout_window_ns = int(fanout_window_s * 1e9)
        # Wall time of a monotonic reading, so intervals of processes line up by wall second.
        self._wall_offset = time.time_ns() - monotonic_ns()
        self.totals: dict[str, HdrHistogram] = {}
        self.errors: Counter[str] = Counter()
        self.clocks: Counter[str] = Counter()
        #: Updates whose value carried no stamp (not written by the harness), and
        #: wall-clock latencies below zero (skew), recorded as 1 µs.
        self.unstamped = 0
        self.skewed = 0
        self._interval: dict[str, HdrHistogram] = {}
        self._interval_errors: Counter[str] = Counter()
        # Raw µs value -> count for the current interval, poured into the interval's
        # histograms once a second: hdrh's record_value costs microseconds in pure
        # Python, a dict increment a tenth of that, and latencies repeat a lot.
        self._counts: dict[str, dict[int, int]] = {NOTIFY: {}}
        self._notify_counts = self._counts[NOTIFY]
        self._second = self._wall_second(monotonic_ns())
        self._roll_ns = (self._second + 1) * 1_000_000_000 - self._wall_offset
        # value -> [start ns, last receipt ns, clock]; insertion order is time order.
        self._writes: dict[str, list] = {}
        self._intended: dict[tuple[int, int], int] = {}
        self._due: dict[int, int] = {}

    # --- hooks (the hot path) ---------------------------------------------------

    def intend(self, client: ClientCore, due_ns: int) -> None:
        """The next request ``client`` sends was due at ``due_ns`` (open model pacing).

        Its latency, and its notifications', are then measured from ``due_ns`` when
        it went out late, so a server that stalls cannot hide the stall
        (coordinated omission); a send that went out early counts from when it went.
        """
        self._due[id(client)] = due_ns

    def request_sent(self, client: ClientCore, pending: PendingRequest) -> None:
        start = pending.sent_ns
        if self._due:
            due = self._due.pop(id(client), None)
            if due is not None and pending.id is not None and due < start:
                # A late send counts from when it was due; an early one from when it went.
                start = due
                self._intended[(id(client), pending.id)] = due
        request = pending.request
        if isinstance(request, Set) and request.value is not None:
            self._writes[request.value] = [start, 0, CLOCK_MONOTONIC]

    def request_done(
        self, client: ClientCore, pending: PendingRequest, reply: Reply | None, done_ns: int
    ) -> None:
        if done_ns >= self._roll_ns:
            self.roll(done_ns)
        start = pending.sent_ns
        if self._intended and pending.id is not None:
            start = self._intended.pop((id(client), pending.id), start)
        if reply is None:
            self._interval_errors[NO_REPLY] += 1
            return
        if isinstance(reply, Error):
            self._interval_errors[reply.code.value] += 1
        if pending.request is not None:
            name = _METRIC[type(pending.request)]
            counts = self._counts.get(name)
            if counts is None:
                counts = self._counts[name] = {}
            us = clamp_us((done_ns - start) // 1000)
            counts[us] = counts.get(us, 0) + 1

    def update_received(self, client: ClientCore, update: Update, received_ns: int) -> None:
        if received_ns >= self._roll_ns:
            self.roll(received_ns)
        value = update.value
        write = self._writes.get(value) if value is not None else None
        if write is None:
            stamp = parse_value(value)
            if stamp is None:
                self.unstamped += 1
                return
            write = [stamp.wall_ns - self._wall_offset, 0, CLOCK_WALL]
            self._writes[value] = write  # type: ignore[index]
        latency = (received_ns - write[0]) // 1000
        if latency < LOWEST_US:
            self.skewed += 1
        us = clamp_us(latency)
        counts = self._notify_counts
        counts[us] = counts.get(us, 0) + 1
        self.clocks[write[2]] += 1
        if self.on_notify is not None:
            self.on_notify(update, latency, write[2])
        if received_ns > write[1]:
            write[1] = received_ns

    # --- intervals ----------------------------------------------------------------

    def roll(self, now_ns: int | None = None, *, final: bool = False) -> None:
        """Close the current one-second interval if it is over (or ``final``) and log it.

        Events roll intervals themselves; call this once a second as well so
        quiet seconds and fan-outs still get written.
        """
        now_ns = monotonic_ns() if now_ns is None else now_ns
        if now_ns < self._roll_ns and not final:
            return
        self._finish_fanouts(now_ns, final)
        for name, counts in self._counts.items():
            if counts:
                histogram = self._interval.get(name) or self._histogram(name)
                for us, count in counts.items():
                    histogram.record_value(us, count)
        histograms = {name: h for name, h in self._interval.items() if h.get_total_count()}
        if histograms or self._interval_errors:
            for name, histogram in histograms.items():
                self.totals.setdefault(name, new_histogram()).add(histogram)
            self.errors.update(self._interval_errors)
            if self.log is not None:
                self.log.write_interval(self._second, histograms, self._interval_errors)
        self._interval = {}
        self._interval_errors = Counter()
        self._counts = {NOTIFY: {}}
        self._notify_counts = self._counts[NOTIFY]
        self._second = self._wall_second(now_ns)
        self._roll_ns = (self._second + 1) * 1_000_000_000 - self._wall_offset

    def close(self) -> None:
        """Record every pending fan-out and write the last interval."""
        self.roll(final=True)

    def clock(self) -> str:
        return clock_name(self.clocks)

    def _finish_fanouts(self, now_ns: int, final: bool) -> None:
        cutoff = now_ns - self.fanout_window_ns
        done: list[str] = []
        fanout = self._interval.get(FANOUT)
        if fanout is None:
            fanout = self._histogram(FANOUT)
        for value, (start, last, _clock) in self._writes.items():
            if not final and max(start, last) > cutoff:
                break
            done.append(value)
            if last:
                fanout.record_value(clamp_us((last - start) // 1000))
        for value in done:
            del self._writes[value]

    def _histogram(self, name: str) -> HdrHistogram:
        histogram = self._interval[name] = new_histogram()
        return histogram

    def _wall_second(self, mono_ns: int) -> int:
        return (mono_ns + self._wall_offset) // 1_000_000_000
