"""Checks 1 and 2: one order of writes that every observer follows, and no lost updates.

Every observer active when a write is applied receives it, in apply order
(R4.1, R4.3). So whenever two observers both receive write ``w``, they must
agree on which write comes right after it (and right before it): a write can
have only one successor. That makes recovering the order linear: collect
successor and predecessor links from every observer's sequence, flag
conflicting links (a gap, or a different order) and cycles, and what is left
is a set of chains. One chain holding every write is the order the real-time
check then uses.

Writes are told apart by (value, writer). A value written more than once is
ambiguous: updates carrying it are not linked, and the verdict says so.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from harness.checker import describe
from harness.checker.operations import FAILED, OK, KeyHistory, Observer, Token, Write
from harness.checker.verdict import Anomaly
from harness.history.events import Event, Update
from harness.history.segments import UpdateColumns

Report = Callable[[Anomaly], None]


class KeyOrder:
    """What the order check learned about one key, for the checks after it."""

    def __init__(self) -> None:
        #: Per observer, the writes it received (unambiguous ones).
        self.seen: dict[Observer, set[Write]] = {}
        self.by_token: dict[tuple[str | None, str | None], list[Write]] = {}
        self.ambiguous_updates = 0
        self.broken = False  # an order anomaly: there is no single order to use
        #: The writes in order, when one chain holds all of them that matter.
        self.chain: list[Write] | None = None


def check_order(history: KeyHistory, report: Report) -> KeyOrder:
    result = KeyOrder()
    by_token = result.by_token
    for write in history.writes:
        by_token.setdefault(write.token, []).append(write)
    # (write, next write) -> how many observers saw that link, and the first who did.
    succ: dict[Write, dict[Write, int]] = {}
    pred: dict[Write, dict[Write, int]] = {}
    first_seen: dict[tuple[Write, Write], tuple[Observer, int]] = {}
    walks: dict[Observer, list[tuple[Write, int, bool]]] = {}
    # token -> its one live write, once found: every observer's update of it is that write.
    identified: dict[tuple[str | None, str | None], Write] = {}
    for observer in history.observers:
        seen: set[Write] = set()
        result.seen[observer] = seen
        walk = walks[observer] = []
        previous: Write | None = None
        for index, update in enumerate(observer.updates):
            write = identified.get((update.value, update.by))
            if write is None:
                write = _identify(history, observer, update, result, report)
                if write is None:
                    previous = None
                    continue
                identified[write.token] = write
            if write in seen:
                first = next(u for u in observer.updates if _same(u, update))
                report(
                    _anomaly(
                        "duplicate_update",
                        history,
                        [*write.events, first, update],
                        f"{describe.observer(observer)} received {describe.operation(write)} twice",
                    )
                )
                result.broken = True
                continue
            seen.add(write)
            walk.append((write, index, previous is not None))
            if previous is not None:
                counts = succ.setdefault(previous, {})
                if write not in counts:
                    counts[write] = 0
                    first_seen[(previous, write)] = (observer, index)
                counts[write] += 1
                back = pred.setdefault(write, {})
                back[previous] = back.get(previous, 0) + 1
            previous = write
    conflicted = any(len(c) > 1 for c in succ.values()) or any(len(c) > 1 for c in pred.values())
    if conflicted:
        result.broken = True
        _blame(history, walks, succ, pred, first_seen, result, report)
    if not result.broken:
        chain_succ = {w: next(iter(c)) for w, c in succ.items()}
        result.chain = _single_chain(history, chain_succ, first_seen, result, report)
    return result


def _identify(
    history: KeyHistory,
    observer: Observer,
    update: Update,
    result: KeyOrder,
    report: Report,
) -> Write | None:
    """The write an update delivers, or None when it is unknown, refused or ambiguous."""
    candidates = result.by_token.get((update.value, update.by))
    if not candidates:
        report(
            _anomaly(
                "unknown_value",
                history,
                [update],
                f"{describe.observer(observer)} received {describe.update(update)}, "
                "which no recorded set wrote",
            )
        )
        return None
    live = [w for w in candidates if w.status != FAILED]
    if not live:
        report(
            _anomaly(
                "failed_write_visible",
                history,
                [*candidates[0].events, update],
                f"{describe.observer(observer)} received {describe.operation(candidates[0])}, "
                f"which the server refused with {candidates[0].code}",
            )
        )
        return None
    if len(live) > 1:
        result.ambiguous_updates += 1
        return None
    return live[0]


def _blame(
    history: KeyHistory,
    walks: dict[Observer, list[tuple[Write, int, bool]]],
    succ: dict[Write, dict[Write, int]],
    pred: dict[Write, dict[Write, int]],
    first_seen: dict[tuple[Write, Write], tuple[Observer, int]],
    result: KeyOrder,
    report: Report,
) -> None:
    """Observers disagree on what follows some write: flag each one against the majority.

    Each write has one true successor, so the link most observers saw is taken
    as it and every observer whose sequence breaks it is reported once: as a
    gap when it never received the majority's write, else as a different order.
    """
    usual_next = {w: max(c, key=c.__getitem__) for w, c in succ.items()}
    usual_prev = {w: max(c, key=c.__getitem__) for w, c in pred.items()}
    for observer, walk in walks.items():
        for position in range(1, len(walk)):
            after, index, linked = walk[position]
            if not linked:
                continue
            before = walk[position - 1][0]
            if usual_next[before] is after and usual_prev[after] is before:
                continue
            seen = result.seen[observer]
            report(
                _blamed(history, observer, index, before, after, usual_next, usual_prev,
                        first_seen.__getitem__, seen.__contains__)
            )  # fmt: skip
            break  # one anomaly per observer: the rest of its sequence follows from it


def _blamed(
    history: KeyHistory,
    observer: Observer,
    index: int,
    before: Write,
    after: Write,
    usual_next: dict[Write, Write],
    usual_prev: dict[Write, Write],
    witness_of: Callable[[tuple[Write, Write]], tuple[Observer, int]],
    received: Callable[[Write], bool],
) -> Anomaly:
    """The anomaly of ``observer``, whose update ``index`` (of ``after``, right after
    ``before``) breaks the majority's link; ``received``: whether it got a write."""
    if usual_next[before] is not after:
        expected, anchor, word = usual_next[before], before, "after"
        pair = (before, expected)
    else:
        expected, anchor, word = usual_prev[after], after, "before"
        pair = (expected, after)
    witness, witness_index = witness_of(pair)
    kind = "order_divergence" if received(expected) else "gap"
    got = after if word == "after" else before
    return _anomaly(
        kind,
        history,
        [
            witness.updates[witness_index - 1],
            witness.updates[witness_index],
            observer.updates[index - 1],
            observer.updates[index],
        ],
        f"right {word} {describe.operation(anchor)}, {describe.observer(witness)} "
        f"(and most others) received {describe.operation(expected)} but "
        f"{describe.observer(observer)} received {describe.operation(got)}",
        {
            "sequences": {
                describe.observer(witness, heading=True): _window(witness, witness_index),
                describe.observer(observer, heading=True): _window(observer, index),
            }
        },
    )


