"""From a history to a scene: the events of some keys (or connections) in a window of time.

:class:`HistoryView` indexes a history once (by key, by connection, each
request's invoke and done paired), so every timeline of a page costs only its
own events. A scene never holds more than its ``budget`` of events: when the
window holds more, it keeps the highlighted ones and those nearest the window's
centre, narrows the window to them, and says so in its notes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from harness.checker.model import REGISTER
from harness.checker.operations import INF, Partitioned, Write
from harness.checker.order import KeyOrder, check_order
from harness.history.events import Closed, Done, Invoke, Update, Violation
from harness.history.reader import History
from harness.protocol.kinds import STOP_OBSERVING
from harness.reports.timeline import scene as sc

#: (session, key): a key is a register per session, as the checker partitions it.
KeyName = tuple[str, str]
#: (clock domain, connection id)
ConnName = tuple[int, str]


class HistoryView:
    """A history's events indexed for drawing, with times aligned across clock domains."""

    def __init__(self, history: History) -> None:
        self.history = history
        events = history.events
        offsets = _clock_offsets(history)
        self.times = [event.time + offsets.get(event.domain, 0) for event in events]
        self.origin = min(self.times, default=0)
        self.end = max(self.times, default=0) - self.origin
        self.position = {id(event): index for index, event in enumerate(events)}
        self.partner: dict[int, int] = {}
        self.by_key: dict[KeyName, list[int]] = defaultdict(list)
        self.by_conn: dict[ConnName, list[int]] = defaultdict(list)
        self.closes: dict[ConnName, list[int]] = defaultdict(list)
        #: The key of every event that has one (a stop's is its observer's).
        self.key_of: dict[int, KeyName] = {}
        #: An observe's invoke -> the event that ended its observer (None: never ended),
        #: so an observer active across a window is drawn in it.
        self.ended_by: dict[int, int | None] = {}
        self._parts: Partitioned | None = None
        self._orders: dict[KeyName, KeyOrder] = {}
        self._index()

    def _index(self) -> None:
        events = self.history.events
        invokes: dict[tuple[int, str, int], int] = {}
        observed: dict[tuple[int, str, str], KeyName] = {}
        observes: dict[tuple[int, str, str], int] = {}
        on_conn: dict[ConnName, list[int]] = defaultdict(list)
        key_of, ended_by = self.key_of, self.ended_by
        for index, event in enumerate(events):
            conn = (event.domain, event.conn)
            self.by_conn[conn].append(index)
            where: KeyName | None = None
            kind = type(event)
            if kind is Invoke:
                invokes[(event.domain, event.conn, event.request)] = index
                if event.op == STOP_OBSERVING.history:
                    observer = (event.domain, event.conn, event.observer or "")
                    where = observed.get(observer)
                    started = observes.get(observer)
                    if started is not None and ended_by[started] is None:
                        ended_by[started] = index
                elif event.key is not None:
                    where = (event.session or "", event.key)
            elif kind is Done:
                call = invokes.pop((event.domain, event.conn, event.request), None)
                if call is not None:
                    self.partner[call], self.partner[index] = index, call
                    where = key_of.get(call)
                elif event.key is not None:
                    where = (event.session or "", event.key)
                if where is not None and event.result == "observing" and event.observer:
                    observed[(event.domain, event.conn, event.observer)] = where
                    if call is not None:
                        observes[(event.domain, event.conn, event.observer)] = call
                        ended_by[call] = None
                        on_conn[conn].append(call)
            elif kind is Update or (kind is Violation and event.key is not None):
                where = (event.session or "", event.key)  # type: ignore[assignment]
            elif kind is Closed:
                self.closes[conn].append(index)
                for started in on_conn.pop(conn, ()):
                    if ended_by[started] is None:
                        ended_by[started] = index
            if where is not None:
                key_of[index] = where
                self.by_key[where].append(index)

    @property
    def parts(self) -> Partitioned:
        if self._parts is None:
            self._parts = REGISTER.partition(self.history)
        return self._parts

    def order(self, key: KeyName) -> KeyOrder | None:
        """What the checker's order check recovers for ``key`` (once per key and page)."""
        if key not in self._orders:
            history = self.parts.keys.get(key)
            if history is None:
                return None
            self._orders[key] = check_order(history, lambda anomaly: None)
        return self._orders[key]

    def at(self, index: int) -> int:
        return self.times[index] - self.origin

    def keys(self) -> list[KeyName]:
        return sorted(self.by_key)


