"""The meeting patterns, each a named preset a test file's stage can use::

    [[stages]]
    preset = "join-storm"
    participants = 500
    duration = "2m"

Each preset expands into ordinary stages (:class:`~harness.plan.stages.StageSpec`);
``store-harness run --dry-run`` prints what it became. The table below is the
documentation: each preset's keys, whether required, and their meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.plan.stages import StageSpec

#: A key's kind, checked by the loader: "count" (int >= 0), "count1" (int >= 1), "rate" (> 0),
#: "rate0" (number >= 0), "duration", "name".
Kind = str


@dataclass(frozen=True, slots=True)
class Key:
    kind: Kind
    required: bool
    help: str


@dataclass(frozen=True, slots=True)
class Preset:
    help: str
    keys: Mapping[str, Key]
    expand: Callable[[Mapping[str, Any], Callable[[str], str]], list[StageSpec]]


def _join_storm(v: Mapping[str, Any], origin: Callable[[str], str]) -> list[StageSpec]:
    return [
        StageSpec(
            v["duration"],
            name=v.get("name", "join-storm"),
            start=v.get("start"),
            participants=v["participants"],
            ramp=v.get("within", 1.0),
            origin=origin,
        )
    ]


def _trickle_in(v: Mapping[str, Any], origin: Callable[[str], str]) -> list[StageSpec]:
    return [
        StageSpec(
            v["duration"],
            name=v.get("name", "trickle-in"),
            start=v.get("start"),
            participants=v["participants"],
            ramp=v["duration"],
            origin=origin,
        )
    ]


def _moderator_bursts(v: Mapping[str, Any], origin: Callable[[str], str]) -> list[StageSpec]:
    name = v.get("name", "moderator-bursts")
    bursts: int = v.get("bursts", 3)
    period = v["duration"] / bursts
    burst = min(v.get("burst_duration", 5.0), period)
    specs = []
    # Each period is a burst, then quiet: the stage ends at the quiet rate, which the
    # stages after it hold.
    for n in range(1, bursts + 1):
        specs.append(
            StageSpec(
                burst,
                name=f"{name}.burst-{n}",
                start=v.get("start") if n == 1 else None,
                participants=v.get("participants") if n == 1 else None,
                write_rate=v["burst_rate"],
                write_ramp=False,
                origin=origin,
            )
        )
        if period > burst:
            specs.append(
                StageSpec(
                    period - burst,
                    name=f"{name}.quiet-{n}",
                    write_rate=v.get("write_rate", 0.0),
                    write_ramp=False,
                    origin=origin,
                )
            )
    return specs


def _leave_at_end(v: Mapping[str, Any], origin: Callable[[str], str]) -> list[StageSpec]:
    return [
        StageSpec(
            v["duration"],
            name=v.get("name", "leave-at-end"),
            start=v.get("start"),
            participants=v.get("participants", 0),
            ramp=v["duration"],
            origin=origin,
        )
    ]


_NAME = Key("name", False, "the stage's name (thresholds scope to it with @NAME)")
_START = Key("duration", False, "when it starts (default: when the stage before ends)")

PRESETS: dict[str, Preset] = {
    "join-storm": Preset(
        "the whole room joins at once, then stays",
        {
            "participants": Key("count", True, "the room's size"),
            "duration": Key("duration", True, "how long the stage lasts, storm included"),
            "within": Key("duration", False, "seconds the storm takes (default 1s)"),
            "name": _NAME,
            "start": _START,
        },
        _join_storm,
    ),
    "trickle-in": Preset(
        "people arrive one by one over the whole stage",
        {
            "participants": Key("count", True, "how many are in by the end"),
            "duration": Key("duration", True, "how long they take to arrive"),
            "name": _NAME,
            "start": _START,
        },
        _trickle_in,
    ),
    "moderator-bursts": Preset(
        "writers flip flags in bursts (use with the moderation scenario)",
        {
            "duration": Key("duration", True, "how long the stage lasts"),
            "burst_rate": Key("rate", True, "writes/s per writing participant in a burst"),
            "bursts": Key("count1", False, "how many bursts, evenly spread (default 3)"),
            "burst_duration": Key("duration", False, "how long a burst lasts (default 5s)"),
            "write_rate": Key("rate0", False, "writes/s per writer between bursts (default 0)"),
            "participants": Key("count", False, "participants to hold (default: as before)"),
            "name": _NAME,
            "start": _START,
        },
        _moderator_bursts,
    ),
    "leave-at-end": Preset(
        "people leave evenly over the whole stage",
        {
            "duration": Key("duration", True, "how long leaving takes"),
            "participants": Key("count", False, "how many are left at the end (default 0)"),
            "name": _NAME,
            "start": _START,
        },
        _leave_at_end,
    ),
}