def _same(a: Update, b: Update) -> bool:
    return a.value == b.value and a.by == b.by


def _window(observer: Observer, index: int, before: int = 3, after: int = 3) -> list[str]:
    low, high = max(0, index - 1 - before), min(len(observer.updates), index + 1 + after)
    shown = [describe.value(u.value) for u in observer.updates[low:high]]
    return (["..."] if low else []) + shown + (["..."] if high < len(observer.updates) else [])


def _single_chain(
    history: KeyHistory,
    succ: dict[Write, Write],
    first_seen: dict[tuple[Write, Write], tuple[Observer, int]],
    result: KeyOrder,
    report: Report,
) -> list[Write] | None:
    """Walk the chains; flag a cycle; return the one chain if it holds every write that matters."""
    chains, placed = _chains(succ)
    in_cycle = [w for w in succ if w not in placed]
    if in_cycle:
        # Observers that each saw part of the writes, in orders no one order can join.
        result.broken = True
        cycle = [in_cycle[0]]
        while succ[cycle[-1]] is not cycle[0]:
            cycle.append(succ[cycle[-1]])
        witnesses = [first_seen[(w, succ[w])] for w in cycle]
        report(
            _anomaly(
                "order_divergence",
                history,
                [e for o, i in witnesses[:3] for e in (o.updates[i - 1], o.updates[i])],
                "the orders observers received form a cycle: "
                + " < ".join(describe.operation(w) for w in [*cycle, cycle[0]]),
                {
                    "sequences": {
                        describe.observer(o, heading=True): _window(o, i) for o, i in witnesses[:3]
                    }
                },
            )
        )
        return None
    seen = {w for seen in result.seen.values() for w in seen}
    return _the_chain(history, chains, placed, seen)