def _clock_offsets(history: History) -> dict[int, int]:
    """Per clock domain, what to add to its monotonic times to put them on the wall clock.

    Only with several domains (machines): one domain keeps its own clock, which
    orders its events exactly; across machines the wall clock is the only common one.
    """
    if len(history.clocks) < 2:
        return {}
    offsets: dict[int, int] = {}
    for header in history.headers:
        if header.clock in history.clocks and header.wall_ns and header.mono_ns:
            offsets.setdefault(history.clocks.index(header.clock), header.wall_ns - header.mono_ns)
    return offsets if len(offsets) == len(history.clocks) else {}


@dataclass(frozen=True)
class Selection:
    """What one timeline shows: the events of these keys and connections in a window."""

    keys: frozenset[KeyName]
    conns: frozenset[ConnName] = frozenset()
    low: int = 0
    high: int = INF
    highlight: frozenset[int] = frozenset()


def build(view: HistoryView, selection: Selection, budget: int) -> sc.Scene:
    """The scene of ``selection``, with at most ``budget`` events besides the highlighted."""
    events = view.history.events
    chosen: set[int] = set()
    for key in selection.keys:
        chosen.update(view.by_key.get(key, ()))
    for conn in selection.conns:
        chosen.update(view.by_conn.get(conn, ()))
    low, high = selection.low, selection.high
    items = [item for item in _items(view, chosen) if item[0] <= high and item[1] >= low]
    lanes = {(events[i].domain, events[i].conn) for _, _, i, _ in items}
    for conn in lanes:
        items += [
            (view.at(i), view.at(i), i, None)
            for i in view.closes.get(conn, ())
            if low <= view.at(i) <= high and i not in chosen
        ]
    high = min(high, view.end)
    items, hidden, dropped = _cap(items, selection.highlight, low, high, budget)
    builder = sc.SceneBuilder()
    bars = _place(view, builder, items, selection.highlight)
    scene = builder.finish(low, high)
    scene.hidden = hidden
    for span in scene.spans:
        span.end = min(span.end, scene.high)
    if dropped:
        scene.notes.append(
            f"{dropped} events of this window are not drawn (at most {budget} a timeline): "
            "those farthest from the counterexample, in the hatched stretches"
        )
    _arrows(view, selection, scene, bars)
    return scene


Item = tuple[int, int, int, int | None]  # start, end, event index, its done's index


def _place(
    view: HistoryView, builder: sc.SceneBuilder, items: list[Item], highlight: frozenset[int]
) -> dict[int, sc.Bar]:
    """Marks, bars and observers' spans for ``items`` in time order; bars by invoke index."""
    events = view.history.events
    bars: dict[int, sc.Bar] = {}
    observing: dict[tuple[int, str, str], sc.Span] = {}

    def mark(lane: int, i: int, kind: str) -> sc.Mark:
        raw = sc.quote(events[i])
        return builder.mark(lane, view.at(i), kind, raw, highlighted=i in highlight)

    for start, _, index, done in sorted(items, key=lambda item: (item[0], item[2])):
        event = events[index]
        lane = builder.lane((event.domain, event.conn), event.conn, event.participant or "")
        if not isinstance(event, Invoke):
            found = mark(lane, index, sc.event_kind(event))
            if isinstance(event, Update):
                found.label = sc.short(event.value)
            if isinstance(event, Closed):
                for (domain, conn, _), span in observing.items():
                    if (domain, conn) == (event.domain, event.conn) and span.end == INF:
                        span.end = start
            continue
        reply = events[done] if done is not None else None
        end = mark(lane, done, "done") if done is not None else None
        bar = builder.bar(
            lane, mark(lane, index, "invoke"), end, _outcome(reply), _label(event, reply)
        )
        bars[index] = bar
        if event.op == STOP_OBSERVING.history:
            span = observing.get((event.domain, event.conn, event.observer or ""))
            if span is not None:
                span.end = start
        if isinstance(reply, Done) and reply.result == "observing" and reply.observer:
            assert done is not None
            span = sc.Span(lane, view.at(done), INF, reply.observer)
            observing[(event.domain, event.conn, reply.observer)] = span
            builder.scene.spans.append(span)
    return bars


