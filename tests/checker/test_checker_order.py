"""check_quietly, the order and completeness checks on a segment's update columns: for
every key, the very anomalies check_order and check_completeness report, in their order,
and what they give; or None, having said nothing, for the few anomalies it leaves them.

Each key is judged both ways on one key history, the one the streaming checker
builds from a segment, so the full checks read the same updates, as events.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_checker_properties import HEADER, _invoke_observes, histories
from test_checker_stream import GOLDEN, MANY, _one_changed, soup

from harness.checker.operations import KeyHistory, partition
from harness.checker.order import check_completeness, check_order, check_quietly
from harness.checker.verdict import Anomaly
from harness.history.reader import History, read_history
from harness.history.segments import Segments

#: The anomalies check_quietly reports (lost_update is the real-time check's too: a
#: golden history with a longer name shows that one).
QUIET_KINDS = {"gap", "lost_update", "order_divergence"}


def _key_histories(history: History) -> Iterator[KeyHistory]:
    with tempfile.TemporaryDirectory(prefix="order-") as directory:
        segments = Segments(directory)
        segments.feed(history.events)
        segments.finish()
        for session_key in segments.keys:
            loaded = segments.load(session_key)
            found = partition(loaded.history, loaded.updates_of).keys.get(session_key)
            if found is not None:
                yield found


def _both_ways(history: History) -> tuple[int, int]:
    """Judge every key both ways; how many keys the quiet checks judged, and how many
    they reported on or left to the full checks (which then reported)."""
    quiet_keys = reported_keys = 0
    for key_history in _key_histories(history):
        said: list[Anomaly] = []
        quiet = check_quietly(key_history, said.append)
        found: list[Anomaly] = []
        order = check_order(key_history, found.append)
        delivered = check_completeness(key_history, order, found.append)
        if quiet is None:
            assert not said
            assert any(_left_to_the_full_checks(a) for a in found), [a.kind for a in found]
            reported_keys += 1
            continue
        assert [(a.kind, a.message, a.events) for a in said] == [
            (a.kind, a.message, a.events) for a in found
        ]
        quiet_order, quiet_delivered = quiet
        assert quiet_delivered == delivered
        assert quiet_order.ambiguous_updates == order.ambiguous_updates
        assert quiet_order.chain == order.chain
        assert quiet_order.broken == order.broken
        quiet_keys += 1
        reported_keys += bool(said)
    return quiet_keys, reported_keys


def _left_to_the_full_checks(anomaly: Anomaly) -> bool:
    return anomaly.kind in {"unknown_value", "failed_write_visible", "duplicate_update"} or (
        anomaly.message.startswith("the orders observers received form a cycle")
    )


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_every_golden_history(path: Path) -> None:
    quiet, reported = _both_ways(read_history([path]))
    if path.name.split(".")[0] in QUIET_KINDS and path.name.count(".") == 2:
        assert reported  # the anomaly this history is named for is one of these checks'
    if path.name.endswith(".valid.jsonl"):
        assert quiet and not reported


@settings(MANY, max_examples=500)
@given(histories())
def test_a_correct_store_is_judged_quietly(events: list[dict]) -> None:
    quiet, reported = _both_ways(History.from_events([HEADER, *_invoke_observes(events)[1:]]))
    assert quiet and not reported


@settings(MANY, max_examples=1000)
@given(histories(), st.data())
def test_a_correct_store_with_one_event_changed(events: list[dict], data: st.DataObject) -> None:
    changed = _one_changed(copy.deepcopy(_invoke_observes(events))[1:], data)
    _both_ways(History.from_events([HEADER, *changed]))


@settings(MANY, max_examples=500)
@given(st.integers(0, 1 << 30))
def test_random_event_soups(seed: int) -> None:
    _both_ways(History.from_events(soup(seed)))
