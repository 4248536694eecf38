"""``check(history) -> Verdict``: every check, key by key, as one pure function."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.checker import describe
from harness.checker.limits import check_limits
from harness.checker.model import REGISTER
from harness.checker.operations import FAILED, UNKNOWN, KeyHistory, Partitioned, Write
from harness.checker.order import check_completeness, check_order, check_quietly
from harness.checker.realtime import check_convergence, check_with_order
from harness.checker.search import DEFAULT_BUDGET, linearizable
from harness.checker.verdict import KEEP_PER_KIND, KINDS, Anomaly, Result, Verdict
from harness.history.events import Violation
from harness.history.reader import History, paused_gc


class Collector:
    """Anomalies by kind: all counted, the first KEEP_PER_KIND of each kept."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.kept: dict[str, list[Anomaly]] = defaultdict(list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __call__(self, anomaly: Anomaly) -> None:
        self.counts[anomaly.kind] += 1
        if len(self.kept[anomaly.kind]) < KEEP_PER_KIND:
            self.kept[anomaly.kind].append(anomaly)

    def merge(self, other: Collector) -> None:
        """Take ``other``'s anomalies as if each had been reported here, in its order."""
        for kind, count in other.counts.items():
            self.counts[kind] += count
            kept = self.kept[kind]
            kept.extend(other.kept[kind][: KEEP_PER_KIND - len(kept)])


def check(
    history: History | Iterable[Mapping[str, Any]],
    *,
    search_budget: int = DEFAULT_BUDGET,
    per_key_order: bool = True,
    not_promised: Sequence[str] = (),
) -> Verdict:
    """Decide whether one order of writes per key explains everything in ``history``.

    ``history`` is what :func:`harness.history.reader.read_history` returns, or the
    events themselves (header first). Pure: it reads the history and nothing else.

    A store adapter's store may promise less than the store protocol: with
    ``per_key_order`` False only convergence and the values read are judged, and
    ``not_promised`` (one line per check the store's promises leave out, from its
    capabilities) is said in the verdict's notes.
    """
    # The checker allocates millions of small objects and frees none until it returns.
    with paused_gc():
        if not isinstance(history, History):
            history = History.from_events(history)
        return _check(history, search_budget, per_key_order, list(not_promised))


def _check(history: History, search_budget: int, per_key_order: bool, notes: list[str]) -> Verdict:
    parts = REGISTER.partition(history)
    report = Collector()
    tally: Counter[str] = Counter()
    _check_violations(parts.violations, report)
    for key_history in parts.keys.values():
        judge_key(key_history, search_budget, per_key_order, report, tally)
    by_session: dict[str, list[KeyHistory]] = defaultdict(list)
    for key_history in parts.keys.values():
        by_session[key_history.session].append(key_history)
    for session, histories in by_session.items():
        judge_session(session, histories, parts.max_keys.get(session), report, tally, notes)
    stats = {"events": len(history.events), "keys": len(parts.keys)}
    return conclude(
        report, tally, stats, parts, search_budget, notes, history.truncated, bool(history.events)
    )


def judge_key(
    key_history: KeyHistory,
    search_budget: int,
    per_key_order: bool,
    report: Collector,
    tally: Counter[str],
) -> None:
    """Every check of one (session, key) but the session-wide limits; counts go to ``tally``.

    Keys never constrain each other, so this is the whole of the per-key work,
    shared by :func:`check` and the streaming checker (:mod:`harness.checker.stream`).
    """
    _check_values_read(key_history, report)
    if not per_key_order:  # convergence only: no one order of updates is owed
        tally["quiet"] += check_convergence(key_history, None, report)
        return
    quiet = check_quietly(key_history, report)
    if quiet is None:
        order = check_order(key_history, report)
        delivered = check_completeness(key_history, order, report)
    else:
        order, delivered = quiet
    tally["ambiguous"] += order.ambiguous_updates
    tally["delivered"] += delivered
    chain = order.chain
    if chain is not None:
        before = report.total
        found_ambiguous, found_outside = check_with_order(key_history, chain, report)
        tally["ambiguous"] += found_ambiguous
        tally["outside"] += found_outside
        if report.total == before and not _covers_reads(key_history, chain):
            # The order cannot say when those writes took effect (if they did);
            # the search can, though blind to observers: it adds what it proves.
            outcome = _search(key_history, search_budget, report)
            tally["searched"] += 1
            tally["undecided"] += outcome is None
    elif not order.broken:
        outcome = _search(key_history, search_budget, report)
        tally["searched"] += bool(key_history.reads)
        tally["undecided"] += outcome is None
    tally["quiet"] += check_convergence(key_history, chain, report)


def judge_session(
    session: str,
    histories: list[KeyHistory],
    max_keys: int | None,
    report: Collector,
    tally: Counter[str],
    notes: list[str],
) -> None:
    """The key limit of one session, judged over its keys' writes (the rest is unused)."""
    if max_keys is not None:
        tally["refusals"] += check_limits(session, histories, max_keys, report)
    elif any(w.code == "KEY_LIMIT_EXCEEDED" for h in histories for w in h.writes):
        notes.append(
            f"session {session!r}: no join recorded, so its key limit is unknown "
            "and KEY_LIMIT_EXCEEDED refusals were not judged"
        )