def _chains(succ: dict[Write, Write]) -> tuple[list[list[Write]], set[Write]]:
    """The chains the links make, from each write no link leads to; and their writes
    (a write of ``succ`` in none of them is on a cycle)."""
    has_pred = set(succ.values())
    chains: list[list[Write]] = []
    placed: set[Write] = set()
    for write in succ:
        if write in has_pred:
            continue
        chain = [write]
        while chain[-1] in succ:
            chain.append(succ[chain[-1]])
        placed.update(chain)
        chains.append(chain)
    return chains, placed


def _the_chain(
    history: KeyHistory, chains: list[list[Write]], placed: set[Write], seen: set[Write]
) -> list[Write] | None:
    """The one chain holding every acknowledged write, if there is one; ``seen``: every
    write some observer received."""
    # Writes no observer linked to another are chains of their own.
    chains.extend([w] for w in seen - placed)
    holding = [c for c in chains if any(w.status == OK for w in c)]
    needed = [w for w in history.writes if w.status == OK]
    if not needed:
        return holding[0] if len(holding) == 1 else []
    if len(holding) != 1:
        return None
    members = set(holding[0])
    return holding[0] if all(w in members for w in needed) else None


def check_completeness(history: KeyHistory, order: KeyOrder, report: Report) -> int:
    """Every acknowledged write reaches every observer active across it (R4.1).

    Returns how many (write, observer) deliveries were checked.
    """
    writes = _owed(history, order)
    invokes = [w.inv for w in writes]
    checked = 0
    for observer in history.observers:
        if observer.start is None:
            continue
        seen = order.seen[observer]
        for position in range(bisect_right(invokes, observer.start), len(writes)):
            write = writes[position]
            if write.inv >= observer.end:
                break
            if write.comp >= observer.end or write.domain != observer.domain:
                continue
            checked += 1
            if write not in seen:
                report(_lost(history, observer, write))
    return checked


def _lost(history: KeyHistory, observer: Observer, write: Write) -> Anomaly:
    events = [observer.start_event] if observer.start_event else []
    return _anomaly(
        "lost_update",
        history,
        [*events, *write.events],
        f"{describe.observer(observer)} was active from before {describe.operation(write)} "
        "was sent until after it was acknowledged, and never received it",
    )


def _owed(history: KeyHistory, order: KeyOrder) -> list[Write]:
    """The writes observers are owed, by when they were sent: acknowledged, and told
    apart from every other (an update of a value written twice may be either)."""
    return sorted(
        (w for w in history.writes if w.status == OK and len(order.by_token[w.token]) == 1),
        key=_sent,
    )


def _sent(write: Write) -> int:
    return write.inv


#: An update's token is of no live write, or of several: ``check_quietly`` marks its
#: write so, in place of the write's index.
_NO_WRITE, _SEVERAL = -2, -1


