"""Encode/decode round trips of every message type, and the strict server-frame decoder."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ProtocolViolation
from harness.protocol import (
    Error,
    ErrorCode,
    Get,
    Join,
    Joined,
    Limits,
    Observe,
    Observing,
    Ok,
    Participant,
    Set,
    StopObserving,
    Update,
    UpdateFrames,
    Value,
    decode_server_message,
    encode,
    interpret_request,
    utf8_length,
)

# JSON text cannot carry lone surrogates (R1.1), so generated strings leave them out.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
nonempty = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)
ids = st.integers(-(2**63), 2**63 - 1)
participants = st.builds(Participant, nonempty, text)
values = st.none() | text
limits = st.builds(Limits, st.integers(1, 10**6), st.integers(1, 10**9))

server_messages = st.one_of(
    st.builds(Joined, ids, nonempty, participants, limits),
    st.builds(Ok, ids),
    st.builds(Value, ids, text, values),
    st.builds(Observing, ids, text),
    st.builds(Error, st.none() | ids, st.sampled_from(ErrorCode), text),
    st.builds(Update, text, text, values, participants),
)
requests = st.one_of(
    st.builds(Set, ids, nonempty, values),
    st.builds(Get, ids, nonempty),
    st.builds(Observe, ids, nonempty),
    st.builds(StopObserving, ids, text),
)
NO_LIMIT = Limits(max_value_bytes=10**9)


@given(server_messages)
def test_server_messages_round_trip(message):
    assert decode_server_message(encode(message)) == message
    assert decode_server_message(encode(message).decode()) == message


@given(requests)
def test_requests_round_trip_through_the_server_side_interpreter(request):
    assert interpret_request(encode(request), joined=True, limits=NO_LIMIT) == request


@given(st.builds(Join, ids, nonempty, participants, st.none() | text))
def test_join_round_trips(join):
    assert interpret_request(encode(join), joined=False, limits=NO_LIMIT) == join


@given(text, text, values, participants)
def test_update_frames_match_encoding_each_update(observer_id, key, value, writer):
    frame = UpdateFrames(key, value, writer).for_observer(observer_id)
    update = Update(observer_id, key, value, writer)
    assert orjson.loads(frame) == orjson.loads(encode(update))
    assert decode_server_message(frame) == update


@given(text)
def test_utf8_length_counts_encoded_bytes(value):
    assert utf8_length(value) == len(value.encode("utf-8"))


P = {"id": "p", "name": ""}
LIMITS = {"maxKeys": 100, "maxValueBytes": 1024}
JOINED = {"type": "joined", "id": 1, "session": "s", "participant": P, "limits": LIMITS}
UPDATE = {"type": "update", "observerId": "o1", "key": "k", "value": "v", "updatedBy": P}
ERROR = {"type": "error", "id": 1, "code": "BAD_REQUEST", "message": "m"}


def without(message: dict[str, object], field: str) -> dict[str, object]:
    return {k: v for k, v in message.items() if k != field}


MALFORMED_SERVER_FRAMES: dict[str, str | bytes] = {
    "not JSON": '{"type": "ok"',
    "empty": "",
    "array": '[{"type": "ok", "id": 1}]',
    "string": '"ok"',
    "null": "null",
    "type missing": '{"id": 1}',
    "type null": '{"type": null, "id": 1}',
    "type unknown": '{"type": "pong", "id": 1}',
    "a request type": '{"type": "set", "id": 1, "key": "k", "value": "v"}',
}
for _name, _message in {
    "ok id missing": {"type": "ok"},
    "ok id a string": {"type": "ok", "id": "1"},
    "ok id a float": {"type": "ok", "id": 1.5},
    "ok id a bool": {"type": "ok", "id": True},
    "ok id null": {"type": "ok", "id": None},
    "value key missing": {"type": "value", "id": 1, "value": "v"},
    "value key a number": {"type": "value", "id": 1, "key": 1, "value": "v"},
    "value value missing": {"type": "value", "id": 1, "key": "k"},
    "value value a number": {"type": "value", "id": 1, "key": "k", "value": 1},
    "value value an object": {"type": "value", "id": 1, "key": "k", "value": {}},
    "observing observerId missing": {"type": "observing", "id": 1},
    "observing observerId null": {"type": "observing", "id": 1, "observerId": None},
    "joined session missing": without(JOINED, "session"),
    "joined session a number": {**JOINED, "session": 1},
    "joined participant missing": without(JOINED, "participant"),
    "joined participant a string": {**JOINED, "participant": "p"},
    "joined participant.id empty": {**JOINED, "participant": {"id": "", "name": ""}},
    "joined participant.id a number": {**JOINED, "participant": {"id": 1, "name": ""}},
    "joined participant.name missing": {**JOINED, "participant": {"id": "p"}},
    "joined limits missing": without(JOINED, "limits"),
    "joined limits empty": {**JOINED, "limits": {}},
    "joined maxKeys zero": {**JOINED, "limits": {**LIMITS, "maxKeys": 0}},
    "joined maxKeys a string": {**JOINED, "limits": {**LIMITS, "maxKeys": "100"}},
    "joined maxValueBytes a float": {**JOINED, "limits": {**LIMITS, "maxValueBytes": 1.5}},
    "joined maxValueBytes a bool": {**JOINED, "limits": {**LIMITS, "maxValueBytes": True}},
    "error id missing": without(ERROR, "id"),
    "error id a string": {**ERROR, "id": "1"},
    "error code missing": without(ERROR, "code"),
    "error code unknown": {**ERROR, "code": "NOPE"},
    "error code lower case": {**ERROR, "code": "bad_request"},
    "error code a number": {**ERROR, "code": 1},
    "error message missing": without(ERROR, "message"),
    "error message null": {**ERROR, "message": None},
    "update observerId missing": without(UPDATE, "observerId"),
    "update key missing": without(UPDATE, "key"),
    "update value missing": without(UPDATE, "value"),
    "update value a number": {**UPDATE, "value": 5},
    "update updatedBy missing": without(UPDATE, "updatedBy"),
    "update updatedBy empty": {**UPDATE, "updatedBy": {}},
    "update updatedBy.id empty": {**UPDATE, "updatedBy": {"id": "", "name": ""}},
    "update updatedBy.name missing": {**UPDATE, "updatedBy": {"id": "p"}},
}.items():
    MALFORMED_SERVER_FRAMES[_name] = orjson.dumps(_message)


@pytest.mark.parametrize(
    "frame", MALFORMED_SERVER_FRAMES.values(), ids=MALFORMED_SERVER_FRAMES.keys()
)
def test_malformed_server_frame_is_a_violation_quoting_the_frame(frame):
    with pytest.raises(ProtocolViolation) as violation:
        decode_server_message(frame)
    assert violation.value.frame == frame
    assert repr(frame) in str(violation.value)
    assert violation.value.reason


def test_a_long_frame_is_quoted_shortened_with_its_size():
    frame = orjson.dumps({"type": "ok", "id": "x" * 5000})
    with pytest.raises(ProtocolViolation) as violation:
        decode_server_message(frame)
    assert violation.value.frame == frame  # kept whole for reports
    assert str(violation.value).endswith(f"... ({len(frame)} bytes in all)")


@pytest.mark.parametrize("message", [JOINED, UPDATE, ERROR, {**ERROR, "id": None}])
def test_extra_fields_in_server_frames_are_allowed(message):
    decode_server_message(orjson.dumps({**message, "extra": [1, {"x": None}]}))


@pytest.mark.parametrize(
    "frame, expected",
    [
        # RFC 8259 leaves lone surrogates to parsers, and a server may echo one a client sent.
        ('{"type":"value","id":1,"key":"\\udc00","value":null}', Value(1, "\udc00", None)),
        # An encoder that writes every number as a double still writes the integer 1.
        ('{"type":"ok","id":1.0}', Ok(1)),
        ('{"type":"ok","id":1e0}', Ok(1)),
    ],
)
def test_frames_other_json_encoders_write_are_read_as_the_spec_means(frame, expected):
    assert decode_server_message(frame) == expected
