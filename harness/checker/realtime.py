"""Check 4 with a known write order, and check 3: real time, linearizable gets, convergence.

With the order of writes ``W1..Wn`` recovered from observers, linearizability of
one key is a system of bounds on the instants ``a1 <= a2 <= ... <= an`` at which
the writes took effect: ``Wi`` took effect inside its own call..return window,
and a get that returned ``Wk`` (``W0`` is the empty key) took effect at an
instant ``t`` in its window with ``ak <= t`` and ``t <= a(k+1)``; so
``ak <= get.return`` and ``a(k+1) >= get.call``. Such a system is infeasible
exactly when some lower bound on an earlier write exceeds an upper bound on a
later (or the same) one, and the two operations that set those bounds are the
counterexample. One pass with a running maximum finds them: polynomial, in
fact linear after sorting, where a search would be exponential.

Times from different clock domains (machines) cannot be compared, so the
system is solved once per domain, with that domain's operations only.

Writes whose outcome is unknown may be missing from the order (no observer
received them): a get that one of them may explain bounds nothing, whatever
writes in the order wrote the same value (see :mod:`harness.checker.unordered`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from harness.checker import describe
from harness.checker.operations import INF, OK, UNKNOWN, KeyHistory, Read, Write
from harness.checker.unordered import Unordered, applied_before
from harness.checker.verdict import Anomaly

Report = Callable[[Anomaly], None]
Source = Write | Read


def check_with_order(history: KeyHistory, chain: list[Write], report: Report) -> tuple[int, int]:
    """Check gets and write order against ``chain``.

    Returns how many gets were ambiguous (their value written more than once in
    the chain) and how many a write outside the chain may explain.
    """
    position = {write: index for index, write in enumerate(chain, 1)}
    by_value: dict[str | None, list[int]] = defaultdict(list)
    for write in chain:
        by_value[write.value].append(position[write])
    by_value[None].insert(0, 0)  # the key before any write
    n = len(chain)
    domains = {w.domain for w in chain} | {r.domain for r in history.reads}
    unordered = Unordered(history, chain)
    ambiguous = outside = 0
    for domain in sorted(domains):
        # lower[i] / upper[i]: the tightest bound on a_i and who set it.
        lower: list[tuple[int, Source | None]] = [(-INF, None)] * (n + 2)
        upper: list[tuple[int, Source | None]] = [(INF, None)] * (n + 2)
        for write in chain:
            if write.domain == domain:
                i = position[write]
                lower[i] = max(lower[i], (write.inv, write), key=_first)
                upper[i] = min(upper[i], (write.comp, write), key=_first)
        multi: list[tuple[Read, list[int]]] = []
        settled = applied_before(chain, domain) if unordered else None
        for read in history.reads:
            if read.domain != domain:
                continue
            floor = -INF
            if settled is not None and read.value in unordered.by_value:
                floor = settled(read.inv)
                if unordered.explains(read, floor):
                    outside += 1
                    continue
            candidates = by_value.get(read.value, [])
            if not candidates:
                # Written only outside the chain, or by no live write at all (then the
                # value check reports it as unknown_value or failed_write_visible).
                anomaly = unordered.blame(read, floor)
                if anomaly is not None:
                    report(anomaly)
                continue
            if len(candidates) > 1:
                multi.append((read, candidates))
                continue
            k = candidates[0]
            if k:
                upper[k] = min(upper[k], (read.comp, read), key=_first)
            if k < n:
                lower[k + 1] = max(lower[k + 1], (read.inv, read), key=_first)
        _solve(history, chain, lower, upper, report)
        ambiguous += _check_ambiguous(history, chain, lower, upper, multi, unordered, report)
    return ambiguous, outside


def _first(bound: tuple[int, Source | None]) -> int:
    return bound[0]


def _solve(
    history: KeyHistory,
    chain: list[Write],
    lower: list[tuple[int, Source | None]],
    upper: list[tuple[int, Source | None]],
    report: Report,
) -> None:
    best: tuple[int, Source | None] = (-INF, None)
    blamed: set[int] = set()
    for i in range(1, len(chain) + 1):
        if lower[i][0] > best[0]:
            best = lower[i]
        bound, source = upper[i]
        if best[0] > bound and source is not None and best[1] is not None:
            pair = (id(best[1]), id(source))
            if pair[0] in blamed or pair[1] in blamed:
                continue
            blamed.update(pair)
            report(_explain(history, chain, best[1], source, i))


def _explain(
    history: KeyHistory, chain: list[Write], late: Source, early: Source, i: int
) -> Anomaly:
    """``late`` forces some write at or before position i after ``early`` forces position i."""
    events = [*early.events, *late.events]
    if isinstance(late, Write) and isinstance(early, Write):
        kind = "realtime_write_order"
        message = (
            f"{describe.operation(early)} was acknowledged before {describe.operation(late)} was "
            "sent, yet observers received it after"
        )
    elif isinstance(late, Read) and isinstance(early, Write):
        kind = "stale_read"
        message = (
            f"{describe.operation(late)} was sent after {describe.operation(early)} was "
            f"acknowledged: it should have returned {describe.value(early.value)} or a later "
            "write"
        )
    elif isinstance(late, Write):
        kind = "future_read"
        message = (
            f"{describe.operation(early)} was answered before {describe.operation(late)}, "
            "which comes no later in the order, was even sent"
        )
    else:
        kind = "stale_read"
        message = (
            f"after {describe.operation(early)} was answered, {describe.operation(late)}, "
            "an older value, was sent"
        )
    window = _chain_window(chain, i)
    return Anomaly(kind, message, history.session, history.key, events, {"write_order": window})


def _chain_window(chain: list[Write], i: int, radius: int = 3) -> list[str]:
    low, high = max(0, i - 1 - radius), min(len(chain), i + radius)
    return [describe.value(w.value) for w in chain[low:high]]


def _check_ambiguous(
    history: KeyHistory,
    chain: list[Write],
    lower: list[tuple[int, Source | None]],
    upper: list[tuple[int, Source | None]],
    multi: list[tuple[Read, list[int]]],
    unordered: Unordered,
    report: Report,
) -> int:
    """A get whose value several writes wrote needs one of them to fit; checked alone."""
    if not multi:
        return 0
    n = len(chain)
    prefix_lower = [-INF] * (n + 2)
    for i in range(1, n + 1):
        prefix_lower[i] = max(prefix_lower[i - 1], lower[i][0])
    suffix_upper = [INF] * (n + 2)
    for i in range(n, 0, -1):
        suffix_upper[i] = min(suffix_upper[i + 1], upper[i][0])
    for read, candidates in multi:
        if not any(
            prefix_lower[k] <= read.comp and read.inv <= suffix_upper[k + 1] for k in candidates
        ):
            unseen = len(unordered.by_value.get(read.value, ()))
            also = (
                f" (nor, as far as observers tell, any of the {unseen} whose outcome is unknown "
                "and that the order left out)"
                if unseen
                else ""
            )
            report(
                Anomaly(
                    "stale_read",
                    f"{describe.who_read(read)}, and none of the {len(candidates)} writes of "
                    f"that value was current at any instant while it was pending{also}",
                    history.session,
                    history.key,
                    list(read.events),
                )
            )
    return len(multi)


def check_convergence(history: KeyHistory, chain: list[Write] | None, report: Report) -> int:
    """After the last write, every get on every connection returns the last write (R3.9).

    Returns how many gets were quiescent (sent after every write to the key had
    finished or been given up on, in the same clock domain), i.e. how many this
    check could judge. A write given up on (its outcome unknown) may still take
    effect after that, at any instant, or never: a quiescent get may return its
    value. Any other value is the one the key held when the writes finished, so
    the gets returning one all agree, and none follows a get that saw another
    value (a pending write had replaced it by then, and nothing writes it again).
    """
    live = [w for w in history.writes if w.status != "failed"]
    if not history.reads:
        return 0
    domains = {w.domain for w in live}
    if len(domains) > 1:
        return 0
    settled = max((w.gave_up for w in live), default=-INF)
    quiet = [r for r in history.reads if r.inv > settled and (not domains or r.domain in domains)]
    if not quiet:
        return 0
    pending = {w.value for w in live if w.status == UNKNOWN}
    fixed = [r for r in quiet if r.value not in pending]
    if not fixed:
        return len(quiet)
    first = fixed[0]
    for read in fixed[1:]:
        if read.value != first.value:
            report(
                Anomaly(
                    "convergence",
                    f"after every write had finished, {describe.who_read(first)} "
                    f"but {describe.who_read(read)}",
                    history.session,
                    history.key,
                    [*first.events, *read.events],
                )
            )
            return len(quiet)
    changed = min((r for r in quiet if r.value != first.value), key=_returned, default=None)
    again = max(fixed, key=_sent)
    if changed is not None and changed.comp < again.inv:
        report(
            Anomaly(
                "convergence",
                f"after every write had finished, {describe.who_read(changed)}, yet "
                f"{describe.who_read(again)} again when asking later, and no write still "
                "pending wrote it",
                history.session,
                history.key,
                [*changed.events, *again.events],
            )
        )
        return len(quiet)
    allowed = _possible_last(live, chain)
    if first.value not in allowed:
        last = sorted(allowed, key=str)[:3]
        report(
            Anomaly(
                "convergence",
                f"after every write had finished, gets return {describe.value(first.value)}, "
                f"but the last write is {' or '.join(map(describe.value, last))}",
                history.session,
                history.key,
                list(first.events),
            )
        )
    return len(quiet)


def _returned(read: Read) -> int:
    return read.comp


def _sent(read: Read) -> int:
    return read.inv


def _possible_last(live: list[Write], chain: list[Write] | None) -> set[str | None]:
    if not live:
        return {None}
    # A write whose reply was lost may have been applied last, or not at all.
    maybe = {w.value for w in live if w.status == UNKNOWN}
    acknowledged = [w for w in chain or () if w.status == OK]
    if acknowledged:
        # Writes after the last acknowledged one in the order are unknown: in ``maybe``.
        return maybe | {acknowledged[-1].value}
    ok = [w for w in live if w.status == OK]
    if not ok:
        return maybe | {None}
    latest_start = max(w.inv for w in ok)
    # Any write not over before the last one began may have been applied last.
    return maybe | {w.value for w in ok if w.comp >= latest_start}
