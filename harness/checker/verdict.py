"""What the checker concludes: a verdict, anomalies by kind, and how to print them.

A verdict is ``valid`` (one order of writes explains everything), ``invalid``
(at least one anomaly, each with the few events that prove it) or ``unknown``
(not enough information: a search ran out of budget, or nothing checkable).
Like porcupine's ``Ok | Illegal | Unknown``, never a bare bool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from harness.history.events import Event


class Result(StrEnum):
    """porcupine's ``Ok | Illegal | Unknown``; a StrEnum, so JSON and text spell it alike."""

    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


#: kind, the check that finds it, the requirement it breaks, one line. A violation
#: kind ("protocol" check) names what a participant's client saw break the spec,
#: frame by frame; ``protocol_violation`` cites R1.4 (a frame off its schema) by
#: default, and each anomaly its own requirement.
_KINDS_TABLE = """
duplicate_update             order         R4.3  an observer received the same write twice
unknown_value                order         R4.2  a value no write in the history wrote
order_divergence             order         R4.3  observers saw writes in different orders
gap                          order         R4.3  an observer skipped a write that others saw in between
lost_update                  completeness  R4.1  an acknowledged (or read) write never reached an observer
failed_write_visible         completeness  R5.3  a refused write was seen
convergence                  convergence   R3.9  reads after quiescence disagree or miss the last write
realtime_write_order         realtime      R3.9  a write ordered before one acknowledged earlier
stale_read                   realtime      R3.8  a get returned a value already overwritten
future_read                  realtime      R3.1  a get returned a value not yet written
nonlinearizable              realtime      R3.8  no order of the key's operations explains its gets
key_limit_breach             limits        R3.6  the session held more keys than its limit
key_limit_refusal            limits        R3.6  KEY_LIMIT_EXCEEDED while the limit was not reached
update_after_stop            protocol      R4.5  an update for an observer after its stopObserving was acknowledged
update_before_observing      protocol      R4.8  an update for an observer before the 'observing' reply that announces it
update_for_unknown_observer  protocol      R4.8  an update for an observerId no 'observing' reply on that connection announced
protocol_violation           protocol      R1.4  a participant received a frame the spec forbids
"""  # noqa: E501 (one row a line: the table is the documentation)

#: anomaly kind -> (the check that finds it, the requirement it breaks, one line)
KINDS: dict[str, tuple[str, str, str]] = {
    kind: (check, requirement, summary)
    for kind, check, requirement, summary in (
        line.split(None, 3) for line in _KINDS_TABLE.strip().splitlines()
    )
}

#: How many anomalies of one kind are kept in full; the rest are only counted.
KEEP_PER_KIND = 20


@dataclass
class Anomaly:
    kind: str
    message: str
    session: str | None = None
    key: str | None = None
    #: The events that prove it; reports quote them as recorded.
    events: list[Event] = field(default_factory=list)
    #: Extra structure for reports, e.g. two observers' sequences side by side.
    detail: dict[str, Any] = field(default_factory=dict)
    #: The requirement broken, when it is not the kind's own (protocol violations).
    requirement: str | None = None

    @property
    def cites(self) -> str:
        return self.requirement or KINDS[self.kind][1]

    def to_json(self) -> dict[str, Any]:
        check = KINDS[self.kind][0]
        return {
            "kind": self.kind,
            "check": check,
            "requirement": self.cites,
            "session": self.session,
            "key": self.key,
            "message": self.message,
            "events": [_public(event) for event in self.events],
            **({"detail": self.detail} if self.detail else {}),
        }


def _public(event: Event) -> dict[str, Any]:
    return event.to_json()


@dataclass
class Verdict:
    result: Result
    counts: dict[str, int] = field(default_factory=dict)
    #: kind -> the smallest counterexample kept for it
    examples: dict[str, Anomaly] = field(default_factory=dict)
    #: Every anomaly kept (up to KEEP_PER_KIND per kind), for reports that want more.
    anomalies: list[Anomaly] = field(default_factory=list)
    #: What limited the verdict: ambiguous values, keys only searched, clock domains.
    notes: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.result is Result.VALID

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "counts": dict(sorted(self.counts.items())),
            "examples": {kind: a.to_json() for kind, a in sorted(self.examples.items())},
            "notes": self.notes,
            "stats": self.stats,
        }

    def to_text(self) -> str:
        lines = [f"verdict: {self.result.upper()}"]
        stats = ", ".join(f"{value} {name}" for name, value in self.stats.items())
        if stats:
            lines.append(f"checked: {stats}")
        for kind, count in sorted(self.counts.items()):
            check, _, summary = KINDS[kind]
            example = self.examples[kind]
            cited = sorted({a.cites for a in self.anomalies if a.kind == kind} or {example.cites})
            lines.append("")
            lines.append(f"{kind} ({check} check, {', '.join(cited)}): {count}, {summary}")
            where = f"session {example.session!r}, key {example.key!r}: "
            lines.append(f"  {where if example.key is not None else ''}{example.message}")
            lines.extend(_side_by_side(example.detail.get("sequences")))
            for event in example.events:
                lines.append("    " + orjson.dumps(_public(event)).decode())
        if self.notes:
            lines.append("")
            lines.append("notes:")
            lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)


def _side_by_side(sequences: dict[str, list[str]] | None) -> list[str]:
    if not sequences:
        return []
    names = list(sequences)
    columns = [[name, *("" if v is None else str(v) for v in sequences[name])] for name in names]
    widths = [min(48, max(len(cell) for cell in column)) for column in columns]
    rows = max(len(column) for column in columns)
    out = []
    for row in range(rows):
        cells = [
            (column[row] if row < len(column) else "")[:width].ljust(width)
            for column, width in zip(columns, widths, strict=True)
        ]
        out.append("    " + " | ".join(cells).rstrip())
    return out
