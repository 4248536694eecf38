"""The open load model: sends scheduled at a fixed rate, timed from when they were due.

A closed loop (send, wait for the reply, send again) stops sending while the
server stalls, so the stall costs one slow sample and the percentiles hide it:
coordinated omission. In the open model every send has an intended time fixed
in advance; a sender that falls behind sends at once to catch up, and latency
is measured from the intended time, so every send the stall delayed counts.

A :class:`Schedule` only says when the next send is due; it works the same in
asyncio code and in a gevent/locust user::

    schedule = Schedule(rate=50)                 # 50 sends a second
    while running:
        due = schedule.next_due()
        await sleep_until(due)                   # or gevent.sleep(schedule.wait_s(due))
        recorder.intend(client, due)             # report the intended time
        await client.set(key, value)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import monotonic_ns

from harness.errors import HarnessUsageError

CLOSED, OPEN = "closed", "open"
MODELS = (CLOSED, OPEN)
PER_PARTICIPANT, TOTAL = "participant", "total"


@dataclass(frozen=True, slots=True)
class LoadModel:
    """Which model ran, as a run's ``run.json`` and its report state it.

    ``rate`` is sends per second, per participant or in total (``rate_per``);
    for the closed model it is optional and sets a think time instead.
    """

    model: str = CLOSED
    rate: float | None = None
    rate_per: str = PER_PARTICIPANT

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise HarnessUsageError(f"load model must be one of {MODELS}, got {self.model!r}")
        if self.rate_per not in (PER_PARTICIPANT, TOTAL):
            raise HarnessUsageError(f"rate is per 'participant' or 'total', got {self.rate_per!r}")
        if self.rate is not None and not self.rate > 0:
            raise HarnessUsageError(f"rate must be a positive number of sends/s, got {self.rate}")
        if self.model == OPEN and self.rate is None:
            raise HarnessUsageError("the open model needs a rate (sends per second)")

    def per_sender(self, senders: int) -> float | None:
        """Each sender's rate when ``senders`` share this model's rate."""
        if self.rate is None:
            return None
        return self.rate / senders if self.rate_per == TOTAL else self.rate

    def describe(self) -> str:
        if self.rate is None:
            return f"{self.model} loop, no think time"
        per = "per participant" if self.rate_per == PER_PARTICIPANT else "in total"
        return f"{self.model} model, {self.rate:g} writes/s {per}"

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "rate": self.rate, "rate_per": self.rate_per}


class Schedule:
    """Intended send times at a fixed rate, on the monotonic clock (ns).

    ``phase`` (0..1) shifts this sender within its period, so senders sharing a
    total rate spread their sends evenly instead of all firing at once.
    """

    def __init__(self, rate: float, *, start_ns: int | None = None, phase: float = 0.0) -> None:
        if not rate > 0:
            raise HarnessUsageError(f"a schedule needs a positive rate, got {rate}")
        self.rate = rate
        self.period_ns = 1e9 / rate
        self.start_ns = (monotonic_ns() if start_ns is None else start_ns) + int(
            phase * self.period_ns
        )
        self.sent = 0

    @classmethod
    def share(cls, total_rate: float, senders: int, index: int, start_ns: int) -> Schedule:
        """Sender ``index``'s part of ``total_rate`` split evenly among ``senders``."""
        return cls(total_rate / senders, start_ns=start_ns, phase=index / senders)

    def next_due(self) -> int:
        """The intended time of the next send; later calls move on to the one after."""
        due = self.start_ns + int(self.sent * self.period_ns)
        self.sent += 1
        return due

    def peek(self) -> int:
        return self.start_ns + int(self.sent * self.period_ns)

    @staticmethod
    def wait_s(due_ns: int, now_ns: int | None = None) -> float:
        """Seconds to wait until ``due_ns`` (0 when late: a late sender catches up)."""
        now = monotonic_ns() if now_ns is None else now_ns
        return max(0.0, (due_ns - now) / 1e9)

    def behind(self, now_ns: int | None = None) -> int:
        """How many sends are overdue: how far a stalled sender has fallen behind."""
        now = monotonic_ns() if now_ns is None else now_ns
        return max(0, int((now - self.start_ns) / self.period_ns) + 1 - self.sent)


#: Event loops wake up to a millisecond late (epoll rounds its timeout up), so
#: senders wake this much early; latency counts from the earlier of the intended
#: and the actual send time, so an early send is timed from when it really went.
EARLY_WAKE_S = 0.001


async def sleep_until(due_ns: int) -> None:
    """Sleep until about the monotonic time ``due_ns``; return at once when it is past."""
    wait = Schedule.wait_s(due_ns) - EARLY_WAKE_S
    if wait > 0:
        await asyncio.sleep(wait)
