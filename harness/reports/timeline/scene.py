"""What a timeline shows, as data: lanes, request bars, marks and order arrows in a window.

A :class:`Scene` is built from a recorded history (:func:`from_history`) or
from a conformance transcript (:mod:`harness.reports.timeline.transcript`) and
drawn by :mod:`harness.reports.timeline.draw`, so both look alike. Every mark
stands for exactly one recorded event (or frame), whose raw text the page shows
on hover; a request's bar runs from its invoke mark to its done mark.

Times are nanoseconds from the scene's ``origin``: the history's first event,
each clock domain aligned on the wall clock its header recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise

import orjson

from harness.checker.operations import KeyHistory, Write
from harness.history.events import Closed, Done, Event, Invoke, Update, Violation

OK, ERROR, UNKNOWN = "ok", "error", "unknown"
#: Values and frames longer than this are cut in a page's raw text: a page holds
#: thousands of events, and a value may be a kilobyte (R3.5), a frame four.
QUOTE_CHARS = 200


@dataclass(slots=True, eq=False)
class Mark:
    """One recorded event or frame, at one instant on one lane."""

    index: int  # into Scene.raw
    lane: int
    at: int
    kind: str  # invoke, done, update, closed, violation, sent, received, note
    highlighted: bool = False
    label: str = ""
    row: int = -1  # -1: the lane's top row (updates, closes); else the bar's row


@dataclass(slots=True, eq=False)
class Bar:
    """A request from its invoke (or sent frame) to its done (or reply)."""

    lane: int
    start: int
    end: int
    outcome: str  # ok, error, unknown
    marks: list[Mark]
    label: str = ""
    open_end: bool = False  # no reply in the history: drawn to the window's end
    row: int = 0

    @property
    def highlighted(self) -> bool:
        return any(m.highlighted for m in self.marks)


@dataclass(slots=True)
class Span:
    """An observer, from the observe's reply to its end (or the window's)."""

    lane: int
    start: int
    end: int
    label: str


@dataclass(slots=True)
class Arrow:
    """One step of a write order: ``source`` was applied right before ``target``."""

    source: Bar
    target: Bar
    colour: str
    label: str


@dataclass(slots=True)
class Lane:
    name: str
    detail: str = ""
    rows: int = 1
    highlighted: bool = False


@dataclass
class Scene:
    lanes: list[Lane] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    #: The raw text of each mark's event, by Mark.index.
    raw: list[str] = field(default_factory=list)
    low: int = 0
    high: int = 1
    #: What the arrows are: the checker's recovered order, or observers' sequences.
    order: str = ""
    #: Stretches of the window whose events were left out to keep the page small.
    hidden: list[tuple[int, int]] = field(default_factory=list)
    #: The part of the window shown first (zoomed to the highlighted marks), or None: all.
    view: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return len(self.marks)

    def focus(self) -> tuple[int, int]:
        """The span of the highlighted marks, or the whole window."""
        times = [m.at for m in self.marks if m.highlighted]
        return (min(times), max(times)) if times else (self.low, self.high)

    def zoom_to_focus(self) -> None:
        """Show the highlighted marks first, with some of the window around them."""
        low, high = self.focus()
        pad = max((high - low) * 3 // 4, (self.high - self.low) // 6, 1)
        view = (max(self.low, low - pad), min(self.high, high + pad))
        # Zoomed to a third of the window or more, the rest is context worth seeing at once.
        self.view = view if (view[1] - view[0]) * 3 < self.high - self.low else None


def quote(event: Event) -> str:
    """The event as recorded, long values and frames cut to QUOTE_CHARS."""
    record = event.to_json()
    for name in ("value", "frame"):
        text = record.get(name)
        if isinstance(text, str) and len(text) > QUOTE_CHARS:
            record[name] = f"{text[:QUOTE_CHARS]}... ({len(text)} characters in all)"
    return orjson.dumps(record).decode()


def short(value: str | None, limit: int = 24) -> str:
    """A value as a label: JSON's ``null`` for a delete, long ones cut."""
    if value is None:
        return "null"
    return value if len(value) <= limit else value[: limit - 1] + "…"


