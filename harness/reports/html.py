"""``report.html``: one self-contained page (inline CSS and SVG) that works offline.

The only script is a self-check: it counts the charts that actually drew
something and records any script error on the page, so a headless browser test
can tell a legible page from a blank one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from harness.latency.histograms import METRICS, NOTIFICATIONS, OPERATIONS, STATS, format_us
from harness.reports import svg
from harness.reports.figures import COMPARED_STATS, consistency_result
from harness.reports.timeline.pages import VERDICT_HTML

TITLES = {
    "notify": "Notification latency (write to each observer)",
    "fanout": "Fan-out completion (write to its last observer)",
}

CSS = """
:root{--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--ok:#15803d;--bad:#b91c1c;--warn:#b45309}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:#f1f5f9}
main{max-width:1260px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 12px}
h3{font-size:14px;margin:4px 6px 8px;color:#334155}
.sub{color:var(--muted);margin:0 0 16px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:16px 20px;
box-shadow:0 1px 2px rgba(15,23,42,.05)}
.summary{display:grid;grid-template-columns:220px 1fr;gap:20px;align-items:center}
.verdict{font-size:28px;font-weight:700;text-transform:uppercase;letter-spacing:.04em}
.passed{color:var(--ok)}.failed,.breached{color:var(--bad)}.partial{color:var(--warn)}
.badge{display:inline-block;border-radius:999px;padding:2px 10px;font-size:13px;font-weight:600;
background:#fef3c7;color:var(--warn);margin-top:6px}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.stat{border-left:3px solid #93c5fd;padding:2px 10px}
.stat b{display:block;font-size:20px}.stat span{color:var(--muted);font-size:13px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
.grid .card{padding:10px}.chart{width:100%;height:auto;display:block}
.chart text{font-family:inherit}.tick{font-size:11px;fill:#475569}
.axis{font-size:12px;fill:#334155}.legend{font-size:12px;fill:#334155}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right}
th:first-child,td:first-child{text-align:left}th{color:var(--muted);font-weight:600}
.worse{color:var(--bad)}.better{color:var(--ok)}
ul.slo{list-style:none;padding:0;margin:0}ul.slo li{padding:4px 0}
footer{color:var(--muted);font-size:12px;margin-top:28px}
"""

SELF_CHECK = """
(function(){
  var root=document.documentElement, errors=[];
  window.addEventListener('error',function(e){errors.push(String(e.message));
    root.setAttribute('data-script-errors',errors.join(' | '));});
  function check(){
    var drawn=0;
    document.querySelectorAll('svg.chart:not(.empty)').forEach(function(chart){
      // Drawn means every series mark has an extent: a path whose data the
      // browser rejected has none.
      var marks=chart.querySelectorAll('.series'), ok=marks.length>0;
      for(var i=0;i<marks.length;i++){
        var b=marks[i].getBBox(); if(!(b.width>0||b.height>0)){ok=false;}
      }
      if(ok){drawn++;}else{chart.setAttribute('data-undrawn','1');}
    });
    root.setAttribute('data-charts-drawn',String(drawn));
    root.setAttribute('data-script-errors',errors.join(' | '));
  }
  if(document.readyState==='loading'){document.addEventListener('DOMContentLoaded',check);}
  else{check();}
})();
"""


def _stat(label: str, value: str) -> str:
    return f'<div class="stat"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _rate(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:,.0f} {unit}"


def _us(figures: dict[str, Any], metric: str, stat: str) -> str:
    value = figures.get(metric, {}).get(stat)
    return "n/a" if value is None else format_us(value)


def summary_card(data: dict[str, Any]) -> str:
    card, metrics = data["summary"], data["metrics"]
    verdict = data["verdict"]
    badge = (
        '<div class="badge">partial run: it did not end cleanly</div>' if data["partial"] else ""
    )
    duration = card["duration_s"]
    error_rate = card["error_rate"]
    stats = [
        _stat("participants", str(card["participants"] or "?")),
        _stat("duration", f"{duration:.1f} s"),
        _stat("requests/s", _rate(card["ops_per_s"], "")),
        _stat("notifications/s", _rate(card["notifications_per_s"], "")),
        _stat("notify p50", _us(metrics, "notify", "p50")),
        _stat("notify p99", _us(metrics, "notify", "p99")),
        _stat("notify p99.9", _us(metrics, "notify", "p99.9")),
        _stat("notify max", _us(metrics, "notify", "max")),
        _stat("fan-out p99", _us(metrics, "fanout", "p99")),
        _stat("errors", f"{card['errors']:,}" + ("" if not error_rate else f" ({error_rate:.2%})")),
    ]
    return (
        f'<section class="card summary"><div><div class="verdict {verdict}">{verdict}</div>'
        f'{badge}</div><div class="stats">{"".join(stats)}</div></section>'
    )


def _meta_line(data: dict[str, Any]) -> str:
    card, run = data["summary"], data["run"]
    started = run.get("started")
    when = (
        datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(started, int | float)
        else "unknown time"
    )
    parts = [
        f"{run.get('scenario') or 'run'} against {run.get('url') or 'unknown server'}",
        when,
        card["load_description"],
        f"notification latency timed on the {card['notification_clock']} clock",
        f"{card['processes']} process(es)",
    ]
    return " · ".join(escape(str(p)) for p in parts)


def _thresholds(data: dict[str, Any]) -> str:
    items = [
        f'<li class="{"passed" if t["passed"] else "breached"}">{"✔" if t["passed"] else "✘"} '
        f"{escape(line)}</li>"
        for t, line in zip(data["thresholds"], data["threshold_lines"], strict=True)
    ]
    for r in (data.get("comparison") or {}).get("regressions", []):
        limit = data["comparison"]["max_regression"]
        state = "passed" if r["passed"] else "breached"
        items.append(
            f'<li class="{state}">{"✔" if r["passed"] else "✘"} {escape(r["metric"])}.{r["stat"]} '
            f"changed {r['delta']:+.1%} against the baseline (limit +{limit:.0%})</li>"
        )
    consistency = data.get("consistency")
    if consistency:
        verdict = consistency_result(consistency) or "unknown"
        state = {"valid": "passed", "invalid": "breached"}.get(verdict, "partial")
        items.append(f'<li class="{state}">consistency check: {escape(verdict)}</li>')
    if not items:
        return ""
    return (
        f'<h2>Thresholds</h2><section class="card"><ul class="slo">{"".join(items)}</ul></section>'
    )


def _table(data: dict[str, Any]) -> str:
    head = "".join(f"<th>{s}</th>" for s in ("count", *STATS))
    rows = []
    for metric in METRICS:
        figures = data["metrics"].get(metric)
        if not figures:
            continue
        cells = [f"{int(figures['count']):,}"] + [_us(data["metrics"], metric, s) for s in STATS]
        rows.append(f"<tr><td>{metric}</td>{''.join(f'<td>{c}</td>' for c in cells)}</tr>")
    return _card_table(head, rows)


def _distributions(data: dict[str, Any]) -> str:
    baseline = data.get("baseline_distribution") or {}
    charts = []
    for metric in (*NOTIFICATIONS, *OPERATIONS):
        points = data["distribution"].get(metric)
        if not points:
            continue
        series = [svg.Series("this run" if baseline else metric, points, svg.PALETTE[0])]
        if baseline.get(metric):
            series.append(svg.Series("baseline", baseline[metric], svg.PALETTE[1], dashed=True))
        title = TITLES.get(metric, f"{metric} latency")
        chart = svg.percentile_chart(series, title=title)
        charts.append(f'<div class="card"><h3>{escape(title)}</h3>{chart}</div>')
    return f'<div class="grid">{"".join(charts)}</div>'


def _over_time(data: dict[str, Any]) -> str:
    timeline = data["timeline"]
    offsets = timeline["offsets"]
    charts = []
    notify = timeline["latency"].get("notify") or timeline["latency"].get("set")
    if notify:
        name = "notify" if "notify" in timeline["latency"] else "set"
        peak = max((v for row in notify.values() for v in row if v is not None), default=0)
        unit, scale = svg.latency_unit(peak)
        series = [
            svg.Series(f"{name} {stat}", list(zip(offsets, notify[stat], strict=True)), color, dash)
            for stat, color, dash in (
                ("p50", svg.PALETTE[0], False),
                ("p99", svg.PALETTE[1], False),
                ("max", "#64748b", True),
            )
        ]
        title = f"{name} latency over time"
        chart = svg.line_chart(
            series,
            title=title,
            x_label="seconds into the run",
            y_label=f"latency ({unit})",
            y_scale=scale,
            integer_x=True,
            stage_marks=timeline.get("stages", ()),
        )
        charts.append(f'<div class="card"><h3>{escape(title)}</h3>{chart}</div>')
    throughput = timeline["throughput"]
    series = [
        svg.Series(label, list(zip(offsets, throughput[metric], strict=True)), color)
        for metric, label, color in (
            ("notify", "notifications/s", svg.PALETTE[0]),
            ("set", "writes/s", svg.PALETTE[2]),
            ("get", "reads/s", svg.PALETTE[3]),
        )
        if metric in throughput
    ]
    chart = svg.line_chart(
        series,
        title="Throughput",
        x_label="seconds into the run",
        y_label="per second",
        integer_x=True,
        stage_marks=timeline.get("stages", ()),
    )
    charts.append(f'<div class="card"><h3>Throughput over time</h3>{chart}</div>')
    errors = svg.stacked_bars(
        offsets, timeline["errors"], title="Errors", y_label="errors per second"
    )
    charts.append(f'<div class="card"><h3>Errors by code over time</h3>{errors}</div>')
    return f'<div class="grid">{"".join(charts)}</div>'


def _comparison(data: dict[str, Any]) -> str:
    comparison = data.get("comparison")
    if not comparison:
        return ""
    head = "".join(f"<th>{s}</th>" for s in COMPARED_STATS)
    rows = []
    for metric, stats in comparison["metrics"].items():
        cells = []
        for stat in COMPARED_STATS:
            row = stats[stat]
            delta = row["delta"]
            kind = (
                "" if delta is None or abs(delta) < 0.02 else ("worse" if delta > 0 else "better")
            )
            shown = "n/a" if delta is None else f"{delta:+.1%}"
            tip = f"{format_us(row['baseline'])} → {format_us(row['current'])}"
            tip = escape(tip)
            cells.append(f'<td class="{kind}" title="{tip}">{shown}<br><small>{tip}</small></td>')
        rows.append(f"<tr><td>{metric}</td>{''.join(cells)}</tr>")
    return (
        f'<h2>Against the baseline</h2><p class="sub">baseline {escape(comparison["baseline"])}; '
        "positive deltas are slower. Charts above overlay the baseline dashed.</p>"
        + _card_table(head, rows)
    )


def _card_table(head: str, rows: list[str]) -> str:
    table = f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"
    return f'<section class="card">{table}</section>'


def _verdict_link(data: dict[str, Any], out_dir: Path | None) -> str:
    """A link to the run's verdict.html (its anomalies as timelines), when there is one."""
    page = Path(data["run_dir"]) / VERDICT_HTML
    if not page.is_file():
        return ""
    href = page.resolve().as_uri()
    if out_dir is not None:
        href = Path(os.path.relpath(page.resolve(), Path(out_dir).resolve())).as_posix()
    return (
        f'<p class="sub">The consistency verdict, each anomaly drawn on a timeline: '
        f'<a href="{escape(href)}">{VERDICT_HTML}</a></p>'
    )


def render(data: dict[str, Any], out_dir: Path | None = None) -> str:
    """The page; ``out_dir`` (where it is written) makes its link to verdict.html relative."""
    title = f"store-harness report: {data['run_dir']}"
    body = [
        f'<h1>Latency report</h1><p class="sub">{_meta_line(data)}</p>',
        summary_card(data),
        _verdict_link(data, out_dir),
        _thresholds(data),
        "<h2>Latency percentiles</h2>",
        _table(data),
        "<h2>Percentile distributions</h2>",
        _distributions(data),
        "<h2>Over time</h2>",
        _over_time(data),
        _comparison(data),
        f"<footer>store-harness {escape(data['version'])} · {escape(data['run_dir'])} · HDR "
        "histograms, 1 µs to 60 s at 3 significant digits</footer>",
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}'
        f"</title><style>{CSS}</style></head><body><main>{''.join(body)}</main>"
        f"<script>{SELF_CHECK}</script></body></html>"
    )
