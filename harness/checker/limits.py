"""Check 5: the session never holds more keys than ``maxKeys``, and refusals are honest (R3.6).

Both directions are judged from real time alone, leniently:

* A key *surely* holds a value from the moment a non-null set of it was
  acknowledged until the next write of it could have started, provided no
  other write of the key overlapped that set (then either could be last).
  More surely-held keys than the limit at one instant is a breach.
* A key *may* hold a value once any non-null set of it (acknowledged or
  unknown) was sent, except while a delete surely emptied it: from the
  delete's acknowledgement, when every set sent before then had finished
  before the delete was sent, until the next set is sent. A
  KEY_LIMIT_EXCEEDED refusal needs at least ``maxKeys`` other keys that may
  hold a value at some instant while the refused set was pending.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable

from harness.checker import describe
from harness.checker.operations import FAILED, INF, OK, KeyHistory, Write
from harness.checker.verdict import Anomaly

Report = Callable[[Anomaly], None]
Interval = tuple[int, int, str, Write | None]  # start, end, key, the write that proves it


def check_limits(session: str, keys: Iterable[KeyHistory], max_keys: int, report: Report) -> int:
    """Returns how many refusals were judged."""
    histories = list(keys)
    domains = {w.domain for h in histories for w in h.writes}
    if len(domains) != 1:
        return 0  # no writes, or times that cannot be compared
    sure: list[Interval] = []
    maybe: list[Interval] = []
    refusals: list[tuple[KeyHistory, Write]] = []
    for history in histories:
        live = sorted((w for w in history.writes if w.status != FAILED), key=lambda w: w.inv)
        sure.extend(_surely_held(history.key, live))
        maybe.extend(_maybe_held(history.key, live))
        refusals.extend((history, w) for w in history.writes if w.code == "KEY_LIMIT_EXCEEDED")
    _check_breach(session, sure, max_keys, report)
    for history, refused in refusals:
        others = [m for m in maybe if m[2] != history.key]
        peak = _peak(others, refused.inv, refused.comp)
        if peak < max_keys:
            report(
                Anomaly(
                    "key_limit_refusal",
                    f"{describe.operation(refused)} to {history.key!r} was refused with "
                    f"KEY_LIMIT_EXCEEDED, but at most {peak} other keys could hold a value "
                    f"while it was pending (maxKeys {max_keys})",
                    session,
                    history.key,
                    list(refused.events),
                )
            )
    return len(refusals)


def _surely_held(key: str, live: list[Write]) -> list[Interval]:
    starts = [w.inv for w in live]
    out: list[Interval] = []
    latest_end = -INF  # the latest return among writes sent before the current one
    for index, write in enumerate(live):
        alone = latest_end < write.inv
        latest_end = max(latest_end, write.comp)
        if write.value is None or write.status != OK or not alone:
            continue
        following = bisect_left(starts, write.comp)
        if following != index + 1:
            continue  # another write started while this one was pending
        end = starts[following] if following < len(live) else INF
        out.append((write.comp, end, key, write))
    return out


def _maybe_held(key: str, live: list[Write]) -> list[Interval]:
    sets = [w for w in live if w.value is not None]
    if not sets:
        return []
    set_starts = [w.inv for w in sets]
    finished_by = []  # latest return among sets sent so far
    latest = -INF
    for write in sets:
        latest = max(latest, write.comp)
        finished_by.append(latest)
    empty: list[tuple[int, int]] = []
    for delete in live:
        if delete.value is not None or delete.status != OK:
            continue
        before = bisect_left(set_starts, delete.comp)
        if before and finished_by[before - 1] >= delete.inv:
            continue  # a set overlapping the delete may have come after it
        end = set_starts[before] if before < len(sets) else INF
        empty.append((delete.comp, end))
    out: list[Interval] = []
    start = sets[0].inv
    for low, high in sorted(empty):
        if low > start:
            out.append((start, low, key, None))
        start = max(start, high)
    if start < INF:
        out.append((start, INF, key, None))
    return out


def _check_breach(session: str, sure: list[Interval], max_keys: int, report: Report) -> None:
    points = sorted(
        [(s, 1, i) for i, (s, e, _, _) in enumerate(sure) if s < e]
        + [(e, -1, i) for i, (s, e, _, _) in enumerate(sure) if s < e]
    )
    held: set[int] = set()
    for _, delta, index in points:
        if delta < 0:
            held.discard(index)
            continue
        held.add(index)
        if len(held) > max_keys:
            proof = [sure[i] for i in sorted(held)]
            events = [e for _, _, _, w in proof if w is not None for e in w.events[-1:]]
            report(
                Anomaly(
                    "key_limit_breach",
                    f"{len(held)} keys surely held a value at one instant (maxKeys {max_keys}): "
                    f"each was set and acknowledged, and not yet written again",
                    session,
                    None,
                    events,
                    {"keys": sorted(k for _, _, k, _ in proof)},
                )
            )
            return


def _peak(intervals: list[Interval], low: int, high: int) -> int:
    """The most intervals (one per key at any instant) overlapping one instant of [low, high]."""
    # At a tie, starts sort first: the lenient reading, since refusals are judged leniently.
    points = sorted(
        [(max(s, low), -1) for s, e, _, _ in intervals if s <= high and e > low]
        + [(min(e, high + 1), 1) for s, e, _, _ in intervals if s <= high and e > low]
    )
    count = peak = 0
    for _, delta in points:
        count -= delta
        peak = max(peak, count)
    return peak


__all__ = ["check_limits"]
