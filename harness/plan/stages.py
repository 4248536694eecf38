"""Stages: what a test file's ``[[stages]]`` say, resolved into times, targets and rates.

A stage holds a participant target and a write rate for its ``duration``:

* ``participants`` are reached at ``spawn_rate`` (participants/s, joining or
  leaving), or within ``ramp`` seconds, and then held: locust's own meaning of a
  user count and spawn rate.
  The ramp must fit in the stage, or the next stage would begin before this one
  reached its target.
* ``write_rate`` (writes/s per writing participant, the open model's
  ``--write-rate``) ramps linearly from the rate before the stage to the
  stage's rate over its duration: k6's ramping arrival rate. A stage without one
  holds the rate before it.

Stages run one after the other; one with a ``start`` of its own begins then, and
the gap before it holds what came before. A ``start`` before the previous stage
ends is an overlap, and an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import HarnessUsageError

#: A ramp may run this much past its stage: the shape ticks once a second.
RAMP_SLACK_S = 1.0


def _unplaced(key: str) -> str:
    return f"stages.{key}"


@dataclass(frozen=True)
class StageSpec:
    """One stage as written (or as a preset wrote it), before it has a place in time."""

    duration: float
    name: str | None = None
    start: float | None = None
    participants: int | None = None
    spawn_rate: float | None = None
    #: Seconds the change of participants takes (instead of a spawn rate): ``trickle-in``.
    ramp: float | None = None
    write_rate: float | None = None
    #: False: the write rate steps to ``write_rate`` at once (presets' bursts) instead of ramping.
    write_ramp: bool = True
    #: Where a key of this stage is written, for errors: ``test.toml:14: stages[2].start``.
    origin: Callable[[str], str] = field(default=_unplaced, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Stage:
    """One resolved stage; times are seconds from the start of the run."""

    name: str
    start: float
    end: float
    participants_from: int
    participants: int
    spawn_rate: float
    write_from: float
    write_to: float

    @property
    def ramp_s(self) -> float:
        return abs(self.participants - self.participants_from) / self.spawn_rate

    def participants_at(self, t: float) -> float:
        """Participants locust is asked for ``t`` s into the run (this stage's ramp, then hold)."""
        moved = self.spawn_rate * max(0.0, t - self.start)
        change = self.participants - self.participants_from
        return self.participants_from + max(-moved, min(moved, change))

    def write_rate_at(self, t: float) -> float:
        span = self.end - self.start
        share = min(1.0, max(0.0, (t - self.start) / span)) if span > 0 else 1.0
        return self.write_from + (self.write_to - self.write_from) * share

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StagePlan:
    """Every stage of a run, in order and without gaps (a gap became a ``hold`` stage)."""

    stages: tuple[Stage, ...]

    @property
    def duration(self) -> float:
        return self.stages[-1].end if self.stages else 0.0

    @property
    def peak_participants(self) -> int:
        return max((s.participants for s in self.stages), default=0)

    @property
    def open_model(self) -> bool:
        return any(s.write_from > 0 or s.write_to > 0 for s in self.stages)

    def at(self, t: float) -> Stage | None:
        """The stage running ``t`` s into the run; None before 0 and from the end on."""
        for stage in self.stages:
            if stage.start <= t < stage.end:
                return stage
        return None

    def named(self, name: str) -> list[Stage]:
        return [s for s in self.stages if s.name == name]

    def tick(self, t: float) -> tuple[int, float] | None:
        """What locust's LoadTestShape.tick returns ``t`` s in: (participants, spawn rate)."""
        stage = self.at(t)
        return None if stage is None else (stage.participants, stage.spawn_rate)

    def participants_at(self, t: float) -> float:
        stage = self.at(t)
        return stage.participants_at(t) if stage is not None else 0.0

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.stages]

    @classmethod
    def from_json(cls, data: Iterable[dict[str, Any]]) -> StagePlan:
        return cls(tuple(Stage(**entry) for entry in data))


def resolve(specs: Sequence[StageSpec], *, spawn_rate: float, write_rate: float) -> StagePlan:
    """Place each stage in time; ``spawn_rate`` and ``write_rate`` apply where a stage gives none.

    A HarnessUsageError names the stage's file, line and key.
    """
    stages: list[Stage] = []
    t, users, rate = 0.0, 0, write_rate
    names: set[str] = set()
    for number, spec in enumerate(specs, 1):
        start = t if spec.start is None else spec.start
        if start < t - 1e-9:
            previous = stages[-1]
            raise HarnessUsageError(
                f"{spec.origin('start')}: starts at {start:g}s, while stage {previous.name!r} "
                f"runs until {previous.end:g}s: stages must not overlap"
            )
        if start > t:
            stages.append(
                Stage(f"hold-{len(stages) + 1}", t, start, users, users, spawn_rate, rate, rate)
            )
        name = spec.name or f"stage-{number}"
        if name in names and spec.name is not None:
            raise HarnessUsageError(
                f"{spec.origin('name')}: another stage is named {name!r} already"
            )
        names.add(name)
        target = users if spec.participants is None else spec.participants
        step = spec.spawn_rate if spec.spawn_rate is not None else spawn_rate
        if spec.ramp is not None and target != users:
            step = abs(target - users) / spec.ramp if spec.ramp > 0 else abs(target - users)
        write_to = rate if spec.write_rate is None else spec.write_rate
        stage = Stage(
            name,
            start,
            start + spec.duration,
            users,
            target,
            step,
            rate if spec.write_ramp else write_to,
            write_to,
        )
        if stage.ramp_s > spec.duration + RAMP_SLACK_S:
            key = "spawn_rate" if spec.spawn_rate is not None else "participants"
            raise HarnessUsageError(
                f"{spec.origin(key)}: going from {users} to {target} participants at "
                f"{step:g}/s takes {stage.ramp_s:.0f}s, longer than the stage's "
                f"{spec.duration:g}s (raise spawn_rate or the duration)"
            )
        stages.append(stage)
        t, users, rate = stage.end, target, write_to
    return StagePlan(tuple(stages))


def scaled(specs: Sequence[StageSpec], factor: float) -> list[StageSpec]:
    """The same stages at ``factor`` scale: durations, starts and participants times ``factor``.

    Spawn rates stay, so a ramp takes ``factor`` times as long like its stage;
    write rates are per participant and stay too.
    """
    out = []
    for spec in specs:
        participants = spec.participants
        if participants:
            participants = max(1, round(participants * factor))
        out.append(
            StageSpec(
                duration=spec.duration * factor,
                name=spec.name,
                start=None if spec.start is None else spec.start * factor,
                participants=participants,
                spawn_rate=spec.spawn_rate,
                ramp=None if spec.ramp is None else spec.ramp * factor,
                write_rate=spec.write_rate,
                write_ramp=spec.write_ramp,
                origin=spec.origin,
            )
        )
    return out
