"""verdict.html and the explorer's page: timelines with captions, one self-contained file.

Nothing is fetched: styles, script and drawings are inline, and the page says
so to the browser (a Content-Security-Policy of ``default-src 'none'``).
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from harness import __version__
from harness.checker.operations import INF
from harness.checker.verdict import KINDS, Anomaly, Verdict
from harness.errors import HarnessUsageError
from harness.history.reader import History, paused_gc
from harness.reports.timeline import draw
from harness.reports.timeline.select import HistoryView, KeyName, Selection, build
from harness.run.directory import write_text

#: Written next to verdict.json and verdict.txt.
VERDICT_HTML = "verdict.html"

#: Events drawn on one page at most (each timeline gets its share), so a page stays
#: around a megabyte whatever the run: about 400 bytes an event, raw text included.
MAX_PAGE_EVENTS = 3000
#: Around a counterexample, at least this much time either side (or half its span).
MARGIN_NS = 250_000_000

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
PAGE_CSS = """
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#0f172a;
background:#f1f5f9}main{max-width:1260px;margin:0 auto;padding:20px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 6px}h2 small{color:#64748b;
font-weight:500;font-size:13px}.sub{color:#64748b;margin:0 0 14px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:14px 18px;margin:0 0 18px}
.impossible{font-size:15px;margin:4px 0}p{overflow-wrap:anywhere}
.muted{color:#64748b;font-size:13px}
.valid{color:#15803d}.invalid{color:#b91c1c}.unknown{color:#b45309}
pre.events{font:12px/1.4 ui-monospace,monospace;white-space:pre-wrap;word-break:break-all;
background:#f8fafc;padding:8px;border-radius:6px}footer{color:#64748b;font-size:12px}
"""


def verdict_page(history: History, verdict: Verdict, *, source: str) -> str:
    """One timeline per anomaly kind, around its smallest counterexample.

    ``verdict`` must be what :func:`harness.checker.check` returned for this very
    ``history`` object: counterexample events are found by identity.
    """
    with paused_gc():  # millions of small objects, freed together: as the checker does
        return _verdict_page(history, verdict, source)


def _verdict_page(history: History, verdict: Verdict, source: str) -> str:
    view = HistoryView(history)
    examples = sorted(verdict.examples.items())
    budget = MAX_PAGE_EVENTS // max(len(examples), 1)
    result = str(verdict.result)
    stats = ", ".join(
        f"{value:,} {name.replace('_', ' ')}" for name, value in verdict.stats.items() if value
    )
    body = [
        f'<h1>Consistency verdict: <span class="{result}">{result.upper()}</span></h1>',
        f'<p class="sub">{escape(source)} · checked {escape(stats)} · times are seconds '
        "from the run's first recorded event</p>",
    ]
    if verdict.notes:
        notes = "".join(f"<li>{escape(note)}</li>" for note in verdict.notes)
        body.append(f'<section class="card"><b>Notes</b><ul>{notes}</ul></section>')
    if not examples:
        body.append(
            '<section class="card"><p>No anomaly: one order of writes per key explains '
            "everything recorded. To see what the store did with one key, run "
            "<code>store-harness explain RUN_DIR --key KEY</code>.</p></section>"
        )
    for number, (kind, anomaly) in enumerate(examples):
        body.append(_anomaly(view, kind, verdict.counts[kind], anomaly, budget, f"tl{number}"))
    return _page(f"verdict: {result} · {source}", "".join(body))


def write_verdict_page(directory: Path, history: History, verdict: Verdict) -> Path:
    """verdict.html in ``directory`` (atomically, like verdict.json); its path."""
    path = directory / VERDICT_HTML
    write_text(path, verdict_page(history, verdict, source=str(directory)))
    return path


def beside_verdict(text: str, page: Path | None) -> str:
    """A verdict's text with ``verdict.html: PATH`` right under its first line."""
    if page is None:
        return text
    verdict_line, *details = text.split("\n")
    return "\n".join([verdict_line, f"{VERDICT_HTML}: {page}", *details])


def _anomaly(
    view: HistoryView, kind: str, count: int, anomaly: Anomaly, budget: int, ident: str
) -> str:
    check, _, summary = KINDS[kind]
    scene = build(view, anomaly_selection(view, anomaly), budget)
    scene.zoom_to_focus()
    where = f"session {anomaly.session!r}, key {anomaly.key!r}: " if anomaly.key else ""
    message = _LONG_QUOTE.sub(_cut_quote, where + anomaly.message)
    about = [f"{count:,} found; the smallest counterexample is drawn, its events outlined."]
    if scene.order:
        about.append(f"Arrows: {scene.order}.")
    about += scene.notes
    quoted = "\n".join(scene.raw[m.index] for m in scene.marks if m.highlighted)
    return (
        f'<section class="card anomaly" id="anomaly-{escape(kind)}" data-kind="{escape(kind)}">'
        f"<h2>{escape(kind)} <small>{escape(check)} check · breaks {escape(anomaly.cites)} of "
        "the store protocol (docs/protocol.md)</small></h2>"
        f'<p class="impossible"><b>Impossible:</b> {escape(summary)} ({escape(anomaly.cites)}).'
        f"</p><p>{escape(message)}</p>"
        f'<p class="muted">{escape(" ".join(about))}</p>'
        f"{draw.svg(scene, ident, title=f'{kind}: {summary}')}{draw.LEGEND}"
        f"<details><summary>the counterexample's events as recorded</summary>"
        f'<pre class="events">{escape(quoted)}</pre></details></section>'
    )


#: A word too long to read in a caption, such as a 1 KB value (verdict.txt has it whole);
#: the quote or punctuation after it stays.
_LONG_QUOTE = re.compile(r"(\S{40})\S{8,}?([',.;:)]*)(?=\s|$)")


def _cut_quote(found: re.Match[str]) -> str:
    return f"{found[1]}…{found[2]}"


def anomaly_selection(view: HistoryView, anomaly: Anomaly) -> Selection:
    """The counterexample's keys (or connections, for a frame on no key) around its events."""
    events = view.history.events
    highlight = frozenset(
        view.position[id(event)] for event in anomaly.events if id(event) in view.position
    )
    keys: set[KeyName] = {view.key_of[i] for i in highlight if i in view.key_of}
    if anomaly.key is not None:
        keys.add((anomaly.session or "", anomaly.key))
    conns = frozenset((events[i].domain, events[i].conn) for i in highlight if i not in view.key_of)
    times = [view.at(j) for i in highlight for j in (i, view.partner.get(i, i))]
    if not times:
        return Selection(frozenset(keys), conns)
    first, last = min(times), max(times)
    margin = max((last - first) // 2, MARGIN_NS)
    return Selection(frozenset(keys), conns, max(0, first - margin), last + margin, highlight)


def explain_page(
    history: History,
    key: str,
    *,
    session: str | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    source: str,
) -> str:
    """One key's timeline in a window (seconds from the first recorded event)."""
    with paused_gc():
        return _explain_page(history, key, session, start_s, end_s, source)


def _explain_page(
    history: History,
    key: str,
    session: str | None,
    start_s: float | None,
    end_s: float | None,
    source: str,
) -> str:
    view = HistoryView(history)
    matching = [k for k in view.by_key if k[1] == key and session in (None, k[0])]
    if not matching:
        known = sorted({k[1] for k in view.by_key})
        listed = ", ".join(repr(k) for k in known[:5])
        more = f" and {len(known) - 5} more" if len(known) > 5 else ""
        where = f" in session {session!r}" if session is not None else ""
        found = f"; its keys: {listed}{more}" if known else "; it records no key"
        raise HarnessUsageError(f"no key {key!r}{where} in this history{found}")
    if len(matching) > 1:
        sessions = ", ".join(repr(k[0]) for k in sorted(matching)[:5])
        raise HarnessUsageError(
            f"key {key!r} is in {len(matching)} sessions ({sessions}): choose one with --session"
        )
    low = 0 if start_s is None else int(start_s * 1e9)
    high = INF if end_s is None else int(end_s * 1e9)
    if low >= high:
        raise HarnessUsageError(f"empty window: --from {start_s:g} is not before --to {end_s:g}")
    scene = build(view, Selection(frozenset(matching), low=low, high=high), MAX_PAGE_EVENTS)
    if not scene.marks:
        times = [view.at(i) for i in view.by_key[matching[0]]]
        raise HarnessUsageError(
            f"no event of key {key!r} between {low / 1e9:g} s and "
            f"{'the end' if high == INF else f'{high / 1e9:g} s'}; its events run from "
            f"{min(times) / 1e9:.3f} s to {max(times) / 1e9:.3f} s"
        )
    (name,) = matching
    about = [f"session {name[0]!r}, key {name[1]!r}: every request on it, every update of it."]
    if scene.order:
        about.append(f"Arrows: {scene.order}.")
    about += scene.notes
    window = f"{scene.low / 1e9:.3f} s to {scene.high / 1e9:.3f} s"
    body = (
        f"<h1>Key {escape(repr(key))}</h1>"
        f'<p class="sub">{escape(source)} · {window} · times are seconds from the run\'s first '
        "recorded event</p>"
        f'<section class="card"><p class="muted">{escape(" ".join(about))}</p>'
        f"{draw.svg(scene, 'tl0', title=f'key {key}')}{draw.LEGEND}</section>"
    )
    return _page(f"key {key} · {source}", body)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{PAGE_CSS}{draw.CSS}</style>"
        f"<script>{draw.SELF_CHECK}</script></head><body><main>{body}"
        f"<footer>store-harness {escape(__version__)}</footer></main>"
        f"<script>{draw.SCRIPT}</script></body></html>\n"
    )
