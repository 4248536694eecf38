"""interpret_request: what a server makes of a client frame, and which code wins (R5.2)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol import (
    DEFAULT_LIMITS,
    ErrorCode,
    Get,
    Join,
    Observe,
    Participant,
    Rejection,
    Set,
    StopObserving,
    interpret_request,
)
from harness.protocol.messages import interpret_object

BAD = ErrorCode.BAD_REQUEST
JOIN = {"type": "join", "id": 1, "session": "s", "participant": {"id": "p", "name": "P"}}


def interpret(frame: object, *, joined: bool = True) -> object:
    data = frame if isinstance(frame, str | bytes) else orjson.dumps(frame)
    return interpret_request(data, joined=joined, limits=DEFAULT_LIMITS)


def rejected(frame: object, code: ErrorCode, request_id: int | None, *, joined: bool) -> None:
    result = interpret(frame, joined=joined)
    assert isinstance(result, Rejection), result
    assert (result.code, result.id) == (code, request_id), result
    assert result.message
    assert result.reply().code is code


@pytest.mark.parametrize("joined", [False, True])
@pytest.mark.parametrize(
    ("frame", "request_id"),
    [
        ("{", None),
        ('{"type":"get","id":1,"key":"\\ud800"}', None),
        ("[]", None),
        ("1", None),
        ({"type": "get", "key": ""}, None),
        ({"type": "get", "id": "1", "key": ""}, None),
        ({"type": "get", "id": 1.0, "key": ""}, None),
        ({"type": "get", "id": False, "key": ""}, None),
        ({"type": "unknown", "id": 4}, 4),
        ({"id": 4}, 4),
        ({"type": ["set"], "id": 4}, 4),
    ],
)
def test_bad_request_comes_first(frame, request_id, joined):
    rejected(frame, BAD, request_id, joined=joined)


def test_second_join_is_bad_request_whatever_its_fields():
    rejected(JOIN, BAD, 1, joined=True)
    rejected({**JOIN, "session": ""}, BAD, 1, joined=True)


@pytest.mark.parametrize(
    "change",
    [
        {"session": ""},
        {"session": None},
        {"participant": None},
        {"participant": {"id": "", "name": ""}},
        {"participant": {"id": 1, "name": ""}},
        {"participant": {"name": ""}},
        {"participant": {"id": "p"}},
        {"participant": {"id": "p", "name": 1}},
        {"token": 1},
        {"token": None},
    ],
)
def test_invalid_join_fields_are_bad_request(change):
    rejected({**JOIN, **change}, BAD, 1, joined=False)


def test_valid_join_with_and_without_token():
    assert interpret(JOIN, joined=False) == Join(1, "s", Participant("p", "P"))
    assert interpret({**JOIN, "token": ""}, joined=False) == Join(1, "s", Participant("p", "P"), "")


# A model of R5.2 for the four requests a joined connection sends: each fault is
# a switch, and the expected code is the first switched-on fault in spec order.
@given(
    kind=st.sampled_from(["set", "get", "observe", "stopObserving", "nonsense"]),
    joined=st.booleans(),
    bad_id=st.sampled_from([None, "missing", "1", 1.5, True]),
    bad_key=st.sampled_from([None, "missing", "", 7]),
    bad_value=st.sampled_from([None, "missing", 7, ["v"]]),
    too_large=st.booleans(),
    bad_observer=st.sampled_from([None, "missing", 7]),
    extra=st.booleans(),
)
def test_the_first_fault_in_spec_order_is_reported(
    kind, joined, bad_id, bad_key, bad_value, too_large, bad_observer, extra
):
    frame: dict[str, object] = {"type": kind, "id": 9}
    value = "€" * 342 if too_large else "v"  # 1026 bytes against 1024
    for field, fault, good in (
        ("id", bad_id, 9),
        ("key", bad_key, "k"),
        ("value", bad_value, value),
        ("observerId", bad_observer, "o1"),
    ):
        if fault != "missing":
            frame[field] = good if fault is None else fault
        else:
            frame.pop(field, None)
    if extra:
        frame["extra"] = {"ignored": True}  # R1.5

    faults = []
    if bad_id is not None or kind == "nonsense":
        faults.append(ErrorCode.BAD_REQUEST)
    if not joined:
        faults.append(ErrorCode.NOT_JOINED)
    if kind == "stopObserving" and bad_observer is not None:
        faults.append(ErrorCode.UNKNOWN_OBSERVER)
    if kind in ("set", "get", "observe") and bad_key is not None:
        faults.append(ErrorCode.INVALID_KEY)
    if kind == "set" and bad_value is not None:
        faults.append(ErrorCode.INVALID_VALUE)
    if kind == "set" and bad_value is None and too_large:
        faults.append(ErrorCode.VALUE_TOO_LARGE)

    result = interpret(frame, joined=joined)
    if faults:
        assert isinstance(result, Rejection), (frame, result)
        assert result.code is faults[0], (frame, result)
        assert result.id == (None if bad_id is not None else 9)
    else:
        expected = {
            "set": Set(9, "k", value),
            "get": Get(9, "k"),
            "observe": Observe(9, "k"),
            "stopObserving": StopObserving(9, "o1"),
        }[kind]
        assert result == expected


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("a" * 1024, True),
        ("a" * 1025, False),
        ("é" * 512, True),
        ("é" * 512 + "a", False),
        ("€" * 341 + "a", True),
        ("€" * 342, False),
        ("😀" * 256, True),
        ("😀" * 256 + "a", False),
        ("", True),
        (None, True),
    ],
)
def test_value_limit_counts_utf8_bytes(value, accepted):
    result = interpret({"type": "set", "id": 2, "key": "k", "value": value})
    if accepted:
        assert result == Set(2, "k", value)
    else:
        assert isinstance(result, Rejection) and result.code is ErrorCode.VALUE_TOO_LARGE


@given(
    frame=st.fixed_dictionaries(
        {"type": st.sampled_from(["set", "get", "join", "x"]), "id": st.integers(-3, 3)},
        optional={
            "key": st.one_of(st.none(), st.text(max_size=3)),
            "value": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=3)),
        },
    ),
    joined=st.booleans(),
)
def test_interpret_object_is_interpret_request_after_the_parse(frame, joined):
    parsed = interpret_object(frame, joined=joined, limits=DEFAULT_LIMITS)
    assert parsed == interpret(frame, joined=joined)


def test_interpret_object_counts_value_bytes_as_told():
    # A lone surrogate has no UTF-8 form: how many bytes it counts is the caller's choice.
    frame = {"type": "set", "id": 2, "key": "k", "value": "a" * 1023 + "\ud800"}
    too_large = interpret_object(frame, joined=True, limits=DEFAULT_LIMITS)
    assert isinstance(too_large, Rejection) and too_large.code is ErrorCode.VALUE_TOO_LARGE
    fits = interpret_object(frame, joined=True, limits=DEFAULT_LIMITS, value_bytes=lambda v: 1023)
    assert fits == Set(2, "k", frame["value"])
