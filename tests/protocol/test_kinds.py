"""Every spelling of a request kind derives from harness.protocol.kinds, unchanged on disk."""

from __future__ import annotations

from harness.latency.histograms import OPERATIONS
from harness.protocol import Get, Join, Observe, Participant, Set, StopObserving, to_wire
from harness.protocol.kinds import KINDS
from harness.protocol.messages import KIND_OF, REQUEST_TYPES
from harness.protocol.schema import CLIENT_MESSAGE_TYPES

REQUESTS = [
    Join(1, "s", Participant("p")),
    Set(2, "k", "v"),
    Get(3, "k"),
    Observe(4, "k"),
    StopObserving(5, "o1"),
]


def test_each_request_class_has_one_kind():
    assert sorted(KIND_OF.values(), key=KINDS.index) == list(KINDS)
    for request in REQUESTS:
        assert (
            to_wire(request)["type"] == KIND_OF[type(request)].wire == REQUEST_TYPES[type(request)]
        )


def test_the_spellings_on_disk_stay_as_they_were():
    # History files, latency logs and reports written before keep reading.
    assert [k.wire for k in KINDS] == ["join", "set", "get", "observe", "stopObserving"]
    assert [k.history for k in KINDS] == ["join", "set", "get", "observe", "stop"]
    assert [k.locust for k in KINDS] == ["JOIN", "SET", "GET", "OBSERVE", "STOP"]
    assert OPERATIONS == CLIENT_MESSAGE_TYPES == tuple(k.wire for k in KINDS)
