"""Writes the observers' order leaves out, and when each may have taken effect.

When one chain of writes is recovered from observers (check 1), every
acknowledged write is in it, but a write whose outcome is unknown may not be:
no observer received it, or the updates that carried it could not be told
apart from another write's. Such a write may have taken effect at any instant
after it was sent, or never (a lost reply says nothing either way), so it must
not be assumed absent from the order: a get may return its value, even a value
that writes in the chain wrote too (null most of all: deletes are written many
times).

What observers do prove is when it cannot have taken effect. An observer is
owed every write applied while it is active (R4.1), so a write it never
received was not applied while it was surely active: from the observe's reply
until ``Observer.end`` (the stopObserving or this side's close; when the server
ended it, the instant the last write it received was sent, see
:mod:`harness.checker.operations`).

An observer that received any update carrying the write's value and writer
may have received this very write, so it proves nothing about that. But when
no other live write carries them, the update is that write, and the writes of
the chain the observer received before and after it bound when it took effect
and until when it can have been current (R4.3). Times of different clock
domains are never compared: a write or get on another machine than the
observers is left unconstrained.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.checker import describe
from harness.checker.operations import FAILED, INF, KeyHistory, Observer, Read, Token, Write
from harness.checker.verdict import Anomaly
from harness.history.events import Event


@dataclass(slots=True, eq=False)
class Placement:
    """Where in time a write outside the chain can have been the key's value."""

    write: Write
    #: No earlier than this may it have taken effect, as far as its sending and
    #: observers that received it tell ...
    base: int
    #: ... and no later than this was it overwritten (INF: maybe never).
    latest: int = INF
    #: A chain write an observer received before it, when that set ``base``.
    after: Write | None = None
    #: The chain write an observer received after it, which set ``latest``.
    overwritten_by: Write | None = None
    #: When observers that never received it were surely active: merged, open
    #: intervals (it did not take effect inside one), as sorted starts and ends.
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    #: Those observers' own windows, to name one in a counterexample.
    windows: list[tuple[int, int, Observer]] = field(default_factory=list)

    def earliest(self, floor: int = -INF) -> int:
        """The first instant from ``floor`` (and ``base``) on at which it may have applied."""
        at = max(self.base, floor)
        block = bisect_left(self.starts, at) - 1
        if block >= 0 and at < self.ends[block]:
            return self.ends[block]
        return at

    def explains(self, read: Read, floor: int) -> bool:
        if self.write.domain != read.domain:
            return True  # times of two machines: nothing to compare
        return self.earliest(floor) <= read.comp and read.inv <= self.latest


class Unordered:
    """The live writes outside ``chain`` and where in time each may have been current."""

    def __init__(self, history: KeyHistory, chain: list[Write]) -> None:
        self.history = history
        placed = set(chain)
        self.writes = [w for w in history.writes if w.status != FAILED and w not in placed]
        #: value -> the placements of its writes outside the chain
        self.by_value: dict[str | None, list[Placement]] = {}
        if not self.writes:
            return
        placements = _from_sequences(history, placed, self.writes)
        windows = _windows(history)
        received = _receivers(history, {w.token for w in self.writes})
        for write in self.writes:
            placement = placements.get(write) or Placement(write, write.inv)
            ruled_out = received.get(write.token, set())
            for start, end, observer in windows:
                if observer.domain != write.domain or observer in ruled_out:
                    continue
                placement.windows.append((start, end, observer))
                if placement.starts and start < placement.ends[-1]:
                    placement.ends[-1] = max(placement.ends[-1], end)
                else:
                    placement.starts.append(start)
                    placement.ends.append(end)
            self.by_value.setdefault(write.value, []).append(placement)

    def __bool__(self) -> bool:
        return bool(self.writes)

    def explains(self, read: Read, floor: int = -INF) -> bool:
        """Whether a write outside the chain may have been current while ``read`` was pending.

        ``floor``: chain writes surely applied before the get was sent were sent no
        later (see :func:`applied_before`); the outside write must come after them.
        Lenient beyond that: it does not ask that no chain write came between.
        """
        return any(p.explains(read, floor) for p in self.by_value.get(read.value, ()))

    def blame(self, read: Read, floor: int = -INF) -> Anomaly | None:
        """Why ``read``'s value, written only outside the chain, cannot be explained.

        Call it only when :meth:`explains` said no. ``None`` when no live write of
        the value exists at all (that is ``unknown_value`` or
        ``failed_write_visible``, reported by the value check).
        """
        found = self.by_value.get(read.value)
        if not found:
            return None
        case, proof = _why_not(read, found, floor)
        kind, text = _WHY[case]
        words = {name: _named(thing) for name, thing in proof.items()}
        events = [e for thing in proof.values() for e in _events(thing)]
        return Anomaly(kind, text.format(**words), self.history.session, self.history.key, events)


#: case, the anomaly kind, its text: ``{got}`` is the get, the other fields name
#: writes and observers, quoted in that order. One row a line: the table is the wording.
_WHY_TABLE = """
sent_after     future_read  {got} before any write of it was sent (the first, {first}, was sent after the get was answered)
received_late  future_read  {got}, but observers received {write} only after {before}, which was sent after the get was answered
overwritten    stale_read   {got}, but observers received {later} after {write}, and it was acknowledged before the get was sent
order_late     stale_read   {got}, but writes acknowledged before it was sent come after {write} in the order
unseen         lost_update  {got}, so {write}, whose outcome is unknown, took effect before the get was answered (and after every write acknowledged before the get was sent); observers were surely active from then until the get was answered (first {observer}), and none received it
"""  # noqa: E501
_WHY = {
    case: (kind, text)
    for case, kind, text in (line.split(None, 2) for line in _WHY_TABLE.strip().splitlines())
}