def conclude(
    report: Collector,
    tally: Counter[str],
    stats: dict[str, int],
    parts: Partitioned,
    search_budget: int,
    notes: list[str],
    truncated: list[str],
    any_events: bool,
) -> Verdict:
    """The verdict from what the checks found; ``parts`` gives the counts that span keys."""
    ambiguous, outside = tally["ambiguous"], tally["outside"]
    searched, undecided = tally["searched"], tally["undecided"]
    stats.update(
        requests=parts.requests,
        updates=parts.updates,
        deliveries_checked=tally["delivered"],
        quiescent_gets=tally["quiet"],
        refusals_judged=tally["refusals"],
        keys_searched=searched,
        violations=len(parts.violations),
    )
    if ambiguous:
        notes.append(
            f"{ambiguous} updates or gets carried a value written more than once; "
            "they were not used to recover the order, so anomalies involving them "
            "may be missed"
        )
    if outside:
        notes.append(
            f"{outside} gets may have returned a write whose outcome is unknown and that "
            "no observer placed in the order; they bounded nothing in the real-time check"
        )
    if searched:
        notes.append(
            f"{searched} keys had no single order of writes from observers, or gets of "
            "writes it left out; their gets and writes were checked by a linearizability "
            "search"
        )
    if undecided:
        notes.append(
            f"{undecided} keys were too large for the search budget "
            f"({search_budget} steps): their real-time check is unknown"
        )
    if parts.domains > 1:
        notes.append(
            f"{parts.domains} clock domains (machines): times were compared only "
            "within one domain, so checks across machines are weaker"
        )
    if truncated:
        notes.append("lines cut short by a crash were skipped: " + ", ".join(truncated))
    examples = {kind: min(kept, key=lambda a: len(a.events)) for kind, kept in report.kept.items()}
    if report.counts:
        result = Result.INVALID
    elif undecided or not any_events:
        result = Result.UNKNOWN
        if not any_events:
            notes.append("the history holds no events")
    else:
        result = Result.VALID
    return Verdict(
        result,
        dict(report.counts),
        examples,
        [a for kept in report.kept.values() for a in kept],
        notes,
        stats,
    )


#: Violation kinds with an anomaly kind of their own; any other is ``protocol_violation``.
_NAMED_VIOLATIONS = {kind for kind, (check, _, _) in KINDS.items() if check == "protocol"}


def _check_violations(violations: list[Violation], report: Collector) -> None:
    """Every frame a participant's client saw break the spec is an anomaly in itself.

    The client failed that connection at once, so nothing else in the history
    follows from the frame: the anomaly quotes it and cites what it broke.
    """
    for event in violations:
        kind = event.kind if event.kind in _NAMED_VIOLATIONS else "protocol_violation"
        cited = event.requirement or KINDS[kind][1]
        quoted = f": {_quote(event.frame)}" if event.frame is not None else ""
        report(
            Anomaly(
                kind,
                f"{describe.receiver(event)} received a frame that breaks {cited}: "
                f"{event.reason}; the client failed its connection on this frame{quoted}",
                event.session,
                event.key,
                [event],
                requirement=cited,
            )
        )


def _quote(frame: str, limit: int = 300) -> str:
    text = repr(frame)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(frame)} characters in all)"


def _check_values_read(history: KeyHistory, report: Collector) -> None:
    """A get may only return a value some set wrote and the server accepted."""
    statuses: dict[str | None, set[str]] = defaultdict(set)
    for write in history.writes:
        statuses[write.value].add(write.status)
    for read in history.reads:
        if read.value is None:
            continue
        found = statuses.get(read.value)
        if not found:
            report(
                Anomaly(
                    "unknown_value",
                    f"{describe.who_read(read)}, which no recorded set wrote",
                    history.session,
                    history.key,
                    list(read.events),
                )
            )
        elif found == {FAILED}:
            refused = next(w for w in history.writes if w.value == read.value)
            report(
                Anomaly(
                    "failed_write_visible",
                    f"{describe.who_read(read)}, whose set was refused with {refused.code}",
                    history.session,
                    history.key,
                    [*refused.events, *read.events],
                )
            )


def _covers_reads(history: KeyHistory, chain: list[Any]) -> bool:
    """Whether every get returned a value that some write in the order wrote."""
    values = {w.value for w in chain}
    unchained = {w.value for w in history.writes if w.status == UNKNOWN} - values
    return not any(r.value in unchained for r in history.reads)


def _search(history: KeyHistory, budget: int, report: Collector) -> bool | None:
    ops = [w for w in history.writes if w.status != FAILED]
    if not history.reads or not ops:
        return True  # writes alone are always linearizable; gets of a never-written key are null
    if len({op.domain for op in [*ops, *history.reads]}) > 1:
        return None
    result = linearizable([*ops, *history.reads], REGISTER, budget=budget)
    if result.linearizable is False and result.stuck is not None:
        stuck = result.stuck
        last_writes = [op for op in result.longest if isinstance(op, Write)][-2:]
        report(
            Anomaly(
                "nonlinearizable",
                f"no order of this key's writes explains {describe.operation(stuck)}; "
                "the longest explanation found ends with "
                f"{describe.values([w.value for w in last_writes])}, after which "
                f"{REGISTER.describe_state(result.state)}",
                history.session,
                history.key,
                [e for op in [*last_writes, stuck] for e in op.events],
            )
        )
    return result.linearizable