def check_quietly(history: KeyHistory, report: Report) -> tuple[KeyOrder, int] | None:
    """Checks 1 and 2 on observers' update columns: what :func:`check_order` and then
    :func:`check_completeness` report and give, in passes of built-in functions over
    arrays of write numbers where those step through every update.

    A long run's verdict waits on these two checks, whose work grows with every
    update: this is how it judges a run in seconds, a faulty one too (a gap,
    observers in different orders, a lost update). None, having reported
    nothing, when the observers' updates are not columns
    (:class:`~harness.history.segments.UpdateColumns`), or when an update carries
    a value no live write wrote, one write reaches an observer twice, or the
    order is a cycle: the two functions then judge the key.
    """
    observers = history.observers
    if not all(isinstance(o.updates, UpdateColumns) or not o.updates for o in observers):
        return None
    writes = history.writes
    result = KeyOrder()
    live: dict[Token, list[int]] = {}
    for number, write in enumerate(writes):
        result.by_token.setdefault(write.token, []).append(write)
        if write.status != FAILED:
            live.setdefault(write.token, []).append(number)
    walks = _Walks(live)
    owed = _Owed(history, result)
    links: Counter[tuple[int, int]] = Counter()
    received: set[int] = set()
    delivered, all_delivered = 0, True
    for observer in observers:
        walk = walks(observer)
        seen = _received(walk)
        if seen is None:
            return None  # unknown_value, failed_write_visible or duplicate_update
        result.ambiguous_updates += walk.count(_SEVERAL)
        links.update(pairwise(walk))
        received |= seen
        owed_here = owed(observer)
        delivered += len(owed_here)
        all_delivered = all_delivered and seen.issuperset(owed_here)
    # write -> the writes observers received right after it (right before it), in the
    # order check_order meets them, with how many did.
    succ: dict[int, dict[int, int]] = {}
    pred: dict[int, dict[int, int]] = {}
    for (before, after), count in links.items():
        if before >= 0 and after >= 0:
            succ.setdefault(before, {})[after] = count
            pred.setdefault(after, {})[before] = count
    if any(len(c) > 1 for c in succ.values()) or any(len(c) > 1 for c in pred.values()):
        result.broken = True
        _blame_quietly(history, walks, succ, pred, report)
    else:
        chain_succ = {writes[a]: writes[next(iter(c))] for a, c in succ.items()}
        chains, placed = _chains(chain_succ)
        if not placed.issuperset(chain_succ):
            return None  # a cycle
        result.chain = _the_chain(history, chains, placed, {writes[n] for n in received})
    if not all_delivered:
        for observer in observers:
            if observer.start is not None:
                seen = set(walks(observer))
                for number in owed(observer):
                    if number not in seen:
                        report(_lost(history, observer, writes[number]))
    return result, delivered


class _Walks:
    """An observer's updates as the numbers of the writes they carry (_SEVERAL for a
    value that live writes wrote more than once, _NO_WRITE for one none wrote).

    Each is kept once made, for the passes that report: a reference an update, which
    is less than its columns take (the numbers are the same few int objects)."""

    def __init__(self, live: dict[Token, list[int]]) -> None:
        self.live = live
        #: Per token list (one a key): each token's write.
        self.writes_of: dict[int, list[int]] = {}
        self.made: dict[int, list[int]] = {}

    def __call__(self, observer: Observer) -> list[int]:
        made = self.made.get(id(observer))
        if made is None:
            made = self.made[id(observer)] = self._make(observer)
        return made

    def _make(self, observer: Observer) -> list[int]:
        updates = observer.updates
        if not isinstance(updates, UpdateColumns):
            return []
        of_token = self.writes_of.get(id(updates.tokens))
        if of_token is None:
            of_token = self.writes_of[id(updates.tokens)] = [
                _one_write(self.live.get(token[:2]))  # type: ignore[call-overload]
                for token in updates.tokens
            ]
        return list(map(of_token.__getitem__, updates.token_ids))


def _received(walk: list[int]) -> set[int] | None:
    """The writes a walk received; None if one of them twice, or one no live write wrote."""
    if _NO_WRITE in walk:
        return None
    seen = set(walk)
    seen.discard(_SEVERAL)
    return seen if len(seen) == len(walk) - walk.count(_SEVERAL) else None


