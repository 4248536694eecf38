"""Latency thresholds (SLOs) for CI: ``notify.p99<50ms``, ``errors<0.1%``.

Grammar: ``METRIC.STAT<VALUE`` or ``METRIC.STAT<=VALUE``, where METRIC is one of
``notify`` (a write to each observer), ``fanout`` (a write to its last
observer), ``join``, ``set``, ``get``, ``observe``, ``stopObserving``; STAT one
of ``p50``, ``p90``, ``p99``, ``p99.9``, ``max``, ``mean``; VALUE a number with
a unit ``us``, ``ms`` or ``s``. ``errors<RATE%`` bounds the share of requests
answered with an error code or not answered at all.

A TOML file lists the same expressions::

    thresholds = ["notify.p99<50ms", "fanout.p99.9<=200ms", "errors<0.1%"]

A threshold on a metric the run did not measure is breached ("no data"): a
CI gate must not pass because nothing was measured.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessUsageError
from harness.latency.histograms import METRICS, STATS, format_us

ERRORS = "errors"
UNITS_US = {"us": 1.0, "µs": 1.0, "ms": 1_000.0, "s": 1_000_000.0}

_EXPRESSION = re.compile(
    r"^\s*(?P<metric>[A-Za-z]+)(?:\.(?P<stat>[a-z0-9.]+?))?\s*(?P<op><=|<)\s*"
    r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>us|µs|ms|s|%)?\s*$"
)


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold; ``limit`` is in µs, or a fraction (0..1) for ``errors``."""

    metric: str
    stat: str
    inclusive: bool
    limit: float
    text: str

    def holds(self, measured: float) -> bool:
        return measured <= self.limit if self.inclusive else measured < self.limit

    def format(self, value: float) -> str:
        return f"{value * 100:.3g}%" if self.metric == ERRORS else format_us(value)


@dataclass(frozen=True, slots=True)
class Outcome:
    threshold: Threshold
    measured: float | None  # None: the run has no data for this metric

    @property
    def passed(self) -> bool:
        return self.measured is not None and self.threshold.holds(self.measured)

    def describe(self) -> str:
        t = self.threshold
        seen = "no data" if self.measured is None else t.format(self.measured)
        return f"{t.text}: {'passed' if self.passed else 'BREACHED'} (measured {seen})"

    def to_json(self) -> dict[str, object]:
        t = self.threshold
        return {
            "threshold": t.text,
            "metric": t.metric,
            "stat": t.stat,
            "limit": t.limit,
            "unit": "fraction" if t.metric == ERRORS else "us",
            "measured": self.measured,
            "passed": self.passed,
        }


def parse_threshold(text: str) -> Threshold:
    """Parse one expression; a HarnessUsageError names what is wrong with it."""
    match = _EXPRESSION.match(text)
    if match is None:
        raise HarnessUsageError(
            f"threshold {text!r} is not of the form METRIC.STAT<VALUE "
            "(e.g. 'notify.p99<50ms', 'errors<0.1%')"
        )
    metric, stat, unit = match["metric"], match["stat"], match["unit"]
    number = float(match["number"])
    if metric == ERRORS:
        if stat not in (None, "rate"):
            raise HarnessUsageError(f"threshold {text!r}: errors takes no statistic, only a rate")
        if unit != "%":
            raise HarnessUsageError(
                f"threshold {text!r}: an errors rate needs '%', e.g. errors<0.1%"
            )
        limit, stat = number / 100, "rate"
    else:
        if metric not in METRICS:
            raise HarnessUsageError(
                f"threshold {text!r}: unknown metric {metric!r}; "
                f"use one of {', '.join((*METRICS, ERRORS))}"
            )
        if stat not in STATS:
            raise HarnessUsageError(
                f"threshold {text!r}: unknown statistic {stat!r}; use one of {', '.join(STATS)}"
            )
        if unit is None or unit == "%":
            raise HarnessUsageError(f"threshold {text!r}: the value needs a unit: us, ms or s")
        limit = number * UNITS_US[unit]
    return Threshold(metric, stat, match["op"] == "<=", limit, text.strip())


def load_slo_file(path: str | Path) -> list[Threshold]:
    """The thresholds a TOML file lists under ``thresholds``."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessUsageError(f"cannot read SLO file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise HarnessUsageError(f"SLO file {path} is not valid TOML: {exc}") from None
    entries = data.get("thresholds")
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise HarnessUsageError(
            f'SLO file {path} needs a list of strings: thresholds = ["notify.p99<50ms"]'
        )
    return [parse_threshold(entry) for entry in entries]


def gather(expressions: Iterable[str] = (), files: Iterable[str | Path] = ()) -> list[Threshold]:
    """Every threshold from the command line's ``--slo`` and ``--slo-file`` options."""
    thresholds = [parse_threshold(text) for text in expressions]
    for path in files:
        thresholds.extend(load_slo_file(path))
    return thresholds


def evaluate(
    thresholds: Iterable[Threshold],
    figures: Mapping[str, Mapping[str, float]],
    error_rate: float | None,
) -> list[Outcome]:
    """Judge each threshold; ``figures`` is metric -> stat -> µs (as metrics.summarize)."""
    outcomes = []
    for threshold in thresholds:
        if threshold.metric == ERRORS:
            measured = error_rate
        else:
            measured = figures.get(threshold.metric, {}).get(threshold.stat)
        if measured is not None and math.isnan(measured):
            measured = None
        outcomes.append(Outcome(threshold, measured))
    return outcomes


def parse_regression(text: str) -> float:
    """``10%`` -> 0.10: the largest slow-down a comparison tolerates."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*", text)
    if match is None:
        raise HarnessUsageError(f"--max-regression {text!r} must be a percentage, e.g. 10%")
    return float(match[1]) / 100


def parse_percentiles(text: str) -> list[str]:
    """``p99,p99.9`` -> the statistics a regression is checked at."""
    stats = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [s for s in stats if s not in STATS]
    if not stats or unknown:
        raise HarnessUsageError(
            f"--at {text!r}: unknown statistic {', '.join(unknown) or '(none)'}; "
            f"use some of {', '.join(STATS)}"
        )
    return stats
