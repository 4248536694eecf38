"""The self-contained HTML report of one server, and the matrix page of several.

Everything is inline (styles, a few lines of script): the page works offline,
attached to a CI run. Each case is a ``<details>`` element with the id
``case-<case id>``, so the matrix and the spec's requirement numbers can link
straight to a transcript.
"""

from __future__ import annotations

import re
from html import escape

import orjson

from harness import __version__
from harness.conformance.case import CaseResult, Grade, SuiteResult
from harness.conformance.reports.text import verdict
from harness.conformance.requirements import REQUIREMENTS, SECTIONS
from harness.reports.timeline.transcript import SCRIPT as TIMELINE_SCRIPT
from harness.reports.timeline.transcript import STYLE as TIMELINE_STYLE
from harness.reports.timeline.transcript import transcript_timeline

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:80em;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}h3{font-size:1.05em;margin:1.2em 0 .3em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
.g{display:inline-block;min-width:7em;text-align:center;border-radius:3px;padding:0 .3em;
font-size:.85em;font-weight:600}
.passed{background:#cfc}.failed{background:#f99}.non-strict{background:#fd8}
.informational{background:#cdf}.skipped{background:#ddd}.error{background:#c9f}
details{border:1px solid #ddd;border-radius:4px;margin:.2em 0;padding:.1em .5em}
details[open]{background:#fafafa}summary{cursor:pointer}
pre{white-space:pre-wrap;word-break:break-all;margin:.3em 0;font-size:12px}
.transcript{table-layout:fixed;width:100%}.transcript td{font:12px monospace;vertical-align:top}
.transcript td:nth-child(1){width:6em}.transcript td:nth-child(2){width:9em}
.transcript td:nth-child(3){width:7em}.transcript td:nth-child(4){white-space:pre-wrap;
overflow-wrap:anywhere}.transcript .note{color:#666}td pre{max-width:70em}
.dir-sent{color:#05a}.dir-received{color:#080}.verdict{font-size:1.3em;padding:.2em .6em}
.matrix td.cell{text-align:center}.matrix a{color:inherit;text-decoration:none;display:block}
.toolbar button{margin-right:.5em}
"""

SCRIPT = """
function setOpen(selector, open) {
  document.querySelectorAll(selector).forEach(function (d) { d.open = open; });
}
function showOnlyProblems(only) {
  document.querySelectorAll('details.case').forEach(function (d) {
    var fine = d.classList.contains('passed') || d.classList.contains('informational');
    d.style.display = only && fine ? 'none' : '';
  });
}
function openFromHash() {
  if (!location.hash) { return; }
  var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target && target.tagName === 'DETAILS') { target.open = true; target.scrollIntoView(); }
}
window.addEventListener('hashchange', openFromHash);
document.addEventListener('DOMContentLoaded', openFromHash);
"""


def _badge(grade: Grade | str) -> str:
    return f'<span class="g {escape(str(grade))}">{escape(str(grade))}</span>'


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width'><title>{escape(title)}</title>"
        f"<style>{STYLE}{TIMELINE_STYLE}</style><script>{SCRIPT}</script></head><body>{body}"
        f"<p><small>store-harness {escape(__version__)}</small></p>"
        f"<script>{TIMELINE_SCRIPT}</script></body></html>\n"
    )


def _transcript(case: CaseResult) -> str:
    if not case.transcript:
        return "<p><em>No frames were exchanged.</em></p>"
    rows = []
    for line in case.transcript:
        arrow = {"sent": "→", "received": "←"}.get(line.direction, "·")
        rows.append(
            f"<tr class='{'note' if line.direction == 'note' else ''}'>"
            f"<td>{line.at_ms:.1f} ms</td><td>{escape(line.connection)}</td>"
            f"<td class='dir-{escape(line.direction)}'>{arrow} {escape(line.direction)}</td>"
            f"<td>{escape(line.text)}</td></tr>"
        )
    more = (
        f"<p><em>{case.omitted_frames} further frames not shown.</em></p>"
        if case.omitted_frames
        else ""
    )
    return f"<table class=transcript>{''.join(rows)}</table>{more}"


def _case(case: CaseResult) -> str:
    problem = case.grade in (Grade.FAILED, Grade.ERROR, Grade.NON_STRICT)
    parts = [
        f"<details class='case {escape(str(case.grade))}' id='case-{escape(case.case_id)}'"
        f"{' open' if problem else ''}><summary>{_badge(case.grade)} "
        f"<code>{escape(case.case_id)}</code> {escape(case.title)} "
        f"<small>({case.duration_s * 1000:.0f} ms)</small></summary>"
    ]
    if case.detail:
        parts.append(f"<pre>{escape(case.detail)}</pre>")
    if case.expected or case.got:
        parts.append(
            f"<table><tr><th>expected</th><td><pre>{escape(case.expected)}</pre></td></tr>"
            f"<tr><th>got</th><td><pre>{escape(case.got)}</pre></td></tr></table>"
        )
    if case.measurements:
        parts.append(f"<pre>{escape(orjson.dumps(case.measurements).decode())}</pre>")
    if problem and case.transcript:
        # The frames on lanes per connection, drawn as verdict.html draws histories.
        ident = "tl-" + re.sub(r"[^A-Za-z0-9_-]", "-", case.case_id)
        parts.append(transcript_timeline(case.transcript, ident, case.got))
    parts.append(_transcript(case))
    parts.append("</details>")
    return "".join(parts)


def _section_summary(result: SuiteResult) -> str:
    header = "".join(f"<th>{_badge(g)}</th>" for g in Grade)
    rows = []
    for number, title in SECTIONS.items():
        cases = [r for r in result.results if r.requirement[1:].split(".")[0] == number]
        cells = "".join(f"<td>{sum(1 for r in cases if r.grade == g) or ''}</td>" for g in Grade)
        rows.append(
            f"<tr><td><a href='#section-{number}'>{number}. {escape(title)}</a></td>{cells}</tr>"
        )
    total = "".join(f"<td><b>{result.count(g)}</b></td>" for g in Grade)
    rows.append(f"<tr><td><b>all</b></td>{total}</tr>")
    return f"<table><tr><th>spec section</th>{header}</tr>{''.join(rows)}</table>"


def render_html(result: SuiteResult) -> str:
    outcome = verdict(result)
    css = {"PASSED": "passed", "FAILED": "failed"}.get(outcome, "error")
    body = [
        f"<h1>Store protocol conformance of <code>{escape(result.url)}</code></h1>",
        f"<p><span class='verdict g {css}'>{escape(outcome)}</span> "
        f"{len(result.results)} cases, started {escape(result.started)}, "
        f"took {result.duration_s:.1f} s. Advertised limits: "
        f"<code>{escape(orjson.dumps(result.limits).decode())}</code></p>",
    ]
    if result.not_promised:
        promised = "; ".join(result.not_promised)
        body.append(f"<p>Not promised by this store, so not judged: {escape(promised)}</p>")
    if result.cannot_run:
        body.append(f"<p><b>The suite could not run:</b> {escape(result.cannot_run)}</p>")
    body += ["<h2>Summary by spec section</h2>", _section_summary(result)]
    body.append(
        "<p class=toolbar><button onclick=\"setOpen('details.case', true)\">expand all</button>"
        "<button onclick=\"setOpen('details.case', false)\">collapse all</button>"
        "<label><input type=checkbox onchange='showOnlyProblems(this.checked)'> "
        "only problems</label></p>"
    )
    for number, title in SECTIONS.items():
        body.append(f"<h2 id='section-{number}'>{number}. {escape(title)}</h2>")
        for requirement in REQUIREMENTS.values():
            if requirement.section != number:
                continue
            cases = [r for r in result.results if r.requirement == requirement.id]
            body.append(
                f"<h3 id='req-{requirement.id}'>{requirement.id} <small>({requirement.level})"
                f"</small> {escape(requirement.summary)}</h3>"
            )
            body += [_case(c) for c in cases] or ["<p><em>No case ran.</em></p>"]
    return _page(f"Conformance: {result.url}", "".join(body))


def render_matrix(results: list[tuple[str, SuiteResult]]) -> str:
    """Servers as columns, cases as rows; each cell links to that server's transcript."""
    header = "".join(
        f"<th><a href='{escape(folder)}/conformance.html'>{escape(r.url)}</a><br>"
        f"{_badge(verdict(r).lower() if not r.cannot_run else 'error')}</th>"
        for folder, r in results
    )
    counts = "".join(
        "<td>" + " ".join(f"{r.count(g)} {g}" for g in Grade if r.count(g)) + "</td>"
        for _, r in results
    )
    by_server = [{c.case_id: c for c in r.results} for _, r in results]
    case_ids: list[str] = []
    for _, r in results:
        case_ids += [c.case_id for c in r.results if c.case_id not in case_ids]
    rows = []
    for case_id in case_ids:
        cells = []
        for (folder, _), cases in zip(results, by_server, strict=True):
            case = cases.get(case_id)
            if case is None:
                cells.append("<td class=cell>—</td>")
                continue
            link = f"{escape(folder)}/conformance.html#case-{escape(case_id)}"
            cells.append(
                f"<td class='cell {escape(str(case.grade))}' title='{escape(case.detail[:300])}'>"
                f"<a href='{link}'>{escape(str(case.grade))}</a></td>"
            )
        rows.append(f"<tr><td><code>{escape(case_id)}</code></td>{''.join(cells)}</tr>")
    body = (
        f"<h1>Store protocol conformance: {len(results)} servers side by side</h1>"
        f"<table class=matrix><tr><th>case</th>{header}</tr>"
        f"<tr><td>summary</td>{counts}</tr>{''.join(rows)}</table>"
    )
    return _page("Conformance matrix", body)
