"""The ordering and convergence judgement of the concurrency cases, in one place.

Two judges look at the same run: :func:`judge_one_key`, an exact check of what
the case knows it did (every write acknowledged, distinct values), and the
consistency checker (:mod:`harness.checker`) on the history the clients
recorded, which also weighs real time. Either one finding a problem fails the case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from harness.checker import Result, check
from harness.history.recorder import HistoryRecorder


def judge_one_key(
    acknowledged: set[str],
    sequences: Mapping[str, Sequence[str | None]],
    final_reads: Mapping[str, str | None],
) -> list[str]:
    """Problems with one key's history under concurrent writers; empty when it conforms.

    ``acknowledged``: every value whose set was answered ok (all distinct).
    ``sequences``: observer label -> values it was sent, in arrival order.
    ``final_reads``: connection label -> what a get returned after all acks.
    Checks R4.1 (each write once to each observer), R4.3 (one order, no gaps, no
    duplicates) and R3.9 (every final read is the last update).
    """
    problems: list[str] = []
    reference_label, reference = None, None
    for label, sequence in sequences.items():
        counts = Counter(sequence)
        duplicates = sorted(str(v) for v, n in counts.items() if n > 1)
        if duplicates:
            problems.append(f"{label} got duplicates (R4.1): {', '.join(duplicates[:5])}")
        missing = acknowledged - set(counts)
        if missing:
            problems.append(
                f"{label} missed {len(missing)} acknowledged writes (R4.1): "
                f"{', '.join(sorted(missing)[:5])}"
            )
        unknown = set(counts) - acknowledged
        if unknown:
            problems.append(f"{label} got values nobody wrote: {sorted(map(str, unknown))[:5]}")
        if reference is None:
            reference_label, reference = label, list(sequence)
        elif list(sequence) != reference:
            where = next(
                (i for i, (a, b) in enumerate(zip(sequence, reference, strict=False)) if a != b),
                min(len(sequence), len(reference)),
            )
            problems.append(
                f"{label} and {reference_label} saw different orders (R4.3): from update "
                f"#{where} {label} got {list(sequence)[where : where + 3]}, "
                f"{reference_label} got {reference[where : where + 3]}"
            )
    if reference:
        last = reference[-1]
        for label, value in final_reads.items():
            if value != last:
                problems.append(
                    f"{label} read {value!r} after all writes, but the last update was "
                    f"{last!r} (R3.9)"
                )
    return problems


def checker_problems(recorder: HistoryRecorder) -> tuple[Result, list[str]]:
    """The consistency checker's verdict on a recorded history, and its anomalies."""
    verdict = check(recorder.history())
    problems = (
        [f"{a.kind} ({a.message})" for a in verdict.anomalies]
        if verdict.result is Result.INVALID
        else []
    )
    return verdict.result, problems
