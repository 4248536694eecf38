"""ClientConnection: matching every server frame to what this connection asked for."""

from __future__ import annotations

import orjson
import pytest

from harness.errors import ProtocolViolation
from harness.protocol import (
    ClientConnection,
    Error,
    ErrorCode,
    Get,
    Join,
    Joined,
    Observe,
    Ok,
    Participant,
    Set,
    StopObserving,
    Update,
    Value,
)

P = {"id": "p", "name": ""}


def frame(**fields: object) -> bytes:
    return orjson.dumps(fields)


def connection_with(*requests: object) -> ClientConnection:
    connection = ClientConnection()
    for request in requests:
        connection.send(request, sent_ns=0)  # type: ignore[arg-type]
    return connection


def violation(
    connection: ClientConnection, data: bytes, *, mentions: str, requirement: str | None = None
) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as caught:
        connection.receive(data)
    found = caught.value
    assert found.frame == data
    assert mentions in str(found)
    # Every violation the client raises names its requirement, in the attribute and the text.
    assert found.requirement is not None and found.requirement in str(found)
    if requirement is not None:
        assert found.requirement == requirement, found
    return found


def observing(connection: ClientConnection, key: str, observer_id: str) -> None:
    request = Observe(connection.next_id(), key)
    connection.send(request, sent_ns=0)
    connection.receive(frame(type="observing", id=request.id, observerId=observer_id))


def test_ids_are_unique_and_frames_are_encoded():
    connection = ClientConnection()
    ids = [connection.next_id() for _ in range(100)]
    assert len(set(ids)) == 100
    pending = connection.send(Get(ids[0], "k"), sent_ns=5, waiter="w")
    assert orjson.loads(pending.frame) == {"type": "get", "id": ids[0], "key": "k"}
    assert (pending.sent_ns, pending.waiter) == (5, "w")


def test_replies_are_matched_in_request_order():
    connection = connection_with(Set(1, "k", "v"), Get(2, "k"))
    first, ok = connection.receive(frame(type="ok", id=1))
    second, value = connection.receive(frame(type="value", id=2, key="k", value="v"))
    assert (first.id, ok) == (1, Ok(1))
    assert (second.id, value) == (2, Value(2, "k", "v"))
    assert not connection.pending


def test_an_out_of_order_reply_is_a_violation():
    connection = connection_with(Set(1, "k", "v"), Get(2, "k"))
    violation(
        connection,
        frame(type="value", id=2, key="k", value="v"),
        mentions="order",
        requirement="R1.3",
    )
    assert [p.id for p in connection.pending] == [1, 2]  # nothing was consumed


def test_a_reply_with_an_unknown_id_is_a_violation():
    connection = connection_with(Set(1, "k", "v"))
    violation(connection, frame(type="ok", id=7), mentions="matches no pending request")
    violation(
        ClientConnection(),
        frame(type="ok", id=1),
        mentions="no request was pending",
        requirement="R1.2",
    )


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (Set(1, "k", "v"), frame(type="value", id=1, key="k", value="v")),
        (Get(1, "k"), frame(type="ok", id=1)),
        (Observe(1, "k"), frame(type="ok", id=1)),
        (StopObserving(1, "o1"), frame(type="observing", id=1, observerId="o1")),
        (Join(1, "s", Participant("p")), frame(type="ok", id=1)),
    ],
)
def test_the_wrong_reply_type_is_a_violation_and_leaves_the_request_pending(request_, reply):
    connection = connection_with(request_)
    violation(connection, reply, mentions="must be answered with")
    assert [p.request for p in connection.pending] == [request_]
    assert connection.fail_all()[0].request == request_


def test_a_value_for_another_key_is_a_violation():
    connection = connection_with(Get(1, "k"))
    violation(connection, frame(type="value", id=1, key="other", value=None), mentions="'other'")


def test_an_error_may_answer_any_request():
    connection = connection_with(Set(1, "", "v"))
    _, reply = connection.receive(frame(type="error", id=1, code="INVALID_KEY", message="m"))
    assert reply == Error(1, ErrorCode.INVALID_KEY, "m")


def test_raw_frames_must_be_answered_with_an_error():
    connection = ClientConnection()
    connection.send_raw("{", None, sent_ns=0)
    _, reply = connection.receive(frame(type="error", id=None, code="BAD_REQUEST", message="m"))
    assert reply.code is ErrorCode.BAD_REQUEST
    connection.send_raw(b'{"type":"get","id":4,"key":"k"}', 4, sent_ns=0)
    violation(connection, frame(type="value", id=4, key="k", value=None), mentions="success")


