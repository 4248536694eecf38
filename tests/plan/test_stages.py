"""Stages placed in time, presets expanded, scaled plans, and ramped write schedules."""

from __future__ import annotations

import time

import orjson
import pytest

from harness.errors import HarnessUsageError
from harness.plan.presets import PRESETS
from harness.plan.rates import RampedSchedule, RateProfile, write_schedule
from harness.plan.stages import StagePlan, StageSpec, resolve, scaled
from harness.run.pacing import Schedule


def test_stages_follow_each_other_and_a_gap_holds_what_came_before() -> None:
    plan = resolve(
        [
            StageSpec(10, name="up", participants=20, spawn_rate=4),
            StageSpec(5, name="late", start=15, participants=5, spawn_rate=5, write_rate=2),
        ],
        spawn_rate=25,
        write_rate=0,
    )
    assert [(s.name, s.start, s.end) for s in plan.stages] == [
        ("up", 0, 10),
        ("hold-2", 10, 15),
        ("late", 15, 20),
    ]
    assert plan.stages[1].participants_from == plan.stages[1].participants == 20
    # Participants ramp at the spawn rate, then hold; locust is told the stage's target.
    assert plan.participants_at(2.5) == 10 and plan.participants_at(7) == 20
    assert plan.tick(3) == (20, 4) and plan.tick(16) == (5, 5) and plan.tick(20) is None
    # The write rate ramps over the stage, from the rate before it.
    late = plan.stages[2]
    assert (late.write_rate_at(15), late.write_rate_at(17.5), late.write_rate_at(20)) == (0, 1, 2)
    assert StagePlan.from_json(orjson.loads(orjson.dumps(plan.to_json()))) == plan


def test_stages_with_one_name_twice_are_refused() -> None:
    with pytest.raises(HarnessUsageError, match="another stage is named 'a'"):
        resolve([StageSpec(1, name="a"), StageSpec(1, name="a")], spawn_rate=1, write_rate=0)


@pytest.mark.parametrize(
    ("preset", "values", "expected"),
    [
        ("join-storm", {"participants": 100, "duration": 60.0}, [("join-storm", 0, 60, 100, 100)]),
        ("trickle-in", {"participants": 30, "duration": 60.0}, [("trickle-in", 0, 60, 30, 0.5)]),
        ("leave-at-end", {"duration": 20.0}, [("leave-at-end", 0, 20, 0, None)]),
    ],
)
def test_participant_presets(preset: str, values: dict, expected: list) -> None:
    plan = resolve(PRESETS[preset].expand(values, str), spawn_rate=25, write_rate=0)
    got = [(s.name, s.start, s.end, s.participants, s.spawn_rate) for s in plan.stages]
    if preset == "leave-at-end":  # from nobody to nobody: nothing to ramp
        expected = [(*expected[0][:4], 25)]
    assert got == expected


def test_leave_at_end_empties_the_room_over_its_duration() -> None:
    specs = [StageSpec(10, participants=40, spawn_rate=10)]
    specs += PRESETS["leave-at-end"].expand({"duration": 20.0}, str)
    last = resolve(specs, spawn_rate=25, write_rate=0).stages[-1]
    assert (last.participants_from, last.participants, last.spawn_rate) == (40, 0, 2)
    assert last.participants_at(last.start + 10) == 20


def test_moderator_bursts_alternate_a_burst_rate_with_a_quiet_one_and_end_quiet() -> None:
    specs = PRESETS["moderator-bursts"].expand(
        {"name": "b", "duration": 60.0, "bursts": 3, "burst_rate": 10.0, "write_rate": 1.0}, str
    )
    plan = resolve(specs, spawn_rate=25, write_rate=0)
    assert [(s.name, s.end - s.start, s.write_from, s.write_to) for s in plan.stages] == [
        ("b.burst-1", 5, 10, 10), ("b.quiet-1", 15, 1, 1),
        ("b.burst-2", 5, 10, 10), ("b.quiet-2", 15, 1, 1),
        ("b.burst-3", 5, 10, 10), ("b.quiet-3", 15, 1, 1),
    ]  # fmt: skip


def test_scaling_shrinks_participants_and_times_and_keeps_rates() -> None:
    specs = [StageSpec(100, participants=50, spawn_rate=1, write_rate=3), StageSpec(20, start=200)]
    plan = resolve(scaled(specs, 0.1), spawn_rate=25, write_rate=0)
    first = plan.stages[0]
    assert (first.end, first.participants, first.spawn_rate, first.write_to) == (10, 5, 1, 3)
    assert plan.duration == pytest.approx(22)


def test_the_profile_counts_sends_and_finds_when_each_is_due() -> None:
    plan = resolve(
        [StageSpec(10, write_rate=10), StageSpec(10), StageSpec(10, write_rate=0)],
        spawn_rate=1,
        write_rate=0,
    )
    profile = RateProfile.of(plan)
    # 0 -> 10/s over 10 s is 50 sends, then 100 at 10/s, then 50 ramping down.
    assert [profile.due_by(t) for t in (10, 20, 30)] == [50, 150, 200]
    for k in (1, 10, 49.5, 50, 120, 175, 199.9):
        assert profile.due_by(profile.time_of(k)) == pytest.approx(k)
    assert profile.time_of(201) is None


def test_a_ramped_schedule_starts_at_the_sends_due_from_now() -> None:
    plan = resolve([StageSpec(100, write_rate=10)], spawn_rate=1, write_rate=0)
    profile = RateProfile.of(plan)
    origin = time.time() - 50  # the run began 50 s ago: 125 sends were due already
    schedule = RampedSchedule(profile, origin, phase=0.5)
    first, second = schedule.next_due(), schedule.next_due()
    assert 124 <= schedule.sent - 2 <= 126
    # About 5 writes/s 50 s in: the next sends are 0.2 s apart.
    assert (second - first) / 1e9 == pytest.approx(0.2, rel=0.05)


def test_write_schedule_picks_the_model() -> None:
    plan = resolve([StageSpec(10, write_rate=2)], spawn_rate=1, write_rate=0)
    stamped = orjson.dumps({"stages": plan.to_json(), "origin": time.time()}).decode()
    assert isinstance(write_schedule(stamped, 0.0, phase=0), RampedSchedule)
    closed = resolve([StageSpec(10)], spawn_rate=1, write_rate=0)
    assert write_schedule(orjson.dumps({"stages": closed.to_json()}).decode(), 0.0, phase=0) is None
    assert isinstance(write_schedule(None, 3.0, phase=0), Schedule)
    assert write_schedule(None, 0.0, phase=0) is None
