"""A write rate that ramps between stages, as intended send times (the open model).

:class:`harness.run.pacing.Schedule` sends at one fixed rate. Here the rate is
piecewise linear in time (each stage ramps from the rate before it to its own),
so the number of sends due by ``t`` is the rate's integral ``N(t)``, and send
``k`` is due when ``N(t) = k``. Sends keep their intended times whatever the
server does, and latency is still measured from them
(``SwarmProcess.intend``), so a stall during a ramp cannot hide either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from time import monotonic_ns, time

import orjson

from harness.plan.stages import StagePlan
from harness.run.pacing import Schedule


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    rate_from: float
    rate_to: float

    @property
    def slope(self) -> float:
        span = self.end - self.start
        return (self.rate_to - self.rate_from) / span if span > 0 else 0.0

    @property
    def count(self) -> float:
        """Sends due within the segment: the area under its rate."""
        return (self.rate_from + self.rate_to) / 2 * (self.end - self.start)


class RateProfile:
    """Sends per second at each instant of a run, per writing participant."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments

    @classmethod
    def of(cls, plan: StagePlan) -> RateProfile:
        return cls([Segment(s.start, s.end, s.write_from, s.write_to) for s in plan.stages])

    def due_by(self, t: float) -> float:
        """N(t): sends due from the start of the run up to ``t`` s into it."""
        total = 0.0
        for segment in self.segments:
            if t <= segment.start:
                break
            tau = min(t, segment.end) - segment.start
            total += segment.rate_from * tau + segment.slope * tau * tau / 2
        return total

    def time_of(self, k: float) -> float | None:
        """When N(t) reaches ``k``; None if the run ends first."""
        done = 0.0
        for segment in self.segments:
            if done + segment.count >= k and segment.count > 0:
                left = k - done
                a, b = segment.rate_from, segment.slope
                # tau solves a*tau + b*tau^2/2 = left; this form is exact when b is 0
                # and stays stable when the rate ramps down.
                root = math.sqrt(max(0.0, a * a + 2 * b * left))
                return segment.start + (2 * left / (a + root) if a + root > 0 else 0.0)
            done += segment.count
        return None


class RampedSchedule:
    """Intended send times (monotonic ns) of one writer following a :class:`RateProfile`.

    ``origin_wall`` is the run's start as Unix time: every process of a distributed
    run shares it. ``phase`` (0..1) spreads writers within a send. A writer that
    joins late starts at the sends due from now on, not at the ones it missed.
    """

    def __init__(self, profile: RateProfile, origin_wall: float, *, phase: float = 0.0) -> None:
        self.profile = profile
        self.phase = phase
        self.origin_ns = monotonic_ns() - int((time() - origin_wall) * 1e9)
        now = (monotonic_ns() - self.origin_ns) / 1e9
        self.sent = max(0, math.ceil(profile.due_by(now) - phase))
        last = profile.segments[-1].end if profile.segments else 0.0
        #: Past the last send: the run is over by then, and stopping ends the writer.
        self.after_end_ns = self.origin_ns + int((last + 3600) * 1e9)

    def peek(self) -> int:
        t = self.profile.time_of(self.sent + self.phase)
        return self.after_end_ns if t is None else self.origin_ns + int(t * 1e9)

    def next_due(self) -> int:
        due = self.peek()
        self.sent += 1
        return due


def write_schedule(
    plan_json: str | None, write_rate: float, *, phase: float
) -> Schedule | RampedSchedule | None:
    """A writing participant's schedule in the open model; None for the closed loop.

    With a plan (``--plan``, once the master stamped the run's ``origin`` into it)
    the rate follows its stages; else ``--write-rate`` holds for the whole run.
    """
    if plan_json:
        data = orjson.loads(plan_json)
        profile = RateProfile.of(StagePlan.from_json(data["stages"]))
        writes = any(s.rate_from > 0 or s.rate_to > 0 for s in profile.segments)
        if writes and "origin" in data:
            return RampedSchedule(profile, data["origin"], phase=phase)
        if writes or not write_rate:
            return None
    return Schedule(write_rate, phase=phase) if write_rate else None
