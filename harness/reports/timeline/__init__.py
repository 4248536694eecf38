"""Timelines: what a history (or a conformance transcript) shows, drawn on lanes per connection.

    html = verdict_page(history, check(history), source="runs/demo")   # verdict.html
    html = explain_page(history, "BLOCK_CHAT", start_s=2, end_s=3, source="runs/demo")
    fragment = transcript_timeline(case.transcript, "case-R4.5")       # in conformance.html

One lane per connection; each request a bar from invoke to reply coloured by
outcome (ok, error, unknown), each update a tick on its observer's lane, the
counterexample's events outlined (class ``cx``), the write order as arrows.
Pages are self-contained: inline SVG, styles and a little script for zoom, pan
and hover, nothing fetched. Each page draws at most
:data:`~harness.reports.timeline.pages.MAX_PAGE_EVENTS` events.
"""

from harness.reports.timeline.pages import (
    MAX_PAGE_EVENTS,
    VERDICT_HTML,
    beside_verdict,
    explain_page,
    verdict_page,
    write_verdict_page,
)
from harness.reports.timeline.transcript import transcript_timeline

__all__ = [
    "MAX_PAGE_EVENTS",
    "VERDICT_HTML",
    "beside_verdict",
    "explain_page",
    "transcript_timeline",
    "verdict_page",
    "write_verdict_page",
]
