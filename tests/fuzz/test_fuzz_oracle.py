"""The fuzzer's oracle on hand-made frames and replies: no sockets involved.

Each rule of docs/protocol.md's "Left to the implementation" table gets both
answers a correct server may give (orjson's, as the reference server gives it,
and JavaScript's, as a Node server with JSON.parse gives it), and a wrong answer
that must still fail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.fuzz import Frame
from harness.fuzz.jsontext import Personality, outside_id_range, scan
from harness.fuzz.oracle import (
    ConnectionState,
    Expected,
    SessionModel,
    apply,
    expect,
    judge,
    judge_update,
    nesting_depth,
)
from harness.protocol import ErrorCode, Join, Limits, Participant, Set

LIMITS = Limits(max_keys=2, max_value_bytes=8)
BAD = ErrorCode.BAD_REQUEST


def joined() -> ConnectionState:
    return ConnectionState(joined=Join(1, "s", Participant("p", "P")))


def error(rid: object, code: ErrorCode) -> dict[str, object]:
    return {"type": "error", "id": rid, "code": str(code), "message": "m"}


def ok(rid: object) -> dict[str, object]:
    return {"type": "ok", "id": rid}


def value(rid: object, key: str, held: str | None = None) -> dict[str, object]:
    return {"type": "value", "id": rid, "key": key, "value": held}


class Judge:
    """One connection and session, and the frame now being answered."""

    def __init__(self, conn: ConnectionState | None = None, limits: Limits = LIMITS) -> None:
        self.conn = joined() if conn is None else conn
        self.model = SessionModel(limits)
        self.expected: Expected | None = None

    def send(self, text: str) -> Judge:
        self.expected = expect(Frame.text(text), self.conn, self.model)
        return self

    def problem(self, reply: dict[str, Any]) -> str | None:
        assert self.expected is not None
        return judge(self.expected, reply, self.conn, self.model).problem

    def allows(self, reply: dict[str, Any]) -> bool:
        return self.problem(reply) is None

    def answer(self, reply: dict[str, Any]) -> None:
        """Judge the reply (it must be allowed) and record what it changed."""
        assert self.expected is not None
        verdict = judge(self.expected, reply, self.conn, self.model)
        assert verdict.problem is None, verdict.problem
        if reply["type"] != "error":
            apply(verdict.applied, reply, self.conn, self.model)


# --- the plain rules ---------------------------------------------------------------


def test_a_bad_id_must_be_answered_with_bad_request_and_a_null_id() -> None:
    j = Judge().send('{"type":"get","id":"7","key":"k"}')
    assert j.allows(error(None, BAD))
    problem = j.problem(error(7, BAD))
    assert problem is not None
    assert "got error BAD_REQUEST with id 7" in problem and "with id null" in problem
    # True == 1 in Python, but a boolean is not the request's id (R5.1).
    j.send('{"type":"get","id":1,"key":""}')
    assert not j.allows(error(True, ErrorCode.INVALID_KEY))
    assert j.allows(error(1, ErrorCode.INVALID_KEY))


def test_precedence_and_state_pick_the_code() -> None:
    j = Judge(ConnectionState())
    j.send('{"type":"set","id":2,"key":"","value":5}')
    assert j.expected is not None and j.expected.errors == {(2, ErrorCode.NOT_JOINED)}
    j = Judge()
    for key in ("a", "b"):
        j.send(f'{{"type":"set","id":3,"key":"{key}","value":"v"}}').answer(ok(3))
    j.send('{"type":"set","id":4,"key":"c","value":"v"}')
    assert j.expected is not None and j.expected.requests == ()
    assert j.expected.errors == {(4, ErrorCode.KEY_LIMIT_EXCEEDED)}
    assert not j.allows(ok(4))
    assert j.send('{"type":"set","id":5,"key":"a","value":"w"}').allows(ok(5))
    j.send('{"type":"stopObserving","id":6,"observerId":"o9"}')
    assert j.expected is not None and j.expected.errors == {(6, ErrorCode.UNKNOWN_OBSERVER)}


def test_a_get_must_return_what_the_acknowledged_writes_left() -> None:
    j = Judge()
    j.send('{"type":"set","id":2,"key":"k","value":"v"}').answer(ok(2))
    j.send('{"type":"get","id":3,"key":"k"}')
    assert j.allows(value(3, "k", "v"))
    stale = j.problem(value(3, "k", None))
    assert stale is not None and "returned None; expected 'v'" in stale and "R3.1" in stale


def test_a_wrong_code_or_another_in_range_id_still_fails() -> None:
    j = Judge().send('{"type":"get","id":5,"key":""}')
    wrong_code = j.problem(error(5, ErrorCode.INVALID_VALUE))
    assert wrong_code is not None and "expected error INVALID_KEY with id 5" in wrong_code
    j.send('{"type":"get","id":5,"key":"k"}')
    other_id = j.problem(value(6, "k"))
    assert other_id is not None and "carries id 6, the request's id is 5" in other_id
    assert "R1.2" in other_id


def test_close_codes_follow_the_kind_of_frame() -> None:
    model, conn = SessionModel(LIMITS), joined()
    assert expect(Frame(b"\x00", binary=True), conn, model).close_codes == {1002, 1003}
    assert 1007 in expect(Frame(b'{"type":"get"\xff}'), conn, model).close_codes
    assert expect(Frame.text('{"type":"get","id":1,"key":"k"}'), conn, model).close_codes == set()
    big = Frame.text('{"type":"get","id":1,"key":"k","pad":"' + "x" * 70_000 + '"}')
    assert expect(big, conn, model).close_codes == {1009}
    # Any answer to an id outside ±(2^53-1) is no licence to break the connection (R1.2).
    huge = Frame.text('{"type":"get","id":9007199254740993,"key":"k"}')
    assert expect(huge, conn, model).close_codes == set()


def test_a_success_to_a_frame_no_parser_reads_fails() -> None:
    j = Judge().send('{"type":"get","id":5,"key":"k"')
    assert j.allows(error(None, BAD))
    assert j.allows(error(5, BAD))  # a parser that stops at the fault has read the id (R5.1)
    problem = j.problem(value(5, "k"))
    assert problem is not None and "got a 'value' reply" in problem and "not JSON" in problem


def test_deep_nesting_may_be_refused_either_way() -> None:
    deep = Frame.text('{"type":"get","id":4,"key":"k","x":' + "[" * 150 + "]" * 150 + "}")
    assert nesting_depth(deep.data) == 151
    j = Judge()
    j.expected = expect(deep, j.conn, j.model)
    assert j.allows(value(4, "k"))  # orjson reads it: a value reply is right...
    assert j.allows(error(4, BAD)) and j.allows(error(None, BAD))  # ...and so is refusing it
    assert not j.allows(error(4, ErrorCode.INVALID_KEY))
    assert nesting_depth(b'{"a":"[[[["}') == 1


# --- lone surrogates (R1.7) ----------------------------------------------------------

SURROGATE_FRAMES = {
    "key": '{"type":"get","id":1,"key":"\\ud800"}',
    "value": '{"type":"set","id":1,"key":"k","value":"\\udc00"}',
    "session": '{"type":"join","id":1,"session":"s\\ud800","participant":{"id":"p","name":"P"}}',
    "participant": '{"type":"join","id":1,"session":"s","participant":{"id":"\\ud800","name":""}}',
    "type": '{"type":"get\\ud800","id":1,"key":"k"}',
    "unknown field": '{"type":"get","id":1,"key":"k","x":"\\udbff\\u0041"}',
}


@pytest.mark.parametrize("where", SURROGATE_FRAMES)
def test_a_lone_surrogate_may_be_refused_or_read_as_a_string(where: str) -> None:
    text = SURROGATE_FRAMES[where]
    j = Judge(ConnectionState() if "join" in text else None).send(text)
    # orjson's answer, which R1.7 recommends: BAD_REQUEST, id null or the id.
    assert j.allows(error(None, BAD)) and j.allows(error(1, BAD))
    # JavaScript's answer: the string holds the code unit, and the request goes on.
    kept = json.loads(text)
    if kept["type"] == "get":
        assert j.allows(value(1, kept["key"]))
    elif kept["type"] == "set":
        assert j.allows(ok(1))
    elif kept["type"] == "join":
        echo = {"type": "joined", "id": 1, "session": kept["session"]}
        echo |= {"participant": kept["participant"], "limits": {"maxKeys": 2, "maxValueBytes": 8}}
        assert j.allows(echo)
        assert not j.allows(echo | {"session": "other"})
    else:
        assert j.allows(error(1, BAD))  # an unknown type, however it is read
    assert not j.allows(error(1, ErrorCode.INVALID_VALUE))
    assert not j.allows(error(2, BAD))


def test_a_lone_surrogate_key_is_kept_or_replaced_but_stays_that_key() -> None:
    j = Judge().send('{"type":"get","id":1,"key":"\\ud800"}')
    assert j.allows(value(1, "\ud800"))  # JavaScript keeps the code unit
    assert j.allows(value(1, "\ufffd"))  # Go replaces it with U+FFFD
    wrong = j.problem(value(1, "k"))
    assert wrong is not None and "R3.1" in wrong
    assert not j.allows(error(1, ErrorCode.INVALID_KEY))  # it is a non-empty string either way


def test_a_set_accepted_with_a_lone_surrogate_is_what_later_reads_see() -> None:
    j = Judge()
    j.send('{"type":"set","id":2,"key":"\\ud800","value":"v"}').answer(ok(2))
    j.send('{"type":"get","id":3,"key":"\\ud800"}')
    assert j.allows(value(3, "\ud800", "v"))
    assert j.allows(value(3, "\ufffd", "v"))  # a replacing server stored U+FFFD
    assert not j.allows(value(3, "\ud800", "w"))


@pytest.mark.parametrize(
    ("plain", "too_large", "fits"),
    [
        (7, True, True),  # 7 bytes and a surrogate: 7 or 10 bytes against 8, either side
        (9, True, False),  # 9 bytes beside it: too large however it counts
        (2, False, True),  # 2 or 5 bytes: fits however it counts
    ],
)
def test_a_lone_surrogate_may_count_either_side_of_the_value_limit(
    plain: int, too_large: bool, fits: bool
) -> None:
    j = Judge().send(f'{{"type":"set","id":2,"key":"k","value":"{"a" * plain}\\ud800"}}')
    assert j.allows(error(2, ErrorCode.VALUE_TOO_LARGE)) is too_large
    assert j.allows(ok(2)) is fits
    assert j.allows(error(None, BAD))  # refusing the surrogate is always right (R1.7)


# --- ids (R1.2) ---------------------------------------------------------------------


@pytest.mark.parametrize("rid", [2**53 + 1, -(2**53 + 1), 2**64, 10**30])
def test_an_id_outside_the_interoperable_range_may_earn_any_answer(rid: int) -> None:
    j = Judge().send(f'{{"type":"get","id":{rid},"key":"k"}}')
    assert j.allows(value(float(rid).__int__(), "k"))  # JavaScript rounds it to a double
    assert j.allows(value(rid, "k"))
    assert j.allows(error(None, BAD)) and j.allows(error(7, ErrorCode.INVALID_VALUE))
    wrong_type = j.problem(ok(rid))
    assert wrong_type is not None and "got an 'ok' reply" in wrong_type
    assert "any error, or a 'value' reply, with any id" in wrong_type
    # The rest of the request is still judged: the value must be what the session holds.
    assert not j.allows(value(rid, "k", "never written"))


def test_the_first_frame_of_the_issue_passes() -> None:
    j = Judge().send('{"type":"get","id":9007199254740993,"key":"k"}')
    assert j.allows(value(9007199254740992, "k"))
    assert outside_id_range(scan("9007199254740993").value)  # type: ignore[union-attr]
    assert not outside_id_range(scan("9007199254740991").value)  # type: ignore[union-attr]


def test_a_write_with_a_huge_id_applies_only_when_answered_ok() -> None:
    j = Judge()
    j.send('{"type":"set","id":18446744073709551616,"key":"k","value":"v"}').answer(
        ok(18446744073709551616)
    )
    j.send('{"type":"get","id":2,"key":"k"}')
    assert j.allows(value(2, "k", "v")) and not j.allows(value(2, "k", None))
    j.send('{"type":"set","id":18446744073709551616,"key":"k","value":"w"}').answer(
        error(None, BAD)
    )
    j.send('{"type":"get","id":3,"key":"k"}')
    assert j.allows(value(3, "k", "v")) and not j.allows(value(3, "k", "w"))  # R5.3


@pytest.mark.parametrize("written", ["1.0", "1e0", "1E0", "10e-1", "1.0000000000000001"])
def test_an_id_written_like_an_integer_is_read_as_one_or_refused(written: str) -> None:
    j = Judge().send(f'{{"type":"get","id":{written},"key":"k"}}')
    assert j.allows(value(1, "k"))  # JavaScript and Go read the integer 1
    assert j.allows(error(None, BAD))  # orjson reads a float: not an integer
    assert not j.allows(value(2, "k"))
    assert not j.allows(error(1, BAD))  # a refusal of the id as no integer carries null


def test_negative_zero_is_echoed_as_zero_or_refused() -> None:
    j = Judge().send('{"type":"get","id":-0,"key":"k"}')
    assert j.allows(value(0, "k")) and j.allows(error(None, BAD))
    assert not j.allows(value(1, "k"))


# --- other parser choices -------------------------------------------------------------


def test_a_repeated_id_may_be_read_either_way_or_refused() -> None:
    j = Judge().send('{"type":"get","id":1,"id":2,"key":"k"}')
    assert j.allows(value(1, "k")) and j.allows(value(2, "k"))
    assert j.allows(error(None, BAD)) and j.allows(error(2, BAD))
    assert not j.allows(value(3, "k"))


def test_a_repeated_type_may_be_read_either_way() -> None:
    j = Judge().send('{"type":"get","type":"observe","id":1,"key":"k"}')
    assert j.allows(value(1, "k"))
    assert j.allows({"type": "observing", "id": 1, "observerId": "o1"})
    assert not j.allows(ok(1))


def test_a_repeated_key_leaves_the_model_open_rather_than_false_alarm() -> None:
    j = Judge()
    j.send('{"type":"set","id":1,"key":"a","key":"b","value":"v"}').answer(ok(1))
    for key in ("a", "b"):
        j.send(f'{{"type":"get","id":2,"key":"{key}"}}')
        assert j.allows(value(2, key, "v")) and j.allows(value(2, key, None))
        assert not j.allows(value(2, key, "w"))
    # A read settles it, so the next read of that key has one right answer again.
    j.send('{"type":"get","id":3,"key":"a"}').answer(value(3, "a", "v"))
    j.send('{"type":"get","id":4,"key":"a"}')
    assert not j.allows(value(4, "a", None))


def test_a_repeated_value_may_be_either_one() -> None:
    j = Judge()
    j.send('{"type":"set","id":1,"key":"k","value":"first","value":"last"}').answer(ok(1))
    j.send('{"type":"get","id":2,"key":"k"}')
    assert j.allows(value(2, "k", "first")) and j.allows(value(2, "k", "last"))
    assert not j.allows(value(2, "k", None))  # one of them was written for sure


def test_an_ambiguous_key_count_allows_both_answers_at_the_limit() -> None:
    j = Judge()
    j.send('{"type":"set","id":1,"key":"a","value":"v"}').answer(ok(1))
    j.send('{"type":"set","id":2,"key":"b","key":"c","value":"v"}').answer(ok(2))
    # Two keys for sure; one more may or may not fit, depending on which was written.
    j.send('{"type":"set","id":3,"key":"b","value":"v"}')
    assert j.allows(ok(3)) and j.allows(error(3, ErrorCode.KEY_LIMIT_EXCEEDED))


def test_a_stop_of_a_repeated_observer_id_leaves_both_open() -> None:
    j = Judge()
    for rid, oid in ((1, "o1"), (2, "o2")):
        j.send(f'{{"type":"observe","id":{rid},"key":"k"}}').answer(
            {"type": "observing", "id": rid, "observerId": oid}
        )
    j.send('{"type":"stopObserving","id":3,"observerId":"o1","observerId":"o2"}').answer(ok(3))
    update = {"type": "update", "key": "k", "value": "v", "updatedBy": {"id": "p", "name": "P"}}
    j.model.apply([Set(4, "k", "v")])
    assert judge_update(update | {"observerId": "o1"}, j.conn, j.model, None) is None
    j.send('{"type":"stopObserving","id":5,"observerId":"o1"}')
    assert j.allows(ok(5)) and j.allows(error(5, ErrorCode.UNKNOWN_OBSERVER))


def test_a_number_past_a_double_may_be_refused_or_be_no_string() -> None:
    j = Judge().send('{"type":"get","id":4,"key":1e400}')
    assert j.allows(error(None, BAD))  # orjson refuses it
    assert j.allows(error(4, ErrorCode.INVALID_KEY))  # JavaScript reads Infinity: no string
    assert not j.allows(value(4, "k"))
    j.send('{"type":"set","id":4,"key":"k","value":' + "9" * 400 + "}")
    assert j.allows(error(None, BAD)) and j.allows(error(4, ErrorCode.INVALID_VALUE))
    assert not j.allows(ok(4))


def test_nan_is_no_json_but_pythons_parser_reads_it() -> None:
    j = Judge().send('{"type":"set","id":4,"key":"k","value":NaN}')
    assert j.allows(error(None, BAD))
    assert j.allows(error(4, ErrorCode.INVALID_VALUE))
    assert not j.allows(ok(4))


# --- server messages and observers ------------------------------------------------


def test_extra_fields_in_server_messages_are_allowed() -> None:
    j = Judge().send('{"type":"get","id":3,"key":"k"}')
    assert j.allows(value(3, "k") | {"served": {"by": "node"}})
    j = Judge(ConnectionState())
    j.send('{"type":"join","id":1,"session":"s","participant":{"id":"p","name":"P"}}')
    joined_reply = {"type": "joined", "id": 1, "session": "s", "x": 1}
    joined_reply |= {"participant": {"id": "p", "name": "P", "role": "host"}}
    assert j.allows(joined_reply | {"limits": {"maxKeys": 2, "maxValueBytes": 8, "maxFrame": 9}})


def test_a_stopped_observer_id_may_be_given_again() -> None:
    j = Judge()
    j.send('{"type":"observe","id":1,"key":"k"}').answer(
        {"type": "observing", "id": 1, "observerId": "o1"}
    )
    j.send('{"type":"stopObserving","id":2,"observerId":"o1"}').answer(ok(2))
    j.send('{"type":"observe","id":3,"key":"j"}')
    reused = {"type": "observing", "id": 3, "observerId": "o1"}
    j.answer(reused)
    j.send('{"type":"set","id":4,"key":"j","value":"v"}').answer(ok(4))
    update = {"type": "update", "observerId": "o1", "key": "j", "value": "v", "updatedBy": {}}
    assert judge_update(update, j.conn, j.model, None) is None
    # Held twice at once, though, is no observer of its own (R4.4).
    j.send('{"type":"observe","id":5,"key":"j"}')
    held = j.problem({"type": "observing", "id": 5, "observerId": "o1"})
    assert held is not None and "R4.4" in held


def test_updates_must_belong_to_an_active_observer_and_a_real_write() -> None:
    model, conn = SessionModel(LIMITS), joined()
    conn.issued["o1"] = conn.observers["o1"] = frozenset({"k"})
    update = {"type": "update", "observerId": "o1", "key": "k", "value": "v", "updatedBy": {}}
    nobody = judge_update(update, conn, model, None)
    assert nobody is not None and "expected one of the values written" in nobody
    assert judge_update(update, conn, model, Set(2, "k", "v")) is None
    unknown = judge_update(update | {"observerId": "o2"}, conn, model, None)
    assert unknown is not None and "no observing reply" in unknown and "R4.8" in unknown
    other_key = judge_update(update | {"key": "j"}, conn, model, None)
    assert other_key is not None and "an observer of 'k'" in other_key
    conn.observers.pop("o1")
    conn.stopped.add("o1")
    after_stop = judge_update(update, conn, model, Set(2, "k", "v"))
    assert after_stop is not None and "R4.5" in after_stop


def test_the_pending_frame_may_write_the_value_an_update_reports() -> None:
    j = Judge()
    j.send('{"type":"observe","id":1,"key":"k"}').answer(
        {"type": "observing", "id": 1, "observerId": "o1"}
    )
    j.send('{"type":"set","id":2,"key":"k","value":"a","value":"b"}')
    update = {"type": "update", "observerId": "o1", "key": "k", "updatedBy": {}}
    for written in ("a", "b"):
        assert judge_update(update | {"value": written}, j.conn, j.model, j.expected) is None
    assert judge_update(update | {"value": "c"}, j.conn, j.model, j.expected) is not None


# --- the scanner against the standard library -----------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=12,
)


@given(json_values)
def test_the_scanner_reads_json_as_the_standard_library_does(data: object) -> None:
    text = json.dumps(data)
    scanned = scan(text)
    assert scanned is not None
    assert Personality("typed", "last").materialize(scanned.value) == _to_depth(json.loads(text))


def _to_depth(value: object, depth: int = 1) -> object:
    # The personality builds containers only three levels deep; nothing judges deeper.
    if isinstance(value, dict):
        return {} if depth > 3 else {k: _to_depth(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [] if depth > 3 else [_to_depth(v, depth + 1) for v in value]
    return value


@pytest.mark.parametrize(
    "text", ["", "{", '{"a":1,}', "[1 2]", '{"a" 1}', "01", '"\\x"', "1 2", "nul", '"\x01"']
)
def test_the_scanner_refuses_what_is_not_json(text: str) -> None:
    assert scan(text) is None


def test_the_scanner_goes_deep_without_recursion() -> None:
    scanned = scan("[" * 50_000 + "]" * 50_000)
    assert scanned is not None and scanned.depth == 50_000
