"""The ``--fault`` grammar: what the fault proxy does to every connection, as data.

    --fault latency=20ms,jitter=5ms --fault bandwidth=64KiB,drop=0.05
    --fault partition=30%@5s+3s --fault partition=50%@20s+2s:stall

A spec is comma-separated ``NAME=VALUE`` items; the option repeats. Names:

========================  ==============================================================
``latency=DUR``           added to each direction (client to server, server to client)
``latency-up=DUR``        added client to server only (overrides ``latency`` that way)
``latency-down=DUR``      added server to client only
``jitter=DUR``            up to DUR more per chunk, uniformly; bytes never reorder
``bandwidth=SIZE[/s]``    bytes per second per connection, each way: 500B, 64KiB, 1MB
``drop=P``                each connection is cut with probability P per second (0.05, 5%)
``lifetime=DUR[..DUR]``   each connection is cut after a lifetime drawn in the range
``partition=F@AT+DUR[:MODE]``  at AT after the load starts, cut off a fraction F of
                          connections for DUR; MODE ``drop`` (default: cut) or ``stall`` (both ways
                          held, then released); repeatable
``seed=N``                seed of the proxy's random choices, for a repeatable run
========================  ==============================================================

DUR is a number with a unit (``us``, ``ms``, ``s``, ``m``); 0 needs none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import HarnessUsageError

DROP, STALL = "drop", "stall"
PARTITION_MODES = (DROP, STALL)

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s|m)?")
_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?(/s)?", re.IGNORECASE)
_SIZE_UNIT = {
    "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3,
}  # fmt: skip
_PARTITION = re.compile(r"([^@]+)@([^+]+)\+([^:]+)(?::(.*))?")


@dataclass(frozen=True, slots=True)
class Partition:
    """Cut off ``fraction`` of connections from ``start_s`` for ``duration_s`` seconds."""

    fraction: float
    start_s: float
    duration_s: float
    mode: str = DROP

    def describe(self) -> str:
        return (
            f"partition {self.fraction:.0%} at {_fmt_s(self.start_s)} "
            f"for {_fmt_s(self.duration_s)} ({self.mode})"
        )


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Every fault the proxy injects; the default injects none."""

    latency_up_s: float = 0.0
    latency_down_s: float = 0.0
    jitter_s: float = 0.0
    #: Bytes per second per connection and direction; None for no cap.
    bandwidth: int | None = None
    #: Probability per second that a connection is cut.
    drop: float = 0.0
    #: (shortest, longest) lifetime of a connection before it is cut.
    lifetime_s: tuple[float, float] | None = None
    partitions: tuple[Partition, ...] = ()
    seed: int | None = None
    #: The specs as given, for run.json.
    specs: tuple[str, ...] = field(default=(), compare=False)

    @property
    def active(self) -> bool:
        return self != FaultPlan(seed=self.seed)

    def describe(self) -> str:
        parts = []
        if self.latency_up_s or self.latency_down_s:
            if self.latency_up_s == self.latency_down_s:
                parts.append(f"latency {_fmt_s(self.latency_up_s)} each way")
            else:
                parts.append(
                    f"latency {_fmt_s(self.latency_up_s)} up, {_fmt_s(self.latency_down_s)} down"
                )
        if self.jitter_s:
            parts.append(f"jitter {_fmt_s(self.jitter_s)}")
        if self.bandwidth:
            parts.append(f"bandwidth {self.bandwidth} B/s per connection")
        if self.drop:
            parts.append(f"drop {self.drop:g}/s")
        if self.lifetime_s:
            low, high = self.lifetime_s
            span = _fmt_s(low) if low == high else f"{_fmt_s(low)}..{_fmt_s(high)}"
            parts.append(f"lifetime {span}")
        parts += [p.describe() for p in self.partitions]
        return ", ".join(parts) or "no faults"

    def to_json(self) -> dict[str, Any]:
        return {
            "specs": list(self.specs),
            "description": self.describe(),
            "latency_up_s": self.latency_up_s,
            "latency_down_s": self.latency_down_s,
            "jitter_s": self.jitter_s,
            "bandwidth_bytes_per_s": self.bandwidth,
            "drop_per_s": self.drop,
            "lifetime_s": list(self.lifetime_s) if self.lifetime_s else None,
            "partitions": [asdict(p) for p in self.partitions],
            "seed": self.seed,
        }


