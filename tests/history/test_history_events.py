"""Typed history events: validated on construction, decoded and encoded without loss."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from harness.errors import HistoryError
from harness.history.events import EVENT_TYPES, Closed, Done, Header, Invoke, Update
from harness.history.reader import History, read_history

GOLDEN = sorted((Path(__file__).parents[1] / "checker" / "golden").glob("*.jsonl"))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_golden_lines_decode_and_encode_without_loss(path: Path) -> None:
    # Every field comes back with its value; only the order of the keys may differ.
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    history = read_history([path])
    assert len(history.headers) + len(history.events) == len(lines)
    encoded = [event.to_json() for event in [*history.headers, *history.events]]
    # Headers come first in each file, so sorting by kind keeps each line's position.
    by_line = sorted(lines, key=lambda line: orjson.loads(line)["ev"] != "header")
    assert encoded == [orjson.loads(line) for line in by_line]


def test_each_kind_decodes_to_its_type_with_the_domain() -> None:
    records = [
        {"ev": "header", "clock": "c"},
        {"ev": "invoke", "t": 1, "conn": "a", "req": 1, "op": "set", "key": "k", "value": None},
        {"ev": "done", "t": 2, "conn": "a", "req": 1, "result": "ok", "p": "alice"},
        {"ev": "update", "t": 3, "conn": "b", "obs": "o1", "key": "k", "value": None, "by": "a"},
        {"ev": "closed", "t": 4, "conn": "b", "by_client": True, "violation": True},
        {"ev": "violation", "t": 5, "conn": "b", "reason": "why", "kind": "update_after_stop"},
    ]
    history = History.from_events(records)
    assert [type(e).KIND for e in history.events] == [r["ev"] for r in records[1:]]
    assert {type(e) for e in history.events} == set(EVENT_TYPES.values())
    done, closed = history.events[1], history.events[3]
    assert isinstance(done, Done) and done.participant == "alice" and done.domain == 0
    assert isinstance(closed, Closed) and closed.by_client and closed.after_violation
    assert records[2] == {"ev": "done", "t": 2, "conn": "a", "req": 1, "result": "ok", "p": "alice"}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Invoke("1", "a", 1, "set"), "t"),
        (lambda: Invoke(True, "a", 1, "set"), "t"),  # a bool is no time
        (lambda: Update(1, "a", "o1", "k", 3), "value"),
        (lambda: Done(1, "a", 1, "joined", max_keys="8"), "maxKeys"),
        (lambda: Update.decode({"t": 1, "conn": "a", "key": "k"}, 0), "obs"),
    ],
)
def test_construction_validates_and_names_the_json_field(build, field: str) -> None:
    with pytest.raises(HistoryError, match=f"without a valid '{field}'"):
        build()


def test_events_are_immutable_and_encode_from_their_fields() -> None:
    event = Invoke(5, "a", 2, "get", participant="alice", key="k")
    with pytest.raises(AttributeError):
        event.time = 6  # type: ignore[misc]
    record = event.to_json()
    assert record == {"ev": "invoke", "t": 5, "conn": "a", "req": 2, "op": "get", "p": "alice",
                      "key": "k"}  # fmt: skip
    assert Invoke.decode(record, 0)[:-1] == event[:-1]  # the same, but for the record kept
    assert Header.decode({"ev": "header", "clock": "c"}).clock == "c"


def test_reading_a_history_imports_no_client() -> None:
    # The checker is a pure function of a history: reading one must not pull in clients.
    code = (
        "import sys, harness.history.reader, harness.checker; "
        "print(sorted(m for m in sys.modules if m.startswith('harness.client')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
