"""Latency thresholds (SLOs) for CI: ``notify.p99<50ms``, ``errors<0.1%``.

Grammar: ``METRIC.STAT<VALUE`` or ``METRIC.STAT<=VALUE``, where METRIC is one of
``notify`` (a write to each observer), ``fanout`` (a write to its last
observer), ``join``, ``set``, ``get``, ``observe``, ``stopObserving``; STAT one
of ``p50``, ``p90``, ``p99``, ``p99.9``, ``max``, ``mean``; VALUE a number with
a unit ``us``, ``ms`` or ``s``. ``errors<RATE%`` bounds the share of requests
answered with an error code or not answered at all.

A TOML file lists the same expressions::

    thresholds = ["notify.p99<50ms", "fanout.p99.9<=200ms", "errors<0.1%"]

``METRIC.rate>VALUE/s`` (or ``<``, ``<=``, ``>=``) bounds a throughput: notifications,
or requests of one kind, per second over the run. A trailing ``@STAGE`` scopes any
threshold to the seconds of a stage of ``store-harness run`` (``@bursts`` also
covers the stages a preset named ``bursts.quiet-1``, ``bursts.burst-1``...).

A TOML entry may be a table instead, for thresholds judged while the run goes::

    [[thresholds]]
    threshold = "notify.p99<50ms"
    abort_on_fail = true     # a breach stops the run (which still writes every report)
    delay = "10s"            # before the first evaluation (default 10s)
    window = "10s"           # the sliding window it is evaluated over (default 10s)
    stage = "storm"          # the same as @storm

A threshold on a metric the run did not measure is breached ("no data"): a
CI gate must not pass because nothing was measured.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import HarnessUsageError
from harness.latency.histograms import FANOUT, METRICS, STATS, format_us
from harness.plan.durations import parse_duration

ERRORS = "errors"
#: Throughput: a metric's count per second (``notify.rate>1000/s``).
RATE = "rate"
UNITS_US = {"us": 1.0, "µs": 1.0, "ms": 1_000.0, "s": 1_000_000.0}
#: The defaults of a table entry's ``delay`` and ``window``, in seconds.
DEFAULT_DELAY_S, DEFAULT_WINDOW_S = 10.0, 10.0
TABLE_KEYS = ("threshold", "abort_on_fail", "delay", "window", "stage")

_EXPRESSION = re.compile(
    r"^\s*(?P<metric>[A-Za-z]+)(?:\.(?P<stat>[a-z0-9.]+?))?\s*(?P<op><=|<|>=|>)\s*"
    r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>us|µs|ms|/s|s|%)?"
    r"\s*(?:@\s*(?P<stage>[A-Za-z0-9_.-]+))?\s*$"
)


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold; ``limit`` is in µs, or a fraction (0..1) for ``errors``."""

    metric: str
    stat: str
    inclusive: bool
    limit: float
    text: str
    #: True for ``>``/``>=``: a floor (throughput) rather than a ceiling.
    lower_bound: bool = False
    #: The stage of ``store-harness run`` it is judged over; None: the whole run.
    stage: str | None = None
    #: Judged while the run goes; a breach stops it.
    abort_on_fail: bool = False
    delay_s: float = DEFAULT_DELAY_S
    window_s: float = DEFAULT_WINDOW_S

    def holds(self, measured: float) -> bool:
        if self.lower_bound:
            return measured >= self.limit if self.inclusive else measured > self.limit
        return measured <= self.limit if self.inclusive else measured < self.limit

    def format(self, value: float) -> str:
        if self.metric == ERRORS:
            return f"{value * 100:.3g}%"
        return f"{value:,.4g}/s" if self.stat == RATE else format_us(value)

    def covers(self, stage_name: str) -> bool:
        """Whether a stage is in this threshold's scope (``@bursts`` covers ``bursts.burst-1``)."""
        return (
            self.stage is None
            or stage_name in (self.stage,)
            or stage_name.startswith(self.stage + ".")
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    threshold: Threshold
    measured: float | None  # None: the run has no data for this metric
    #: With abort_on_fail: how its breach stopped the run (run.json's "aborted"), if it did.
    stopped_run: str | None = None

    @property
    def passed(self) -> bool:
        if self.stopped_run is not None:
            return False
        return self.measured is not None and self.threshold.holds(self.measured)

    def describe(self) -> str:
        t = self.threshold
        seen = "no data" if self.measured is None else t.format(self.measured)
        stopped = f"; it stopped the run: {self.stopped_run}" if self.stopped_run else ""
        return f"{t.text}: {'passed' if self.passed else 'BREACHED'} (measured {seen}{stopped})"

    def to_json(self) -> dict[str, object]:
        t = self.threshold
        return {
            "threshold": t.text,
            "metric": t.metric,
            "stat": t.stat,
            "limit": t.limit,
            "unit": "fraction" if t.metric == ERRORS else ("per_s" if t.stat == RATE else "us"),
            "stage": t.stage,
            "abort_on_fail": t.abort_on_fail,
            "measured": self.measured,
            "passed": self.passed,
            "stopped_run": self.stopped_run,
        }


def parse_threshold(text: str) -> Threshold:
    """Parse one expression; a HarnessUsageError names what is wrong with it."""
    match = _EXPRESSION.match(text)
    if match is None:
        raise HarnessUsageError(
            f"threshold {text!r} is not of the form METRIC.STAT<VALUE "
            "(e.g. 'notify.p99<50ms', 'errors<0.1%', 'notify.rate>1000/s')"
        )
    metric, stat, unit, op = match["metric"], match["stat"], match["unit"], match["op"]
    number = float(match["number"])
    lower = op.startswith(">")
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
        if stat == RATE:
            if unit != "/s":
                raise HarnessUsageError(
                    f"threshold {text!r}: a rate is per second, e.g. {metric}.rate>1000/s"
                )
            limit = number
        else:
            if stat not in STATS:
                raise HarnessUsageError(
                    f"threshold {text!r}: unknown statistic {stat!r}; "
                    f"use one of {', '.join((*STATS, RATE))}"
                )
            if unit is None or unit in ("%", "/s"):
                raise HarnessUsageError(f"threshold {text!r}: the value needs a unit: us, ms or s")
            limit = number * UNITS_US[unit]
    if lower and not (stat == RATE and metric != ERRORS):
        raise HarnessUsageError(
            f"threshold {text!r} is not of the form METRIC.STAT<VALUE: latencies and "
            "errors are bounded from above (< or <=); only a rate takes > or >="
        )
    return Threshold(
        metric,
        stat,
        op in ("<=", ">="),
        limit,
        text.strip(),
        lower_bound=lower,
        stage=match["stage"],
    )


def threshold_from_entry(entry: object) -> Threshold:
    """One entry of a TOML ``thresholds`` list: an expression, or a table (see above)."""
    if isinstance(entry, str):
        return parse_threshold(entry)
    if not isinstance(entry, dict):
        raise HarnessUsageError(
            f"a threshold is an expression or a table, not {type(entry).__name__}"
        )
    unknown = [key for key in entry if key not in TABLE_KEYS]
    if unknown:
        raise HarnessUsageError(
            f"unknown key {unknown[0]!r} in a threshold; use {', '.join(TABLE_KEYS)}"
        )
    text = entry.get("threshold")
    if not isinstance(text, str):
        raise HarnessUsageError('a threshold table needs threshold = "METRIC.STAT<VALUE"')
    threshold = parse_threshold(text)
    abort = entry.get("abort_on_fail", False)
    if not isinstance(abort, bool):
        raise HarnessUsageError(f"abort_on_fail of {text!r} must be true or false")
    timing = {}
    for key, default in (("delay", DEFAULT_DELAY_S), ("window", DEFAULT_WINDOW_S)):
        seconds = parse_duration(entry.get(key, default))
        if seconds is None or (key == "window" and seconds <= 0):
            raise HarnessUsageError(
                f"{key} of {text!r} must be a duration like 10s, got {entry[key]!r}"
            )
        timing[key] = seconds
    stage = entry.get("stage", threshold.stage)
    if stage is not None and (not isinstance(stage, str) or not stage):
        raise HarnessUsageError(f"stage of {text!r} must be a stage's name")
    if stage is not None and threshold.stage not in (None, stage):
        raise HarnessUsageError(f"{text!r} names stage {threshold.stage!r}, its table {stage!r}")
    if abort and threshold.metric == FANOUT:
        raise HarnessUsageError(
            f"{text!r} cannot abort a run: locust's live stats have no fanout row "
            "(it is judged at the end from the histograms)"
        )
    return replace(
        threshold,
        text=threshold.text if stage is None or threshold.stage else f"{threshold.text}@{stage}",
        stage=stage,
        abort_on_fail=abort,
        delay_s=timing["delay"],
        window_s=timing["window"],
    )


def load_slo_file(path: str | Path) -> list[Threshold]:
    """The thresholds a TOML file lists under ``thresholds`` (a test file's too)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessUsageError(f"cannot read SLO file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise HarnessUsageError(f"SLO file {path} is not valid TOML: {exc}") from None
    entries = data.get("thresholds", [] if "stages" in data else None)
    if not isinstance(entries, list):
        raise HarnessUsageError(
            f'SLO file {path} needs a list of strings: thresholds = ["notify.p99<50ms"]'
        )
    out = []
    for entry in entries:
        try:
            out.append(threshold_from_entry(entry))
        except HarnessUsageError as exc:
            raise HarnessUsageError(f"SLO file {path}: {exc}") from None
    return out


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
    rates: Mapping[str, float] | None = None,
) -> list[Outcome]:
    """Judge each threshold; ``figures`` is metric -> stat -> µs (as metrics.summarize),
    ``rates`` metric -> count per second."""
    outcomes = []
    for threshold in thresholds:
        measured: float | None
        if threshold.metric == ERRORS:
            measured = error_rate
        elif threshold.stat == RATE:
            measured = (rates or {}).get(threshold.metric)
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
