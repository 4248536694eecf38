"""Property tests: histories generated from a correct store are valid; mutations are flagged.

The model below is a correct store run in simulated time: each operation takes
effect at a drawn instant inside its call..return window, in one total order;
every observer gets every write, in that order, after a drawn delay.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checker import check

OBSERVERS = ("alice", "bob", "carol")
HEADER = {"ev": "header", "process": "model", "clock": "model/boot"}
Event = dict[str, Any]


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """A valid history: a few participants observe, write and read two keys."""
    operations = draw(
        st.lists(
            st.tuples(
                st.sampled_from(OBSERVERS),
                st.sampled_from(("k0", "k1")),
                st.booleans(),  # a set, or a get
                st.integers(1, 30),  # how long before its effect it was sent
                st.integers(1, 30),  # how long after its effect it returned
            ),
            min_size=2,
            max_size=25,
        )
    )
    delays = draw(
        st.lists(
            st.integers(0, 40),
            min_size=len(operations) * len(OBSERVERS),
            max_size=len(operations) * len(OBSERVERS),
        )
    )
    events: list[Event] = []
    for index, name in enumerate(OBSERVERS):
        events.extend(_observe(name, key, index * 2 + n) for n, key in enumerate(("k0", "k1")))
    state: dict[str, str | None] = {"k0": None, "k1": None}
    last_delivery = {(name, key): 0 for name in OBSERVERS for key in state}
    clock = 100
    for number, (who, key, is_set, before, after) in enumerate(operations):
        clock += 10  # the instant this operation takes effect
        common = {"conn": who, "p": who, "s": "s", "req": 100 + number, "key": key}
        if is_set:
            value = f"{who}#{number}"
            state[key] = value
            events.append(
                {"ev": "invoke", "t": clock - before, "op": "set", "value": value, **common}
            )
            events.append({"ev": "done", "t": clock + after, "op": "set", "result": "ok", **common})
            for n, name in enumerate(OBSERVERS):
                at = max(last_delivery[(name, key)] + 1, clock + delays[number * 3 + n])
                last_delivery[(name, key)] = at
                events.append(
                    {
                        "ev": "update",
                        "t": at,
                        "conn": name,
                        "p": name,
                        "s": "s",
                        "obs": f"{name}-{key}",
                        "key": key,
                        "value": value,
                        "by": who,
                    }
                )
        else:
            events.append({"ev": "invoke", "t": clock - before, "op": "get", **common})
            events.append(
                {
                    "ev": "done",
                    "t": clock + after,
                    "op": "get",
                    "result": "value",
                    "value": state[key],
                    **common,
                }
            )
    end = clock + 1000
    for n, name in enumerate(OBSERVERS):
        for m, key in enumerate(state):
            common = {"conn": name, "p": name, "s": "s", "req": 1000 + m, "key": key}
            events.append({"ev": "invoke", "t": end + 2 * n, "op": "get", **common})
            events.append(
                {
                    "ev": "done",
                    "t": end + 2 * n + 1,
                    "op": "get",
                    "result": "value",
                    "value": state[key],
                    **common,
                }
            )
        events.append(
            {"ev": "closed", "t": end + 100, "conn": name, "p": name, "s": "s", "by_client": True}
        )
    events.sort(key=lambda e: e["t"])  # stable: a request's invoke stays before its done
    return [HEADER, *events]


def _observe(name: str, key: str, t: int) -> Event:
    common = {"conn": name, "p": name, "s": "s", "req": t + 1, "key": key}
    return {
        "ev": "done",
        "t": t,
        "op": "observe",
        "result": "observing",
        "obs": f"{name}-{key}",
        **common,
    }


def _invoke_observes(events: list[Event]) -> list[Event]:
    """Give each observe its invoke, so every done has one."""
    out = []
    for event in events:
        if event.get("op") == "observe":
            out.append({**event, "ev": "invoke", "t": event["t"] - 1})
        out.append(event)
    return out


def _updates(events: list[Event], observer: str) -> list[int]:
    return [i for i, e in enumerate(events) if e["ev"] == "update" and e["obs"] == observer]


@settings(max_examples=60, deadline=None)
@given(histories())
def test_histories_of_a_correct_store_are_valid(events: list[Event]) -> None:
    verdict = check(_invoke_observes(events))
    assert verdict.result == "valid", verdict.to_text()


@settings(max_examples=60, deadline=None)
@given(histories(), st.sampled_from(OBSERVERS), st.sampled_from(("k0", "k1")), st.data())
def test_a_dropped_update_is_flagged(
    events: list[Event], name: str, key: str, data: st.DataObject
) -> None:
    updates = _updates(events, f"{name}-{key}")
    if not updates:
        return
    mutated = copy.deepcopy(events)
    del mutated[data.draw(st.sampled_from(updates))]
    verdict = check(_invoke_observes(mutated))
    assert verdict.counts.keys() & {"lost_update", "gap"}, verdict.to_text()


@settings(max_examples=60, deadline=None)
@given(histories(), st.sampled_from(OBSERVERS), st.sampled_from(("k0", "k1")), st.data())
def test_swapped_or_duplicated_updates_are_flagged(
    events: list[Event], name: str, key: str, data: st.DataObject
) -> None:
    updates = _updates(events, f"{name}-{key}")
    if len(updates) < 2:
        return
    mutated = copy.deepcopy(events)
    position = data.draw(st.integers(0, len(updates) - 2))
    first, second = updates[position], updates[position + 1]
    if data.draw(st.booleans()):
        for field in ("value", "by"):
            mutated[first][field], mutated[second][field] = (
                mutated[second][field],
                mutated[first][field],
            )
    else:
        mutated[second]["value"], mutated[second]["by"] = (
            mutated[first]["value"],
            mutated[first]["by"],
        )
    verdict = check(_invoke_observes(mutated))
    assert verdict.result == "invalid", verdict.to_text()


@settings(max_examples=60, deadline=None)
@given(histories(), st.data())
def test_a_final_read_of_an_overwritten_value_is_flagged(
    events: list[Event], data: st.DataObject
) -> None:
    final = [i for i, e in enumerate(events) if e["ev"] == "done" and e["req"] >= 1000]
    index = data.draw(st.sampled_from(final))
    key = events[index]["key"]
    written = [
        e["value"]
        for e in events
        if e["ev"] == "invoke" and e.get("op") == "set" and e["key"] == key
    ]
    older = [None, *written[:-1]]
    mutated = copy.deepcopy(events)
    mutated[index]["value"] = data.draw(st.sampled_from(older))
    if mutated[index]["value"] == events[index]["value"]:
        return
    verdict = check(_invoke_observes(mutated))
    assert verdict.counts.keys() & {"stale_read", "convergence"}, verdict.to_text()
