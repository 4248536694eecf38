"""The bridge holds any adapter to the protocol's promises above the wire, and reports
every outcome to listeners as the native client does."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pytest

from harness.adapters import AdapterClient, Capabilities, StoreAdapter
from harness.adapters.base import Deliver, OnLost
from harness.errors import ConnectionLost, HarnessUsageError, ProtocolViolation, StoreError
from harness.protocol import ErrorCode, Participant
from tests.adapters.adapter_helpers import Deliveries, Recorder


class Scripted(StoreAdapter):
    """An in-memory store whose misbehaviour each test chooses."""

    schemes = ("scripted",)
    capabilities = Capabilities(key_limit=None, value_limit=None)
    values: ClassVar[dict[str, str]] = {}
    #: Deliveries made from inside observe(), before it returns its handle.
    early: ClassVar[list[str]] = []
    #: Deliveries made after stop() returned.
    late: ClassVar[list[str]] = []
    fault: ClassVar[Exception | None] = None

    def connect(self, on_lost: OnLost) -> None:
        self.on_lost = on_lost
        self.watches: dict[int, tuple[str, Deliver]] = {}

    def join(self, session: str, participant_id: str, name: str, token: str | None) -> None:
        self.me = Participant(participant_id, name)

    def set(self, key: str, value: str | None) -> None:
        if self.fault is not None:
            raise self.fault
        if key == "refused":
            raise StoreError(ErrorCode.INVALID_KEY, "not this one")
        for watched, deliver in list(self.watches.values()):
            if watched == key:
                deliver(value, self.me)

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def observe(self, key: str, deliver: Deliver) -> object:
        for value in self.early:
            deliver(value, self.me.id)
        handle = len(self.watches) + 1
        self.watches[handle] = (key, deliver)
        return handle

    def stop(self, handle: object) -> None:
        _, deliver = self.watches.pop(handle)  # type: ignore[call-overload]
        for value in self.late:
            threading.Timer(0.05, deliver, (value, self.me)).start()

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def fresh_script() -> None:
    Scripted.early, Scripted.late, Scripted.fault = [], [], None


def joined(recorder: Recorder | None = None) -> AdapterClient:
    listeners = (recorder,) if recorder is not None else ()
    client = AdapterClient("scripted://", Scripted, listeners=listeners).open()
    client.join("s", "alice", "Alice")
    return client


def test_deliveries_during_observe_wait_for_the_observing_reply() -> None:
    Scripted.early = ["early"]
    recorder = Recorder()
    client = joined(recorder)
    deliveries = Deliveries()
    client.observe("k", deliveries)
    observing = recorder.events.index(("done", "Observe", "Observing"))
    update = recorder.events.index(("update", "k", "early", "alice"))
    assert observing < update  # R4.8, whatever the adapter's timing
    assert deliveries.seen == [("early", "alice")]


def test_a_delivery_after_stop_is_an_r45_violation_that_ends_the_connection() -> None:
    Scripted.late = ["late"]
    seen: list[ProtocolViolation] = []

    class Violations(Recorder):
        def violation_seen(self, client: Any, violation: ProtocolViolation, seen_ns: int) -> None:
            seen.append(violation)

    recorder = Violations()
    client = joined(recorder)
    client.stop_observing(client.observe("k"))
    for _ in range(200):
        if client.closed:
            break
        threading.Event().wait(0.01)
    assert seen and seen[0].requirement == "R4.5" and seen[0].kind == "update_after_stop"
    assert "'late'" in str(seen[0])
    assert ("closed", True) in recorder.events
    with pytest.raises(ProtocolViolation):
        client.get("k")


def test_a_refusal_is_an_error_reply_with_the_stores_code() -> None:
    recorder = Recorder()
    client = joined(recorder)
    with pytest.raises(StoreError) as refused:
        client.set("refused", "v")
    assert refused.value.code is ErrorCode.INVALID_KEY
    assert ("done", "Set", "Error") in recorder.events


def test_an_adapter_fault_is_an_unknown_outcome_naming_the_adapter() -> None:
    Scripted.fault = KeyError("oops")
    recorder = Recorder()
    client = joined(recorder)
    with pytest.raises(ConnectionLost, match="adapter Scripted raised KeyError"):
        client.set("k", "v")
    assert ("done", "Set", "NoneType") in recorder.events  # unknown, not failed
    assert client.closed


def test_stopping_an_observer_twice_is_unknown_observer() -> None:
    client = joined()
    observer = client.observe("k")
    client.stop_observing(observer)
    with pytest.raises(StoreError) as refused:
        client.stop_observing(observer)
    assert refused.value.code is ErrorCode.UNKNOWN_OBSERVER


def test_an_unknown_scheme_or_adapter_is_a_one_line_usage_error() -> None:
    from harness.adapters import resolve

    with pytest.raises(HarnessUsageError, match="no adapter for scheme 'redis'"):
        resolve("redis://127.0.0.1:6379/")
    with pytest.raises(HarnessUsageError, match="cannot import nowhere"):
        resolve("ws://x/", "nowhere:Adapter")
    with pytest.raises(HarnessUsageError, match="is not a StoreAdapter subclass"):
        resolve("ws://x/", "harness.adapters:Capabilities")
