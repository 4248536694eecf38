"""A conformance case's transcript as a timeline: frames on lanes per connection.

A request frame (one with an ``id``) and the reply with that id on its
connection become a bar, coloured by the reply (``error`` or not; no reply:
unknown); updates are ticks; frames that are not JSON, replies to nothing and
notes are marks of their own. Same scene, same drawing as verdict.html.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from harness.reports.timeline import draw
from harness.reports.timeline import scene as sc

#: A transcript is kept short by the suite already; this bounds a page of many cases.
MAX_FRAMES = 400


class Line(Protocol):
    """What a transcript line holds (harness.conformance.case.TranscriptLine)."""

    at_ms: float
    connection: str
    direction: str  # sent, received, note
    text: str


def _frame(text: str) -> dict[str, Any] | None:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _raw(text: str) -> str:
    limit = sc.QUOTE_CHARS * 2
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters in all)"


def transcript_scene(lines: Sequence[Line], quoted: str = "") -> sc.Scene:
    """The frames on lanes; those ``quoted`` (the case's "got") are highlighted."""
    builder = sc.SceneBuilder()

    def mark(lane: int, at: int, kind: str, text: str) -> sc.Mark:
        # Short frames ({"type":"ok","id":4}) could be quoted by chance; long ones are the proof.
        offending = bool(quoted) and (text == quoted or (len(text) >= 24 and text in quoted))
        return builder.mark(lane, at, kind, _raw(text), highlighted=offending)

    shown = lines[:MAX_FRAMES]
    times = [int(line.at_ms * 1e6) for line in shown]
    origin = min(times, default=0)
    pending: dict[tuple[int, object], tuple[sc.Mark, str]] = {}
    for line, at in zip(shown, times, strict=True):
        lane = builder.lane(line.connection, line.connection or "notes")
        at -= origin
        frame = _frame(line.text) if line.direction != "note" else None
        kind = frame.get("type") if frame else None
        request = frame.get("id") if frame else None
        key = (lane, orjson.dumps(request)) if request is not None else None
        if line.direction == "sent" and key is not None and key not in pending:
            pending[key] = (mark(lane, at, "sent", line.text), _request_label(frame))
            continue
        if line.direction == "received" and key is not None and key in pending and kind != "update":
            start, label = pending.pop(key)
            outcome = sc.ERROR if kind == "error" else sc.OK
            reply = mark(lane, at, "received", line.text)
            builder.bar(lane, start, reply, outcome, label)
            continue
        direction = line.direction if line.direction in ("sent", "received") else "note"
        found = mark(lane, at, "update" if kind == "update" else direction, line.text)
        if kind == "update" and frame is not None:
            value = frame.get("value")
            found.label = sc.short(value if isinstance(value, str) else None)
    for start, label in pending.values():  # no reply came
        builder.bar(start.lane, start, None, sc.UNKNOWN, label)
    scene = builder.finish(0, max(times, default=0) - origin)
    if len(lines) > MAX_FRAMES:
        scene.notes.append(f"the first {MAX_FRAMES} frames of {len(lines)} are drawn")
    return scene


def _request_label(frame: dict[str, Any] | None) -> str:
    if not frame:
        return "request"
    kind = str(frame.get("type", "request"))
    key = frame.get("key")
    return f"{kind} {key}" if isinstance(key, str) else kind


def transcript_timeline(lines: Sequence[Line], ident: str, quoted: str = "") -> str:
    """The timeline box of one transcript (needs :data:`STYLE` and :data:`SCRIPT` on the page);
    frames the case quotes as what it got are outlined."""
    scene = transcript_scene(lines, quoted)
    notes = "".join(f'<p class="tl-legend">{note}</p>' for note in scene.notes)
    return draw.svg(scene, ident, title="frames by connection") + TRANSCRIPT_LEGEND + notes


TRANSCRIPT_LEGEND = (
    '<p class="tl-legend">bars: a request frame to its reply, '
    f'<i style="background:{draw.OUTCOME_COLOURS[sc.OK]}"></i>ok'
    f'<i style="background:{draw.OUTCOME_COLOURS[sc.ERROR]}"></i>error'
    f'<i style="background:{draw.OUTCOME_COLOURS[sc.UNKNOWN]}"></i>no reply · '
    '<i style="background:#2563eb;width:3px"></i>update · '
    '<i style="background:#0f766e;width:3px"></i>other frame received · '
    '<i style="background:#94a3b8;width:3px"></i>note · hover for the frame, wheel or drag '
    "to zoom and pan</p>"
)
STYLE, SCRIPT = draw.CSS, draw.SCRIPT
