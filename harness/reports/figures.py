"""A run directory read into figures: the one data structure every report format renders.

``report.json`` is :func:`build_figures`'s result as is; the HTML and Markdown
pages only lay it out, so the three formats can never disagree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

from harness import __version__
from harness.checker.verdict import Result
from harness.errors import HarnessUsageError
from harness.latency.histograms import (
    METRICS,
    NOTIFICATIONS,
    NOTIFY,
    OPERATIONS,
    percentile_curve,
    stat_us,
    stats_us,
    summarize,
)
from harness.latency.log import LatencyData, read_latency
from harness.latency.thresholds import Outcome, Threshold
from harness.reports import stages

#: The statistics a comparison lists deltas for.
COMPARED_STATS = ("p50", "p90", "p99", "p99.9", "max")


@dataclass
class Run:
    """One run directory, read."""

    path: Path
    info: dict[str, Any]
    latency: LatencyData
    consistency: dict[str, Any] | None
    totals: dict[str, HdrHistogram]

    @property
    def partial(self) -> bool:
        return not self.info.get("complete", False) or bool(self.latency.unfinished)

    @property
    def label(self) -> str:
        return self.path.name or str(self.path)


def load_run(path: str | Path) -> Run:
    """Read ``RUN_DIR``; a HarnessUsageError says what is missing or unreadable."""
    path = Path(path)
    if not path.is_dir():
        raise HarnessUsageError(f"run directory {path} does not exist")
    info: dict[str, Any] = {}
    run_json = path / "run.json"
    if run_json.exists():
        try:
            info = orjson.loads(run_json.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise HarnessUsageError(f"{run_json} is not valid JSON: {exc}") from None
    latency = read_latency(path / "latency")
    if not info and not latency.intervals:
        raise HarnessUsageError(
            f"{path} is not a run directory: no run.json and no latency/*.jsonl"
        )
    consistency = None
    verdict = path / "verdict.json"
    if verdict.exists():
        try:
            consistency = orjson.loads(verdict.read_bytes())
        except orjson.JSONDecodeError:
            consistency = {"result": "unknown", "error": "verdict.json is not valid JSON"}
    totals = {m: latency.total(m) for m in METRICS if m in latency.intervals}
    return Run(path, info, latency, consistency, totals)


def consistency_result(verdict: dict[str, Any] | None) -> Result | None:
    """``valid``, ``invalid`` or ``unknown`` from a verdict.json (harness.checker.Verdict)."""
    if verdict is None:
        return None
    found = verdict.get("result") or verdict.get("verdict")
    return Result(found) if found in tuple(Result) else Result.UNKNOWN


def _duration_s(run: Run) -> float:
    started, ended = run.info.get("started"), run.info.get("ended")
    if isinstance(started, int | float) and isinstance(ended, int | float) and ended > started:
        return float(ended - started)
    seconds = run.latency.seconds
    return float(len(seconds)) if seconds else 0.0


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def summary(run: Run) -> dict[str, Any]:
    duration = _duration_s(run)
    requests = sum(run.totals[m].get_total_count() for m in OPERATIONS if m in run.totals)
    notifications = run.totals[NOTIFY].get_total_count() if NOTIFY in run.totals else 0
    errors = sum(run.latency.error_totals().values())
    load = run.info.get("load") or {}
    return {
        "participants": run.info.get("participants"),
        "scenario": run.info.get("scenario"),
        "load_model": load.get("model"),
        "load_rate": load.get("rate"),
        "load_rate_per": load.get("rate_per"),
        "load_description": run.info.get("load_description") or load.get("model") or "unknown",
        "duration_s": duration,
        "requests": requests,
        "ops_per_s": requests / duration if duration else None,
        "notifications": notifications,
        "notifications_per_s": notifications / duration if duration else None,
        "errors": errors,
        "error_rate": errors / requests if requests else (None if not errors else 1.0),
        "notification_clock": run.info.get("notification_clock") or run.latency.clock,
        "processes": len(run.latency.processes),
    }


def timeline(run: Run) -> dict[str, Any]:
    """Per-second figures; a second with nothing recorded is a zero, not a gap."""
    seconds = run.latency.seconds
    latency: dict[str, dict[str, list[float | None]]] = {}
    throughput: dict[str, list[int]] = {}
    for metric, per_second in run.latency.intervals.items():
        rows: dict[str, list[float | None]] = {"p50": [], "p99": [], "max": []}
        counts: list[int] = []
        for second in seconds:
            interval = per_second.get(second)
            histogram = interval.histogram() if interval is not None else None
            count = histogram.get_total_count() if histogram is not None else 0
            counts.append(count)
            found = stats_us(histogram, rows) if histogram is not None and count else {}
            for stat, values in rows.items():
                values.append(found.get(stat))
        latency[metric] = rows
        throughput[metric] = counts
    codes = sorted(run.latency.error_totals())
    errors = {code: [run.latency.errors.get(s, {}).get(code, 0) for s in seconds] for code in codes}
    start = seconds[0] if seconds else 0
    return {
        "start": start,
        "offsets": [s - start for s in seconds],
        "latency": latency,
        "throughput": throughput,
        "errors": errors,
        # Where each stage of a `store-harness run` began (the charts mark them).
        "stages": stages.marks(run, start),
    }


def compare(current: Run, baseline: Run, max_regression: float | None, at: list[str]) -> dict:
    metrics: dict[str, dict[str, dict[str, float | None]]] = {}
    regressions: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for metric in METRICS:
        if metric not in current.totals or metric not in baseline.totals:
            continue
        rows: dict[str, dict[str, float | None]] = {}
        for stat in COMPARED_STATS:
            now, before = (
                stat_us(current.totals[metric], stat),
                stat_us(baseline.totals[metric], stat),
            )
            delta = (now - before) / before if before else None
            rows[stat] = {"baseline": before, "current": now, "delta": delta}
            enough = min(
                current.totals[metric].get_total_count(), baseline.totals[metric].get_total_count()
            ) >= _samples_needed(stat)
            if max_regression is not None and stat in at and delta is not None and not enough:
                skipped.append({"metric": metric, "stat": stat, "reason": "too few samples"})
            elif max_regression is not None and stat in at and delta is not None:
                regressions.append(
                    {
                        "metric": metric,
                        "stat": stat,
                        "delta": delta,
                        "passed": delta <= max_regression,
                    }
                )
        metrics[metric] = rows
    return {
        "baseline": str(baseline.path),
        "baseline_summary": summary(baseline),
        "metrics": metrics,
        "max_regression": max_regression,
        "at": at,
        "regressions": regressions,
        "regressions_skipped": skipped,
    }


def _samples_needed(stat: str) -> int:
    """Samples a percentile needs to differ from the max: 100 for p99, 1000 for p99.9."""
    if not stat.startswith("p"):
        return 1
    return math.ceil(1 / (1 - float(stat[1:]) / 100) - 1e-9)


def build_figures(
    run: Run,
    thresholds: list[Threshold] = (),  # type: ignore[assignment]
    baseline: Run | None = None,
    max_regression: float | None = None,
    at: list[str] = ("p99",),  # type: ignore[assignment]
) -> dict[str, Any]:
    """Everything a report shows, as plain JSON-ready data (latencies in µs)."""
    figures = {m: summarize(h) for m, h in run.totals.items()}
    card = summary(run)
    # Whole-run thresholds, those scoped to a stage, and the one that stopped the run.
    outcomes: list[Outcome] = stages.judge(thresholds, run, figures, card)
    comparison = compare(run, baseline, max_regression, list(at)) if baseline else None
    breached = [o for o in outcomes if not o.passed]
    regressed = [r for r in (comparison or {}).get("regressions", []) if not r["passed"]]
    inconsistent = consistency_result(run.consistency) is Result.INVALID
    verdict = "failed" if breached or regressed or inconsistent else "passed"
    return {
        "tool": "store-harness",
        "version": __version__,
        "generated": time.time(),
        "run_dir": str(run.path),
        "run": run.info,
        "partial": run.partial,
        "unfinished_files": run.latency.unfinished,
        "skipped_lines": run.latency.skipped_lines,
        "verdict": verdict,
        "summary": card,
        "metrics": {m: {k: _finite(v) for k, v in f.items()} for m, f in figures.items()},
        "distribution": {m: percentile_curve(h) for m, h in run.totals.items()},
        "baseline_distribution": (
            {m: percentile_curve(h) for m, h in baseline.totals.items()} if baseline else None
        ),
        "timeline": timeline(run),
        "errors": dict(run.latency.error_totals()),
        "consistency": run.consistency,
        "thresholds": [o.to_json() for o in outcomes],
        "threshold_lines": [o.describe() for o in outcomes],
        "comparison": comparison,
    }


__all__ = ["COMPARED_STATS", "NOTIFICATIONS", "Run", "build_figures", "load_run", "summary"]
