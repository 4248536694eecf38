"""The one describer: every check names writes, gets and observers in the same words."""

from __future__ import annotations

from pathlib import Path

from harness.checker import check, describe
from harness.checker.operations import OK, Observer, Read, Write
from harness.history.reader import read_history

GOLDEN = Path(__file__).parent / "golden"


def test_values_writes_gets_and_observers_have_one_spelling() -> None:
    write = Write("alice", None, 1, 2, OK, 0, 2, [])
    read = Read("bob", "v1", 3, 4, 0, [])
    assert describe.value(None) == "null" and describe.value("v1") == "'v1'"
    assert describe.operation(write) == "the write of null by alice"
    assert describe.operation(read) == "the get by bob that returned 'v1'"
    assert describe.who_read(read) == "bob read 'v1'"
    observer = Observer("c3", "alice", "o1", 0)
    # observerIds are scoped per connection (R2.5): the connection is always named.
    assert describe.observer(observer) == "observer o1 of alice on connection c3"
    assert describe.observer(observer, heading=True) == "o1 (alice, c3)"


def test_anomaly_texts_say_what_was_expected_and_what_came() -> None:
    gap = check(read_history([GOLDEN / "gap.invalid.jsonl"])).examples["gap"].message
    assert "(and most others) received the write of 'v2' by bob" in gap
    assert "on connection c received the write of 'v3' by bob" in gap
    stale = check(read_history([GOLDEN / "stale_read.invalid.jsonl"])).examples["stale_read"]
    assert "it should have returned 'v2' or a later write" in stale.message
