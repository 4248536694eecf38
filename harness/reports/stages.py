"""The stages of a ``store-harness run`` in its report: scoped thresholds and chart marks.

run.json's ``plan`` holds the stages (seconds from ``origin``, the run's start as
Unix time); the latency files hold one histogram a wall-clock second. A threshold
scoped ``@stage`` is judged on the seconds of the stages in its scope (to the
second: the seconds a stage starts and ends in count), a rate threshold on
counts per second, and a threshold that stopped the run (run.json's
``aborted``) fails whatever the whole run measured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from harness.latency.histograms import METRICS, OPERATIONS, merge, summarize
from harness.latency.thresholds import Outcome, Threshold, evaluate

Span = tuple[float, float]


def _plan(info: dict[str, Any]) -> tuple[float | None, list[dict[str, Any]]]:
    plan = info.get("plan") or {}
    origin = plan.get("origin")
    stages = plan.get("stages") or []
    return (origin if isinstance(origin, int | float) else None), stages


def marks(run: Any, start: float) -> list[dict[str, Any]]:
    """Where each stage began, in seconds from ``start`` (the timeline's first second)."""
    origin, stages = _plan(run.info)
    if origin is None:
        return []
    ended = run.info.get("ended") or float("inf")
    return [
        {"name": s["name"], "offset": round(origin + s["start"] - start, 3)}
        for s in stages
        if origin + s["start"] < ended
    ]


def _spans(threshold: Threshold, info: dict[str, Any]) -> list[Span]:
    origin, stages = _plan(info)
    if origin is None:
        return []
    ended = info.get("ended") or float("inf")
    spans = []
    for s in stages:
        if threshold.covers(s["name"]):
            low, high = origin + s["start"], min(origin + s["end"], ended)
            if high > low:
                spans.append((low, high))
    return spans


def _inside(second: int, spans: Iterable[Span]) -> bool:
    """Whether the wall-clock second overlaps a span: histograms are whole seconds, so
    a stage's figures take in the seconds it starts and ends in."""
    return any(second < high and second + 1 > low for low, high in spans)


def _scoped(threshold: Threshold, run: Any) -> Outcome:
    spans = _spans(threshold, run.info)
    if not spans:
        return Outcome(threshold, None)
    latency = run.latency
    figures, rates = {}, {}
    first = int(min(low for low, _ in spans))
    last = int(max(high for _, high in spans))
    seconds = sum(1 for t in range(first, last + 1) if _inside(t, spans)) or 1
    for metric in METRICS:
        per_second = latency.intervals.get(metric, {})
        histogram = merge(i.histogram() for t, i in per_second.items() if _inside(t, spans))
        count = histogram.get_total_count()
        rates[metric] = count / seconds
        if count:
            figures[metric] = summarize(histogram)
    errors: Counter[str] = Counter()
    for t, codes in latency.errors.items():
        if _inside(t, spans):
            errors.update(codes)
    requests = sum(figures[m]["count"] for m in OPERATIONS if m in figures)
    failed = sum(errors.values())
    error_rate = failed / requests if requests else (1.0 if failed else None)
    return evaluate([threshold], figures, error_rate, rates)[0]


def judge(
    thresholds: Iterable[Threshold],
    run: Any,
    figures: dict[str, dict[str, float]],
    card: dict[str, Any],
) -> list[Outcome]:
    """Every threshold's outcome, in order: the whole run's, or its stages'."""
    duration = card.get("duration_s") or 0.0
    rates = {m: h.get_total_count() / duration for m, h in run.totals.items()} if duration else {}
    aborted = run.info.get("aborted") or {}
    outcomes = []
    for threshold in thresholds:
        if threshold.stage is None:
            outcome = evaluate([threshold], figures, card["error_rate"], rates)[0]
        else:
            outcome = _scoped(threshold, run)
        if threshold.abort_on_fail and aborted.get("threshold") == threshold.text:
            stopped = (
                f"{aborted.get('measured_text')} over {aborted.get('over')}, "
                f"{aborted.get('at_s', 0):.0f}s in"
            )
            outcome = replace(outcome, stopped_run=stopped)
        outcomes.append(outcome)
    return outcomes