class _Owed:
    """The writes (numbers) an observer is owed, as check_completeness finds them."""

    def __init__(self, history: KeyHistory, order: KeyOrder) -> None:
        self.owed = owed = _owed(history, order)
        self.invokes = [w.inv for w in owed]
        numbers = {write: number for number, write in enumerate(history.writes)}
        self.numbers = [numbers[w] for w in owed]
        self.one_domain = len({w.domain for w in owed}) <= 1
        # A write sent this long before an observer's end was acknowledged before it.
        self.slowest = max((w.comp - w.inv for w in owed), default=0)

    def __call__(self, observer: Observer) -> list[int]:
        if observer.start is None:
            return []
        owed, invokes, numbers, end = self.owed, self.invokes, self.numbers, observer.end
        low, high = bisect_right(invokes, observer.start), bisect_left(invokes, end)
        if low >= high:
            return []
        if not self.one_domain or owed[low].domain != observer.domain:
            return [
                numbers[i]
                for i in range(low, high)
                if owed[i].comp < end and owed[i].domain == observer.domain
            ]
        surely = high
        while surely > low and invokes[surely - 1] >= end - self.slowest:
            surely -= 1
        return numbers[low:surely] + [numbers[i] for i in range(surely, high) if owed[i].comp < end]


def _blame_quietly(
    history: KeyHistory,
    walks: _Walks,
    succ: dict[int, dict[int, int]],
    pred: dict[int, dict[int, int]],
    report: Report,
) -> None:
    """:func:`_blame` on walks of write numbers: each observer's first link that breaks
    the majority's, and the first observer to have received the majority's."""
    usual_next = {w: max(c, key=c.__getitem__) for w, c in succ.items()}
    usual_prev = {w: max(c, key=c.__getitem__) for w, c in pred.items()}
    usual = {(a, b) for a, b in usual_next.items() if usual_prev[b] == a}
    blamed: list[tuple[Observer, int]] = []
    for observer in history.observers:
        links = list(pairwise(walks(observer)))
        odd = {(a, b) for a, b in set(links).difference(usual) if a >= 0 and b >= 0}
        if odd:
            blamed.append((observer, list(map(odd.__contains__, links)).index(True) + 1))
    writes = history.writes
    number = {write: n for n, write in enumerate(writes)}
    next_write = {writes[a]: writes[b] for a, b in usual_next.items()}
    prev_write = {writes[b]: writes[a] for b, a in usual_prev.items()}
    witnesses = _first_seen(history, walks, blamed, usual_next, usual_prev)
    for observer, index in blamed:
        walk = walks(observer)
        seen = set(walk)
        report(
            _blamed(
                history, observer, index, writes[walk[index - 1]], writes[walk[index]],
                next_write, prev_write,
                lambda pair: witnesses[(number[pair[0]], number[pair[1]])],
                lambda write, seen=seen: number[write] in seen,  # type: ignore[misc]
            )
        )  # fmt: skip


def _first_seen(
    history: KeyHistory,
    walks: _Walks,
    blamed: list[tuple[Observer, int]],
    usual_next: dict[int, int],
    usual_prev: dict[int, int],
) -> dict[tuple[int, int], tuple[Observer, int]]:
    """For each majority link a blamed observer broke: the first observer to receive
    it, and where (the index of the second of its two updates)."""
    wanted: set[tuple[int, int]] = set()
    for observer, index in blamed:
        walk = walks(observer)
        before, after = walk[index - 1], walk[index]
        if usual_next[before] != after:
            wanted.add((before, usual_next[before]))
        else:
            wanted.add((usual_prev[after], after))
    out: dict[tuple[int, int], tuple[Observer, int]] = {}
    for observer in history.observers:
        if not wanted:
            break
        links = list(pairwise(walks(observer)))
        for link in wanted.intersection(links):
            out[link] = (observer, links.index(link) + 1)
        wanted.difference_update(out)
    return out


def _one_write(numbers: list[int] | None) -> int:
    if not numbers:
        return _NO_WRITE
    return numbers[0] if len(numbers) == 1 else _SEVERAL


def _anomaly(
    kind: str,
    history: KeyHistory,
    events: list[Event],
    message: str,
    detail: dict[str, Any] | None = None,
) -> Anomaly:
    return Anomaly(kind, message, history.session, history.key, events, detail or {})
