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
            if usual_next[before] is not after:
                expected, anchor, word = usual_next[before], before, "after"
                pair = (before, expected)
            elif usual_prev[after] is not before:
                expected, anchor, word = usual_prev[after], after, "before"
                pair = (expected, after)
            else:
                continue
            witness, witness_index = first_seen[pair]
            kind = "order_divergence" if expected in result.seen[observer] else "gap"
            got = after if word == "after" else before
            report(
                _anomaly(
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
                            describe.observer(witness, heading=True): _window(
                                witness, witness_index
                            ),
                            describe.observer(observer, heading=True): _window(observer, index),
                        }
                    },
                )
            )
            break  # one anomaly per observer: the rest of its sequence follows from it


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
                events = [observer.start_event] if observer.start_event else []
                report(
                    _anomaly(
                        "lost_update",
                        history,
                        [*events, *write.events],
                        f"{describe.observer(observer)} was active from before "
                        f"{describe.operation(write)} was sent until after it was acknowledged, "
                        "and never received it",
                    )
                )
    return checked


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


def check_quietly(history: KeyHistory) -> tuple[KeyOrder, int] | None:
    """Checks 1 and 2 on observers' update columns, for a key they find nothing wrong
    with: what :func:`check_order` and :func:`check_completeness` give then.

    None when the observers' updates are not columns
    (:class:`~harness.history.segments.UpdateColumns`), or when the checks would
    report an anomaly: a value no live write wrote, an update received twice,
    observers that disagree on an order, one that missed a write it was owed. Those
    two functions then judge the key, and say what they found. This one runs the
    same rules over arrays of write numbers, a pass of built-in functions each,
    where they step through every update: the verdict of a long run waits on it.
    """
    observers = history.observers
    if not all(isinstance(o.updates, UpdateColumns) or not o.updates for o in observers):
        return None
    result = KeyOrder()
    by_token = result.by_token
    live: dict[Token, list[int]] = {}
    for number, write in enumerate(history.writes):
        by_token.setdefault(write.token, []).append(write)
        if write.status != FAILED:
            live.setdefault(write.token, []).append(number)
    owed = _owed(history, result)
    invokes = [w.inv for w in owed]
    numbers = {write: number for number, write in enumerate(history.writes)}
    owed_numbers = [numbers[w] for w in owed]
    one_domain = len({w.domain for w in owed}) <= 1
    # Writes sent this long before an observer's end were acknowledged before it.
    slowest = max((w.comp - w.inv for w in owed), default=0)
    #: Per token list (one a key), each token's write: its number, or a mark.
    writes_of: dict[int, list[int]] = {}
    links: set[tuple[int, int]] = set()
    received: set[int] = set()
    delivered = 0
    for observer in observers:
        seen = _walk(observer, live, writes_of, links, result)
        if seen is None:
            return None  # unknown_value, failed_write_visible or duplicate_update
        received |= seen
        if observer.start is None:
            continue
        start, end = observer.start, observer.end
        low, high = bisect_right(invokes, start), bisect_left(invokes, end)
        if low >= high:
            continue
        if not one_domain or owed[low].domain != observer.domain:
            owed_here = [
                owed_numbers[i]
                for i in range(low, high)
                if owed[i].comp < end and owed[i].domain == observer.domain
            ]
        else:
            surely = high
            while surely > low and invokes[surely - 1] >= end - slowest:
                surely -= 1
            owed_here = owed_numbers[low:surely]
            owed_here += [owed_numbers[i] for i in range(surely, high) if owed[i].comp < end]
        delivered += len(owed_here)
        if not seen.issuperset(owed_here):
            return None  # lost_update
    writes = history.writes
    succ: dict[Write, Write] = {}
    pred: set[Write] = set()
    for before, after in links:
        if before < 0 or after < 0:
            continue
        first, then = writes[before], writes[after]
        if first in succ or then in pred:
            return None  # two orders: a gap or an order_divergence
        succ[first] = then
        pred.add(then)
    chains, placed = _chains(succ)
    if not placed.issuperset(succ):
        return None  # a cycle
    result.chain = _the_chain(history, chains, placed, {writes[n] for n in received})
    return result, delivered


def _walk(
    observer: Observer,
    live: dict[Token, list[int]],
    writes_of: dict[int, list[int]],
    links: set[tuple[int, int]],
    result: KeyOrder,
) -> set[int] | None:
    """The numbers of the writes ``observer`` received, its links added to ``links``;
    None if it received an update of no live write, or of one write twice."""
    updates = observer.updates
    if not isinstance(updates, UpdateColumns):
        return set()  # no updates
    of_token = writes_of.get(id(updates.tokens))
    if of_token is None:
        of_token = writes_of[id(updates.tokens)] = [
            _one_write(live.get(token[:2]))
            for token in updates.tokens  # type: ignore[call-overload]
        ]
    walk = list(map(of_token.__getitem__, updates.token_ids))
    if _NO_WRITE in walk:
        return None
    several = walk.count(_SEVERAL)
    seen = set(walk)
    seen.discard(_SEVERAL)
    if len(seen) != len(walk) - several:
        return None
    result.ambiguous_updates += several
    # Consecutive updates of known writes are links; one of several writes breaks them.
    links.update(pairwise(walk))
    return seen


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