def test_joined_is_handed_up_with_its_limits():
    # The join state itself is the client core's (tests/client/test_core.py).
    connection = connection_with(Join(1, "s", Participant("p")))
    limits = {"maxKeys": 5, "maxValueBytes": 10}
    _, joined = connection.receive(
        frame(type="joined", id=1, session="s", participant=P, limits=limits)
    )
    assert isinstance(joined, Joined)
    assert joined.limits.max_keys == 5


def test_updates_must_belong_to_an_active_observer_of_that_key():
    connection = ClientConnection()
    observing(connection, "k", "o1")
    update = frame(type="update", observerId="o1", key="k", value="v", updatedBy=P)
    assert connection.receive(update) == Update("o1", "k", "v", Participant("p"))
    violation(
        connection,
        frame(type="update", observerId="o1", key="other", value="v", updatedBy=P),
        mentions="R4.1",
    )
    violation(
        connection,
        frame(type="update", observerId="o2", key="k", value="v", updatedBy=P),
        mentions="no 'observing' reply on this connection announced",
        requirement="R4.8",
    )


def update_for(observer_id: str) -> bytes:
    return frame(type="update", observerId=observer_id, key="k", value="v", updatedBy=P)


def test_an_update_after_stop_was_acknowledged_says_so():
    connection = ClientConnection()
    observing(connection, "k", "o1")
    stop = StopObserving(connection.next_id(), "o1")
    connection.send(stop, sent_ns=0)
    assert connection.receive(update_for("o1"))  # before the ok, deliveries may still come
    connection.receive(frame(type="ok", id=stop.id))
    found = violation(
        connection,
        update_for("o1"),
        mentions="update for observer 'o1' after stopObserving was acknowledged",
        requirement="R4.5",
    )
    assert found.kind == "update_after_stop"


def test_an_update_before_its_observing_reply_says_so():
    connection = ClientConnection()
    connection.send(Observe(connection.next_id(), "k"), sent_ns=0)
    found = violation(
        connection,
        update_for("o1"),
        mentions="arrived before the 'observing' reply that announces it",
        requirement="R4.8",
    )
    assert found.kind == "update_before_observing"


def test_an_update_for_an_id_never_issued_here_says_so():
    connection = ClientConnection()
    observing(connection, "k", "o1")
    # Another connection may well hold an 'o2' (R2.5): it is still unknown on this one.
    found = violation(
        connection, update_for("o2"), mentions="scoped per connection", requirement="R4.8"
    )
    assert found.kind == "update_for_unknown_observer"


def test_a_stopped_id_issued_again_is_active_again():
    connection = ClientConnection()
    observing(connection, "k", "o1")
    stop = StopObserving(connection.next_id(), "o1")
    connection.send(stop, sent_ns=0)
    connection.receive(frame(type="ok", id=stop.id))
    observing(connection, "k", "o1")  # a server may reuse an id once it is free
    assert connection.receive(update_for("o1")) == Update("o1", "k", "v", Participant("p"))


@pytest.mark.parametrize(
    ("data", "requirement"),
    [
        (b"not json", "R1.1"),
        (b"[1]", "R1.1"),
        (frame(type="update", observerId="o1", key="k", value=3, updatedBy=P), "R1.4"),
        (frame(type="shout"), "R1.4"),
    ],
)
def test_malformed_frames_cite_their_requirement(data, requirement):
    violation(ClientConnection(), data, mentions="", requirement=requirement)


def test_an_observer_id_in_use_cannot_be_issued_again():
    connection = ClientConnection()
    observing(connection, "k", "o1")
    connection.send(Observe(connection.next_id(), "j"), sent_ns=0)
    violation(connection, frame(type="observing", id=2, observerId="o1"), mentions="in use")


def test_a_refused_stop_keeps_the_observer():
    connection = ClientConnection()
    observing(connection, "k", "o1")
    connection.send(StopObserving(connection.next_id(), "o1"), sent_ns=0)
    connection.receive(frame(type="error", id=2, code="UNKNOWN_OBSERVER", message="m"))
    assert {o: entry.key for o, entry in connection.observers.items()} == {"o1": "k"}