Proof = dict[str, Read | Write | Observer]


def _why_not(read: Read, found: list[Placement], floor: int) -> tuple[str, Proof]:
    """Which case of :data:`_WHY` explains ``read``, and who proves it, in the order
    their events are quoted."""
    sent = [p for p in found if p.write.inv <= read.comp]
    if not sent:
        return "sent_after", {"got": read, "first": min((p.write for p in found), key=_sent)}
    place = min(sent, key=lambda p: p.write.inv)
    write = place.write
    if place.base > read.comp and place.after is not None:
        return "received_late", {"got": read, "before": place.after, "write": write}
    if place.earliest(floor) <= read.comp and place.overwritten_by is not None:
        return "overwritten", {"write": write, "later": place.overwritten_by, "got": read}
    at = max(place.base, floor)
    blocker = next((o for start, end, o in place.windows if start < at < end), None)
    if blocker is None:
        # Only when the chain itself breaks real time (reported by the solver too).
        return "order_late", {"write": write, "got": read}
    return "unseen", {"observer": blocker, "write": write, "got": read}


def _sent(write: Write) -> int:
    return write.inv


def _named(thing: Read | Write | Observer) -> str:
    if isinstance(thing, Observer):
        return describe.observer(thing)
    return describe.who_read(thing) if isinstance(thing, Read) else describe.operation(thing)


def _events(thing: Read | Write | Observer) -> list[Event]:
    if isinstance(thing, Observer):
        return [thing.start_event] if thing.start_event else []
    return thing.events


def applied_before(chain: list[Write], domain: int) -> Callable[[int], int]:
    """For an instant ``t``: no write outside the chain current at ``t`` was applied
    before the returned instant.

    Every chain write acknowledged before ``t``, and every one before it in the
    order, was applied before ``t``; a write current at ``t`` was applied after
    them all, so after each was sent. Only writes of ``domain`` are compared.
    """
    acked = sorted((w.comp, i) for i, w in enumerate(chain) if w.domain == domain and w.comp < INF)
    if not acked:
        return lambda _: -INF
    comps = [comp for comp, _ in acked]
    furthest = []  # furthest[j]: the latest position among the j+1 earliest acknowledged
    best = -1
    for _, i in acked:
        best = max(best, i)
        furthest.append(best)
    sent_by = []  # sent_by[i]: the latest sending among chain[0..i] of this domain
    latest = -INF
    for write in chain:
        if write.domain == domain:
            latest = max(latest, write.inv)
        sent_by.append(latest)

    def floor(t: int) -> int:
        j = bisect_left(comps, t)
        return sent_by[furthest[j - 1]] if j else -INF

    return floor


def _from_sequences(
    history: KeyHistory, chain: set[Write], outside: list[Write]
) -> dict[Write, Placement]:
    """Bounds from observers that received a write outside the chain, told apart by token.

    A chain write received before it was applied before it (so after it was
    sent); one received after it was applied after it, so no later than its
    acknowledgement, and the outside write was not current after that (R4.3).
    """
    counts: dict[Token, int] = {}
    for write in history.writes:
        if write.status != FAILED:
            counts[write.token] = counts.get(write.token, 0) + 1
    lone = {w.token: w for w in outside if counts[w.token] == 1}
    if not lone:
        return {}
    known = {w.token: w for w in chain if counts[w.token] == 1}
    out: dict[Write, Placement] = {}
    for observer in history.observers:
        before: Write | None = None  # the chain write received last, sent latest so far
        waiting: list[Placement] = []
        for update in observer.updates:
            token = (update.value, update.by)
            write = lone.get(token)
            if write is not None:
                place = out.get(write)
                if place is None:
                    place = out[write] = Placement(write, write.inv)
                if before is not None and before.domain == write.domain and before.inv > place.base:
                    place.base, place.after = before.inv, before
                waiting.append(place)
                continue
            write = known.get(token)
            if write is None:
                continue  # ambiguous or unknown: it bounds nothing here
            if before is None or write.inv > before.inv:
                before = write
            for place in waiting:
                if write.domain == place.write.domain and write.comp < place.latest:
                    place.latest, place.overwritten_by = write.comp, write
            waiting = [place for place in waiting if place.latest == INF]
    return out


def _windows(history: KeyHistory) -> list[tuple[int, int, Observer]]:
    """Each observer's (start, end) while it was surely active, sorted by start."""
    out = [
        (observer.start, observer.end, observer)
        for observer in history.observers
        if observer.start is not None and observer.end > observer.start
    ]
    out.sort(key=lambda window: window[0])
    return out


def _receivers(history: KeyHistory, tokens: set[Token]) -> dict[Token, set[Observer]]:
    """token -> the observers that received an update carrying it."""
    out: dict[Token, set[Observer]] = {}
    for observer in history.observers:
        for update in observer.updates:
            token = (update.value, update.by)
            if token in tokens:
                out.setdefault(token, set()).add(observer)
    return out


__all__ = ["Placement", "Unordered", "applied_before"]