class SceneBuilder:
    """Lanes and rows as items arrive; the one place items become marks and bars."""

    def __init__(self) -> None:
        self.scene = Scene()
        self._lanes: dict[object, int] = {}
        self._rows: list[list[int]] = []  # per lane, each row's end

    def lane(self, key: object, name: str, detail: str = "") -> int:
        found = self._lanes.get(key)
        if found is None:
            found = self._lanes[key] = len(self.scene.lanes)
            self.scene.lanes.append(Lane(name, detail))
            self._rows.append([])
        return found

    def mark(self, lane: int, at: int, kind: str, raw: str, *, highlighted: bool = False) -> Mark:
        mark = Mark(len(self.scene.raw), lane, at, kind, highlighted)
        self.scene.raw.append(raw)
        self.scene.marks.append(mark)
        if highlighted:
            self.scene.lanes[lane].highlighted = True
        return mark

    def bar(self, lane: int, start: Mark, end: Mark | None, outcome: str, label: str) -> Bar:
        bar = Bar(lane, start.at, end.at if end else start.at, outcome, [start], label, end is None)
        if end is not None:
            bar.marks.append(end)
        self.scene.bars.append(bar)
        return bar

    def finish(self, low: int, high: int) -> Scene:
        """Pack bars into rows (no two overlap on one row) within ``low``..``high``."""
        scene = self.scene
        scene.low, scene.high = low, max(high, low + 1)
        for bar in sorted(scene.bars, key=lambda b: b.start):
            if bar.open_end:
                bar.end = max(bar.start, scene.high)
            rows = self._rows[bar.lane]
            row = next((n for n, end in enumerate(rows) if end < bar.start), len(rows))
            if row == len(rows):
                rows.append(bar.end)
            rows[row] = bar.end
            bar.row = row
            for mark in bar.marks:
                mark.row = row
        for lane, rows in zip(scene.lanes, self._rows, strict=True):
            lane.rows = max(1, len(rows))
        return scene


def chain_arrows(scene: Scene, chain: list[Write], bar_of: Callable[[Write], Bar | None]) -> None:
    """Arrows along the checker's order of a key's writes, where both ends are drawn."""
    bars = [bar_of(write) for write in chain]
    for number, (source, target) in enumerate(pairwise(bars), 2):
        if source is not None and target is not None:
            scene.arrows.append(Arrow(source, target, "#0f172a", f"#{number}"))


#: Observers' sequences, when there is no one order, each in a colour of its own.
OBSERVER_COLOURS = ("#7c3aed", "#ea580c", "#0891b2")


def observer_arrows(
    scene: Scene,
    history: KeyHistory,
    chosen: Iterable[tuple[str, str]],
    bar_of: Callable[[Write], Bar | None],
) -> list[str]:
    """Arrows along the writes each chosen observer (conn, observerId) received, in order.

    Derived from the key's updates: an update names its write by (value, writer),
    and only writes so named once are linked (as the checker links them).
    """
    by_token: dict[tuple[str | None, str | None], list[Write]] = {}
    for write in history.writes:
        by_token.setdefault(write.token, []).append(write)
    wanted = list(dict.fromkeys(chosen))
    names = []
    for colour, (conn, observer_id) in zip(OBSERVER_COLOURS, wanted, strict=False):
        observer = next(
            (o for o in history.observers if (o.conn, o.observer_id) == (conn, observer_id)), None
        )
        if observer is None:
            continue
        names.append(f"{observer_id} on {conn}")
        previous: Bar | None = None
        for update in observer.updates:
            writes = by_token.get((update.value, update.by), [])
            current = bar_of(writes[0]) if len(writes) == 1 else None
            if previous is not None and current is not None and current is not previous:
                scene.arrows.append(Arrow(previous, current, colour, observer_id))
            previous = current
    return names


def event_kind(event: Event) -> str:
    if isinstance(event, Invoke):
        return "invoke"
    if isinstance(event, Done):
        return "done"
    if isinstance(event, Update):
        return "update"
    if isinstance(event, Closed):
        return "closed"
    assert isinstance(event, Violation)
    return "violation"
