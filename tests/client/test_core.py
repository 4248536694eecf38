"""ClientCore without any I/O: bytes in, requests answered, deadlines, the end."""

from __future__ import annotations

import dataclasses

import pytest
from websockets.utils import accept_key

from harness.client.core import ClientCore, ClientOptions
from harness.errors import ConnectionLost, HarnessUsageError, RequestTimeout, StoreError
from harness.protocol import Get, Set


def server_frame(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 126
    return bytes([0x81, len(data)]) + data


def open_core(**options: object) -> ClientCore:
    core = ClientCore("ws://127.0.0.1:9/", **options)  # type: ignore[arg-type]
    request = core.opening_handshake().decode()
    key = next(
        line.split(":", 1)[1].strip()
        for line in request.split("\r\n")
        if line.lower().startswith("sec-websocket-key:")
    )
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    )
    assert core.receive_data(response.encode()) == [] and core.handshake_done
    return core


def test_options_are_one_frozen_object_and_keywords_still_work():
    core = ClientCore("ws://x/", request_timeout=3, compression=True)
    assert core.options == ClientOptions(request_timeout=3, compression=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        core.options.request_timeout = 1  # type: ignore[misc]
    with pytest.raises(TypeError, match="unknown client options: colour"):
        ClientCore("ws://x/", colour="red")
    with pytest.raises(HarnessUsageError):
        ClientOptions(request_timeout=0)


def test_a_request_before_opening_is_a_usage_error():
    with pytest.raises(HarnessUsageError):
        ClientCore("ws://x/").start(Set(1, "k", "v"), waiter=None)


def test_replies_answer_requests_with_their_outcomes_and_the_join_is_kept():
    core = open_core()
    join = core.start(core._join_request("s", "p", "P", None), waiter=None)
    get = core.start(Get(core.next_id(), "k"), waiter=None)
    assert core.data_to_send()  # both frames, in one write
    joined = server_frame(
        '{"type":"joined","id":1,"session":"s","participant":{"id":"p","name":"P"},'
        '"limits":{"maxKeys":5,"maxValueBytes":9}}'
    )
    refused = server_frame('{"type":"error","id":2,"code":"INVALID_KEY","message":"no"}')
    assert core.receive_data(joined + refused) == [join, get]
    assert core.participant is not None and core.participant.id == "p"
    assert core.session == "s" and core.limits is not None and core.limits.max_keys == 5
    assert join.outcome.session == "s"
    assert isinstance(get.outcome, StoreError)


def test_one_deadline_queue_times_requests_out_oldest_first():
    core = open_core(request_timeout=1)
    first = core.start(Set(core.next_id(), "k", "1"), waiter=None)
    second = core.start(Set(core.next_id(), "k", "2"), waiter=None)
    assert core.next_deadline_ns() == first.deadline_ns <= second.deadline_ns
    assert core.expire(first.deadline_ns) == [first]
    assert isinstance(first.outcome, RequestTimeout) and first.abandoned
    assert core.next_deadline_ns() == second.deadline_ns
    # The late reply is still matched in order, but not handed to anyone again.
    assert core.receive_data(server_frame('{"type":"ok","id":1}')) == []
    lost = core.connection_lost()
    assert lost == [second] and isinstance(second.outcome, ConnectionLost)
    assert core.closed


def test_the_closing_handshake_and_a_1002_failure_leave_in_data_to_send():
    core = open_core()
    core.begin_close()
    assert core.closing_ns is not None and core.data_to_send()[:1] == b"\x88"
    failing = open_core()
    failing.receive_data(server_frame('{"type":"ok","id":7}'))  # no request pending: R1.2
    assert failing.violation is not None and failing.should_close
    assert failing.data_to_send()[:1] == b"\x88"  # the 1002 close frame
