"""A segment gives back every event routed to it: the updates from their columns are
the very Update events the history files held, whatever they say."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.history.events import Update
from harness.history.reader import History, read_history
from harness.history.segments import Segments

GOLDEN = sorted((Path(__file__).parent.parent / "checker" / "golden").glob("*.jsonl"))
HEADER = {"ev": "header", "process": "p", "clock": "c"}


def _updates_back(history: History, directory: Path) -> Counter[Update]:
    segments = Segments(directory, buffer_events=7)  # many small frames
    segments.feed(history.events)
    segments.finish()
    back: Counter[Update] = Counter()
    for session_key in segments.keys:
        back.update(e for e in segments.load(session_key).events() if type(e) is Update)
    return back


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_every_update_of_a_golden_history_comes_back(path: Path, tmp_path: Path) -> None:
    history = read_history([path])
    sent = Counter(e for e in history.events if type(e) is Update)
    assert _updates_back(history, tmp_path) == sent


def _update(t: int, value: str | None, **fields: str) -> dict:
    base = {"ev": "update", "t": t, "conn": "c1", "obs": "o1", "key": "k", "value": value}
    return {**base, "p": "alice", "s": "s", "by": "bob", **fields}


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, "a", "b"]),
            st.sampled_from(["k", "other"]),
            st.sampled_from(["alice", "carol"]),
            st.sampled_from(["s", "t"]),
            st.sampled_from(["bob", "dave"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_an_update_that_says_otherwise_than_its_observer_keeps_what_it_says(
    tmp_path_factory: pytest.TempPathFactory, drawn: list[tuple]
) -> None:
    """An observer's updates differ in the value and writer, and, from a buggy server or
    client, in anything else: each comes back as it was."""
    records = [
        _update(t, value, key=key, p=participant, s=session, by=by)
        for t, (value, key, participant, session, by) in enumerate(drawn)
    ]
    history = History.from_events([HEADER, *records])
    sent = Counter(e for e in history.events if type(e) is Update)
    assert _updates_back(history, tmp_path_factory.mktemp("segments")) == sent
