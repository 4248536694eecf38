"""check_quietly, the order and completeness checks on a segment's update columns: for
every key, what check_order and check_completeness give when they report nothing, and
None (the full checks then judge the key) exactly when they report something.

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
from harness.history.segments import Segments, UpdateColumns

#: The anomalies check_order and check_completeness report (lost_update is the
#: real-time check's too: a golden history with a longer name shows that one).
ORDER_KINDS = {"gap", "lost_update", "order_divergence", "duplicate_update", "unknown_value"}


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
    the full checks reported on."""
    quiet_keys = reported_keys = 0
    for key_history in _key_histories(history):
        assert all(isinstance(o.updates, UpdateColumns | list) for o in key_history.observers)
        quiet = check_quietly(key_history)
        found: list[Anomaly] = []
        order = check_order(key_history, found.append)
        delivered = check_completeness(key_history, order, found.append)
        if found:
            assert quiet is None, [a.kind for a in found]
            reported_keys += 1
            continue
        assert quiet is not None, "nothing to report, yet the quiet checks stepped aside"
        quiet_order, quiet_delivered = quiet
        assert quiet_delivered == delivered
        assert quiet_order.ambiguous_updates == order.ambiguous_updates
        assert quiet_order.chain == order.chain
        assert quiet_order.broken == order.broken
        quiet_keys += 1
    return quiet_keys, reported_keys


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_every_golden_history(path: Path) -> None:
    quiet, reported = _both_ways(read_history([path]))
    if path.name.split(".")[0] in ORDER_KINDS and path.name.count(".") == 2:
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


@given(st.integers(0, 1 << 30))
def test_random_event_soups(seed: int) -> None:
    _both_ways(History.from_events(soup(seed)))