def _items(view: HistoryView, chosen: set[int]) -> list[Item]:
    events = view.history.events
    items: list[Item] = []
    for index in sorted(chosen):
        event = events[index]
        partner = view.partner.get(index)
        if isinstance(event, Done) and partner is not None:
            continue  # drawn with its invoke
        if isinstance(event, Invoke):
            end = view.at(partner) if partner is not None else INF
            if index in view.ended_by:  # an observe: its observer's lifetime counts
                ended = view.ended_by[index]
                end = INF if ended is None else max(end, view.at(ended))
            items.append((view.at(index), end, index, partner))
        else:
            items.append((view.at(index), view.at(index), index, None))
    return items


def _cap(
    items: list[Item], highlight: Collection[int], low: int, high: int, budget: int
) -> tuple[list[Item], list[tuple[int, int]], int]:
    """Keep the highlighted items, then those nearest a highlighted instant, within ``budget``.

    Returns the items kept, the stretches of the window whose events were left
    out (drawn as such, never as a quiet stretch), and how many events were left out.
    """
    count = sum(1 + (done is not None) for *_, done in items)
    if count <= budget:
        return items, [], 0
    marked = [i for i in items if i[2] in highlight or i[3] in highlight]
    instants = sorted({t for i in marked for t in (i[0], i[1]) if t != INF}) or [(low + high) // 2]

    def distance(item: Item) -> int:
        start, end = item[0], min(item[1], INF - 1)
        at = bisect_left(instants, start)
        if at < len(instants) and instants[at] <= end:
            return 0  # a highlighted instant falls inside it
        near = [instants[j] for j in (at - 1, at) if 0 <= j < len(instants)]
        return min(max(start - t, t - end) for t in near)

    others = sorted((i for i in items if i not in marked), key=distance)
    room = budget - sum(1 + (done is not None) for *_, done in marked)
    kept, cut = list(marked), None
    for item in others:
        size = 1 + (item[3] is not None)
        if size > room:
            cut = distance(item)
            break
        kept.append(item)
        room -= size
    hidden: list[tuple[int, int]] = []
    if cut is not None:
        kept = [i for i in kept if i in marked or distance(i) < cut]
        # Everything nearer a highlighted instant than the first item left out is drawn.
        edge = low
        for t in instants:
            if t - cut > edge:
                hidden.append((edge, t - cut))
            edge = max(edge, t + cut)
        if edge < high:
            hidden.append((edge, high))
    dropped = count - sum(1 + (done is not None) for *_, done in kept)
    return kept, hidden, dropped


def _outcome(reply: object) -> str:
    if not isinstance(reply, Done) or reply.result == "unknown":
        return sc.UNKNOWN
    return sc.ERROR if reply.result == "error" else sc.OK


def _label(call: Invoke, reply: object) -> str:
    if call.op == "set":
        return f"set {sc.short(call.value)}"
    if call.op == "get" and isinstance(reply, Done) and reply.result == "value":
        return f"get → {sc.short(reply.value)}"
    if call.op == "observe" and isinstance(reply, Done) and reply.observer:
        return f"observe → {reply.observer}"
    if call.op == STOP_OBSERVING.history:
        return f"stop {call.observer}"
    if isinstance(reply, Done) and reply.code:
        return f"{call.op} → {reply.code}"
    return call.op


def _arrows(
    view: HistoryView, selection: Selection, scene: sc.Scene, bars: dict[int, sc.Bar]
) -> None:
    """The write order of each key shown: the checker's, else each observer's own."""

    def bar_of(write: Write) -> sc.Bar | None:
        return bars.get(view.position.get(id(write.events[0]), -1))

    events = view.history.events
    described = []
    for key in sorted(selection.keys):
        history = view.parts.keys.get(key)
        order = view.order(key)
        if history is None or order is None or len(bars) < 2:
            continue
        if order.chain is not None:
            drawn = len(scene.arrows)
            sc.chain_arrows(scene, order.chain, bar_of)
            if len(scene.arrows) > drawn:
                described.append("the order of writes the checker recovered from observers (R4.3)")
            continue
        seen = [
            (events[i].conn, events[i].observer)
            for i in sorted(selection.highlight)
            if isinstance(events[i], Update)
        ]
        seen += [(o.conn, o.observer_id) for o in history.observers]
        drawn = len(scene.arrows)
        names = sc.observer_arrows(scene, history, seen, bar_of)  # type: ignore[arg-type]
        if len(scene.arrows) > drawn:
            described.append(
                "no one order explains every observer: each colour is the order in which "
                f"one observer received writes ({', '.join(names)})"
            )
    scene.order = "; ".join(dict.fromkeys(described))
