"""The scaling report: the same scenario at several participant counts, on one page.

``render_sweep(run_dirs, out_dir)`` charts notification p50/p99 and throughput
against participants and writes ``sweep.html`` and ``sweep.json``. The
``store-harness sweep`` command (with the swarm) runs the counts and calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.errors import HarnessUsageError
from harness.latency.histograms import NOTIFY, format_us, stat_us
from harness.reports import svg
from harness.reports.figures import load_run, summary
from harness.run.directory import write_json, write_text


def sweep_points(run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One row per run, ordered by participants."""
    rows = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        participants = run.info.get("participants")
        if not isinstance(participants, int):
            raise HarnessUsageError(f"{run_dir}: run.json does not say how many participants ran")
        card = summary(run)
        notify = run.totals.get(NOTIFY)
        has = notify is not None and notify.get_total_count() > 0
        rows.append(
            {
                "run_dir": str(run_dir),
                "participants": participants,
                "partial": run.partial,
                "notify_p50": stat_us(notify, "p50") if has else None,
                "notify_p99": stat_us(notify, "p99") if has else None,
                "ops_per_s": card["ops_per_s"],
                "notifications_per_s": card["notifications_per_s"],
            }
        )
    return sorted(rows, key=lambda row: row["participants"])


def render_sweep(run_dirs: Sequence[str | Path], out_dir: str | Path = "reports") -> Path:
    """Write ``sweep.html`` and ``sweep.json`` for ``run_dirs``; returns the HTML path."""
    if not run_dirs:
        raise HarnessUsageError("a sweep report needs at least one run directory")
    rows = sweep_points(run_dirs)
    xs = [float(row["participants"]) for row in rows]
    peak = max((row["notify_p99"] or 0 for row in rows), default=0)
    unit, scale = svg.latency_unit(peak)
    latency = svg.line_chart(
        [
            svg.Series(
                "notify p50",
                list(zip(xs, (r["notify_p50"] for r in rows), strict=True)),
                svg.PALETTE[0],
            ),
            svg.Series(
                "notify p99",
                list(zip(xs, (r["notify_p99"] for r in rows), strict=True)),
                svg.PALETTE[1],
            ),
        ],
        title="Notification latency vs participants",
        x_label="participants",
        y_label=f"latency ({unit})",
        y_scale=scale,
        markers=True,
    )
    throughput = svg.line_chart(
        [
            svg.Series(
                "notifications/s",
                list(zip(xs, (r["notifications_per_s"] for r in rows), strict=True)),
                svg.PALETTE[0],
            ),
            svg.Series(
                "requests/s",
                list(zip(xs, (r["ops_per_s"] for r in rows), strict=True)),
                svg.PALETTE[2],
            ),
        ],
        title="Throughput vs participants",
        x_label="participants",
        y_label="per second",
        markers=True,
    )
    table = "".join(
        f"<tr><td>{r['participants']:,}{' (partial)' if r['partial'] else ''}</td>"
        f"<td>{_us(r['notify_p50'])}</td><td>{_us(r['notify_p99'])}</td>"
        f"<td>{_rate(r['notifications_per_s'])}</td><td>{_rate(r['ops_per_s'])}</td>"
        f"<td>{escape(r['run_dir'])}</td></tr>"
        for r in rows
    )
    from harness.reports.html import CSS, SELF_CHECK

    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>store-harness sweep'
        f"</title><style>{CSS}</style></head><body><main><h1>Scaling report</h1>"
        f'<p class="sub">{len(rows)} runs of the same scenario at different participant counts</p>'
        f'<div class="grid"><div class="card"><h3>Notification latency</h3>{latency}</div>'
        f'<div class="card"><h3>Throughput</h3>{throughput}</div></div>'
        '<h2>Runs</h2><section class="card"><table><tr><th>participants</th><th>notify p50</th>'
        "<th>notify p99</th><th>notifications/s</th><th>requests/s</th><th>run</th></tr>"
        f"{table}</table></section></main><script>{SELF_CHECK}</script></body></html>"
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", rows)
    path = out / "sweep.html"
    write_text(path, page)
    return path


def _us(value: float | None) -> str:
    return "n/a" if value is None else format_us(value)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"
