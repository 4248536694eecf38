"""What ``store-harness run --dry-run`` prints: the resolved plan, and nothing runs."""

from __future__ import annotations

from collections.abc import Sequence

from harness.latency.thresholds import Threshold
from harness.plan.durations import format_duration
from harness.plan.loader import Distribution
from harness.plan.stages import StagePlan


def render(
    plan: StagePlan,
    *,
    title: str,
    target: str,
    thresholds: Sequence[Threshold],
    processes: int,
    distribution: Distribution | None,
) -> str:
    model = "open model, writes/s per writing participant" if plan.open_model else "closed loop"
    lines = [
        f"{title}: {len(plan.stages)} stage(s), {format_duration(plan.duration)}, "
        f"up to {plan.peak_participants} participants",
        f"target {target}; {model}",
        "",
        f"  {'stage':<24} {'start':>7} {'end':>7}  {'participants':<14} {'spawn/s':>8}  writes/s",
    ]
    for s in plan.stages:
        people = (
            f"{s.participants}"
            if s.participants == s.participants_from
            else f"{s.participants_from} -> {s.participants}"
        )
        writes = (
            f"{s.write_to:g}"
            if s.write_from == s.write_to
            else f"{s.write_from:g} -> {s.write_to:g}"
        )
        spawn = f"{s.spawn_rate:.3g}" if s.participants != s.participants_from else "-"
        lines.append(
            f"  {s.name:<24} {format_duration(s.start):>7} {format_duration(s.end):>7}  "
            f"{people:<14} {spawn:>8}  {writes}"
        )
    lines.append("")
    if thresholds:
        lines.append("thresholds:")
        for t in thresholds:
            if t.abort_on_fail:
                how = (
                    f"abort on fail: from {format_duration(t.delay_s)}, over "
                    f"{format_duration(t.window_s)} windows and the run so far"
                )
            else:
                how = "judged at the end"
            lines.append(f"  {t.text:<32} {how}")
    else:
        lines.append("thresholds: none")
    if distribution is not None:
        lines.append(
            f"distribution: master at {distribution.host}:{distribution.port}, waiting up to "
            f"{format_duration(distribution.wait_s)} for {distribution.workers} worker "
            f"machine(s) of {processes} process(es) each"
        )
    else:
        lines.append(f"processes: {processes} on this machine")
    return "\n".join(lines)
