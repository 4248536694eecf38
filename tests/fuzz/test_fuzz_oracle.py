"""The fuzzer's oracle on hand-made frames and replies: no sockets involved."""

from __future__ import annotations

from harness.fuzz import Frame
from harness.fuzz.oracle import (
    ConnectionState,
    SessionModel,
    apply,
    expect,
    judge,
    judge_update,
    nesting_depth,
)
from harness.protocol import ErrorCode, Join, Limits, Participant, Set

LIMITS = Limits(max_keys=2, max_value_bytes=8)


def joined() -> ConnectionState:
    return ConnectionState(joined=Join(1, "s", Participant("p", "P")))


def error(rid: int | None, code: ErrorCode) -> dict[str, object]:
    return {"type": "error", "id": rid, "code": str(code), "message": "m"}


def test_a_bad_id_must_be_answered_with_bad_request_and_a_null_id() -> None:
    expected = expect(
        Frame.text('{"type":"get","id":"7","key":"k"}'), joined(), SessionModel(LIMITS)
    )
    assert (
        judge(expected, error(None, ErrorCode.BAD_REQUEST), joined(), SessionModel(LIMITS)) is None
    )
    assert "id 7" in judge(
        expected, error(7, ErrorCode.BAD_REQUEST), joined(), SessionModel(LIMITS)
    )
    # True == 1 in Python, but a boolean is not the request's id (R5.1).
    expected = expect(Frame.text('{"type":"get","id":1,"key":""}'), joined(), SessionModel(LIMITS))
    assert judge(expected, error(True, ErrorCode.INVALID_KEY), joined(), SessionModel(LIMITS))  # type: ignore[arg-type]
    assert judge(expected, error(1, ErrorCode.INVALID_KEY), joined(), SessionModel(LIMITS)) is None


def test_precedence_and_state_pick_the_code() -> None:
    model, conn = SessionModel(LIMITS), joined()
    not_joined = expect(
        Frame.text('{"type":"set","id":2,"key":"","value":5}'), ConnectionState(), model
    )
    assert not_joined.errors == {(2, ErrorCode.NOT_JOINED)}
    for key in ("a", "b"):
        apply(Set(3, key, "v"), {"type": "ok", "id": 3}, conn, model)
    full = expect(Frame.text('{"type":"set","id":4,"key":"c","value":"v"}'), conn, model)
    assert full.request is None and full.errors == {(4, ErrorCode.KEY_LIMIT_EXCEEDED)}
    overwrite = expect(Frame.text('{"type":"set","id":5,"key":"a","value":"w"}'), conn, model)
    assert judge(overwrite, {"type": "ok", "id": 5}, conn, model) is None
    stop = expect(Frame.text('{"type":"stopObserving","id":6,"observerId":"o9"}'), conn, model)
    assert stop.errors == {(6, ErrorCode.UNKNOWN_OBSERVER)}


def test_a_get_must_return_what_the_acknowledged_writes_left() -> None:
    model, conn = SessionModel(LIMITS), joined()
    apply(Set(2, "k", "v"), {"type": "ok", "id": 2}, conn, model)
    expected = expect(Frame.text('{"type":"get","id":3,"key":"k"}'), conn, model)
    assert (
        judge(expected, {"type": "value", "id": 3, "key": "k", "value": "v"}, conn, model) is None
    )
    stale = judge(expected, {"type": "value", "id": 3, "key": "k", "value": None}, conn, model)
    assert stale is not None and "R3.1" in stale


def test_close_codes_follow_the_kind_of_frame() -> None:
    model, conn = SessionModel(LIMITS), joined()
    assert expect(Frame(b"\x00", binary=True), conn, model).close_codes == {1002, 1003}
    assert 1007 in expect(Frame(b'{"type":"get"\xff}'), conn, model).close_codes
    assert expect(Frame.text('{"type":"get","id":1,"key":"k"}'), conn, model).close_codes == set()
    big = Frame.text('{"type":"get","id":1,"key":"k","pad":"' + "x" * 70_000 + '"}')
    assert expect(big, conn, model).close_codes == {1009}


def test_a_lone_surrogate_is_not_json_but_deep_nesting_may_be_refused_either_way() -> None:
    model, conn = SessionModel(LIMITS), joined()
    surrogate = expect(Frame.text('{"type":"get","id":1,"key":"\\ud800"}'), conn, model)
    assert surrogate.errors == {(None, ErrorCode.BAD_REQUEST)} and surrogate.request is None
    deep = Frame.text('{"type":"get","id":4,"key":"k","x":' + "[" * 150 + "]" * 150 + "}")
    assert nesting_depth(deep.data) == 151
    expected = expect(deep, conn, model)
    assert expected.request is not None  # orjson reads it: a value reply is right...
    assert (4, ErrorCode.BAD_REQUEST) in expected.errors  # ...and so is refusing it
    assert nesting_depth(b'{"a":"[[[["}') == 1


def test_updates_must_belong_to_an_active_observer_and_a_real_write() -> None:
    model, conn = SessionModel(LIMITS), joined()
    conn.issued["o1"] = conn.observers["o1"] = "k"
    update = {"type": "update", "observerId": "o1", "key": "k", "value": "v", "updatedBy": {}}
    assert "nobody wrote" in judge_update(update, conn, model, None)
    assert judge_update(update, conn, model, Set(2, "k", "v")) is None
    assert "never held" in judge_update(update | {"observerId": "o2"}, conn, model, None)
    conn.stopped.add("o1")
    assert "R4.5" in judge_update(update, conn, model, Set(2, "k", "v"))
