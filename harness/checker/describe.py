"""The one describer: how every check names an operation, update, observer or event.

Anomaly texts say what was expected and what came, in these words only, so
two checks never name one write two ways. Values are shown as JSON spells them
(``null`` for an empty key), writes by their value and writer (what an update
names them by), and observers with their connection, since observerIds are
scoped per connection (R2.5): one participant's two devices may both hold ``o1``.
"""

from __future__ import annotations

from harness.checker.operations import Input, Observer, Operation, Read, Write
from harness.history.events import Update, Violation


def value(found: str | None) -> str:
    return "null" if found is None else repr(found)


def values(found: list[str | None]) -> str:
    return ", ".join(map(value, found)) or "no write"


def operation(op: Operation) -> str:
    """``the write of 'v1' by alice``, ``the get by bob that returned 'v1'``."""
    if isinstance(op, Write):
        return f"the write of {value(op.value)} by {op.participant}"
    return f"the get by {op.participant} that returned {value(op.value)}"


def who_read(op: Read) -> str:
    """A get as a clause of its own: ``bob read 'v1'``."""
    return f"{op.participant} read {value(op.value)}"


def update(event: Update) -> str:
    return f"{value(event.value)} from {event.by}"


def observer(found: Observer, *, heading: bool = False) -> str:
    """``observer o1 of alice on connection c3``, or as a column heading when
    sequences are shown side by side, ``o1 (alice, c3)``."""
    if heading:
        return f"{found.observer_id} ({found.participant}, {found.conn})"
    return f"observer {found.observer_id} of {found.participant} on connection {found.conn}"


def receiver(event: Violation) -> str:
    """Who received a frame: the participant and its connection, or the connection."""
    if event.participant:
        return f"{event.participant} on connection {event.conn}"
    return f"connection {event.conn}"


def operation_io(input: Input, output: object) -> str:
    """A register operation from its input and output alone (porcupine's DescribeOperation)."""
    kind, written = input
    if kind == "set":
        return f"set {value(written)} -> {output}"
    return f"get -> {value(output)}"  # type: ignore[arg-type]


def state(held: str | None) -> str:
    """What a key holds (porcupine's DescribeState)."""
    return "the key is empty" if held is None else f"the key holds {value(held)}"
