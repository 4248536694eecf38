"""The values the harness writes: unique, self-describing, any size.

    p7#42@1795500529123456789~~~~~~~~

A value names its writer and sequence number, so every write in a history can
be told apart (the checker relies on that), and carries the wall-clock time it
was sent, so notification latency can be measured by an observer in another
process or on another machine (subject to clock skew between them). Filler
pads it to the size a scenario asks for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_FILLER = "~"


@dataclass(frozen=True, slots=True)
class WrittenValue:
    writer: str
    seq: int
    wall_ns: int


def make_value(writer: str, seq: int, size: int = 0, wall_ns: int | None = None) -> str:
    """A unique value from ``writer``; padded with filler to ``size`` characters if shorter."""
    stamp = time.time_ns() if wall_ns is None else wall_ns
    text = f"{writer}#{seq}@{stamp}"
    return text + _FILLER * (size - len(text)) if size > len(text) else text


def parse_value(value: str | None) -> WrittenValue | None:
    """What a harness-written value says, or None for a value someone else chose."""
    if not value:
        return None
    head = value.rstrip(_FILLER)
    writer, hash_sign, rest = head.rpartition("#")
    seq_text, at_sign, stamp_text = rest.partition("@")
    if not (hash_sign and at_sign and writer and seq_text.isdigit() and stamp_text.isdigit()):
        return None
    return WrittenValue(writer, int(seq_text), int(stamp_text))