def parse_faults(specs: Iterable[str], option: str = "--fault") -> FaultPlan:
    """Parse ``--fault`` values into one plan; a HarnessUsageError names the bad item."""
    given: dict[str, Any] = {}
    partitions: list[Partition] = []
    kept: list[str] = []
    for spec in specs:
        kept.append(spec)
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            name, sep, value = item.partition("=")
            name, value = name.strip().lower(), value.strip()
            where = f"{option} {item!r}"
            if not sep or not value:
                raise HarnessUsageError(f"{where}: expected NAME=VALUE")
            if name not in _PARSERS:
                known = ", ".join(_PARSERS)
                raise HarnessUsageError(f"{where}: unknown fault {name!r}; known: {known}")
            parsed = _PARSERS[name](value, where)
            if name == "partition":
                partitions.append(parsed)
            elif name in given:
                raise HarnessUsageError(f"{where}: {name} is given twice")
            else:
                given[name] = parsed
    latency = given.get("latency", 0.0)
    return FaultPlan(
        latency_up_s=given.get("latency-up", latency),
        latency_down_s=given.get("latency-down", latency),
        jitter_s=given.get("jitter", 0.0),
        bandwidth=given.get("bandwidth"),
        drop=given.get("drop", 0.0),
        lifetime_s=given.get("lifetime"),
        partitions=tuple(sorted(partitions, key=lambda p: p.start_s)),
        seed=given.get("seed"),
        specs=tuple(kept),
    )


# --- values ------------------------------------------------------------------------------


def parse_duration(text: str, where: str) -> float:
    """Seconds in ``20ms``, ``1.5s``, ``2m``; a bare number must be 0."""
    match = _DURATION.fullmatch(text.strip())
    if not match or (match.group(2) is None and float(match.group(1)) != 0):
        raise HarnessUsageError(f"{where}: {text!r} is not a duration like 20ms, 1.5s or 2m")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def _duration(value: str, where: str) -> float:
    return parse_duration(value, where)


def _lifetime(value: str, where: str) -> tuple[float, float]:
    low_text, sep, high_text = value.partition("..")
    low = parse_duration(low_text, where)
    high = parse_duration(high_text, where) if sep else low
    if low <= 0 or high < low:
        raise HarnessUsageError(f"{where}: lifetime must be MIN..MAX with 0 < MIN <= MAX")
    return low, high


def _bandwidth(value: str, where: str) -> int:
    match = _SIZE.fullmatch(value)
    if not match:
        raise HarnessUsageError(f"{where}: {value!r} is not a rate like 64KiB, 1MB/s or 500B")
    rate = int(float(match.group(1)) * _SIZE_UNIT[(match.group(2) or "b").lower()])
    if rate < 1:
        raise HarnessUsageError(f"{where}: the bandwidth must be at least 1 byte/s")
    return rate


def _fraction(text: str, where: str, what: str) -> float:
    text = text.strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise HarnessUsageError(
            f"{where}: {what} {text!r} is not a number like 0.05 or 5%"
        ) from None
    if not math.isfinite(number) or not 0 <= number <= 1:
        raise HarnessUsageError(f"{where}: {what} must be between 0 and 1 (0% and 100%)")
    return number


def _drop(value: str, where: str) -> float:
    probability = _fraction(value, where, "the drop probability")
    if probability >= 1:
        raise HarnessUsageError(f"{where}: the drop probability per second must be below 1")
    return probability


def _partition(value: str, where: str) -> Partition:
    match = _PARTITION.fullmatch(value)
    if not match:
        raise HarnessUsageError(
            f"{where}: expected FRACTION@START+DURATION[:drop|:stall], e.g. 30%@5s+3s"
        )
    fraction = _fraction(match.group(1), where, "the partition's fraction")
    start = parse_duration(match.group(2), where)
    duration = parse_duration(match.group(3), where)
    mode = (match.group(4) or DROP).strip().lower()
    if mode not in PARTITION_MODES:
        raise HarnessUsageError(f"{where}: partition mode {mode!r} is not drop or stall")
    if duration <= 0:
        raise HarnessUsageError(f"{where}: the partition's duration must be positive")
    return Partition(fraction, start, duration, mode)


def _seed(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise HarnessUsageError(f"{where}: the seed must be an integer") from None


_PARSERS: dict[str, Any] = {
    "latency": _duration,
    "latency-up": _duration,
    "latency-down": _duration,
    "jitter": _duration,
    "bandwidth": _bandwidth,
    "drop": _drop,
    "lifetime": _lifetime,
    "partition": _partition,
    "seed": _seed,
}
#: Fault names, in the order ``store-harness proxy`` offers them as options.
FAULT_NAMES = tuple(_PARSERS)


def _fmt_s(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
