"""``report.md``: a short summary for a CI job summary or a pull-request comment."""

from __future__ import annotations

from typing import Any

from harness.latency.histograms import METRICS, STATS, format_us
from harness.reports.figures import COMPARED_STATS, consistency_result


def _us(value: float | None) -> str:
    return "n/a" if value is None else format_us(value)


def render(data: dict[str, Any]) -> str:
    card = data["summary"]
    verdict = data["verdict"].upper() + (" (partial run)" if data["partial"] else "")
    lines = [
        f"## store-harness latency report: {verdict}",
        "",
        f"- run: `{data['run_dir']}` against {data['run'].get('url') or 'unknown server'}",
        f"- load: {card['load_description']}; {card['participants'] or '?'} participants, "
        f"{card['duration_s']:.1f} s",
        f"- throughput: {_per_s(card['ops_per_s'])} requests/s, "
        f"{_per_s(card['notifications_per_s'])} notifications/s",
        f"- errors: {card['errors']}"
        + ("" if card["error_rate"] is None else f" ({card['error_rate']:.3%} of requests)"),
        f"- notification latency clock: {card['notification_clock']}",
    ]
    if data["partial"]:
        lines.append("- **partial run**: it did not end cleanly; figures cover what was recorded")
    lines += ["", "| metric | count | " + " | ".join(STATS) + " |", "|---" * (len(STATS) + 2) + "|"]
    for metric in METRICS:
        figures = data["metrics"].get(metric)
        if figures:
            cells = [f"{int(figures['count']):,}"] + [_us(figures.get(s)) for s in STATS]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    checks = [
        f"- {'✅' if t['passed'] else '❌'} {line}"
        for t, line in zip(data["thresholds"], data["threshold_lines"], strict=True)
    ]
    comparison = data.get("comparison")
    if comparison:
        for r in comparison["regressions"]:
            mark = "✅" if r["passed"] else "❌"
            checks.append(
                f"- {mark} {r['metric']}.{r['stat']} {r['delta']:+.1%} against the baseline "
                f"(limit +{comparison['max_regression']:.0%})"
            )
    if data.get("consistency"):
        checks.append(f"- consistency check: {consistency_result(data['consistency'])}")
    if checks:
        lines += ["", "### Thresholds", "", *checks]
    if comparison:
        lines += [
            "",
            f"### Against the baseline `{comparison['baseline']}` (positive is slower)",
            "",
            "| metric | " + " | ".join(COMPARED_STATS) + " |",
            "|---" * (len(COMPARED_STATS) + 1) + "|",
        ]
        for metric, stats in comparison["metrics"].items():
            cells = []
            for stat in COMPARED_STATS:
                delta = stats[stat]["delta"]
                cells.append("n/a" if delta is None else f"{delta:+.1%}")
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _per_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"
