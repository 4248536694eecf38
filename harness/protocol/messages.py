"""Typed messages of the store protocol and their one encode/decode pair.

This is the only module that knows the wire's field names (``observerId``,
``updatedBy``...); request type names (``set``, ``stopObserving``) come from the
one table of request kinds, :mod:`harness.protocol.kinds`. Everything else works
with the dataclasses below.

Two decoders live here, one per direction:

* :func:`decode_server_message` is strict: the harness judges servers, so
  anything the spec does not allow raises :class:`ProtocolViolation` quoting
  the frame.
* :func:`interpret_request` is what a server does with a client frame: it
  returns the typed request or a :class:`Rejection` with the error code the
  spec's precedence rule picks (docs/protocol.md R5.2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from harness.errors import ProtocolViolation
from harness.protocol.kinds import GET, JOIN, OBSERVE, SET, STOP_OBSERVING, RequestKind
from harness.protocol.limits import ErrorCode, Limits


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    name: str = ""


# --- client to server -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    id: int
    session: str
    participant: Participant
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Set:
    id: int
    key: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Get:
    id: int
    key: str


@dataclass(frozen=True, slots=True)
class Observe:
    id: int
    key: str


@dataclass(frozen=True, slots=True)
class StopObserving:
    id: int
    observer_id: str


Request = Join | Set | Get | Observe | StopObserving

# --- server to client -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Joined:
    id: int
    session: str
    participant: Participant
    #: None only from a store adapter whose store promises no limits (never on the wire).
    limits: Limits | None


@dataclass(frozen=True, slots=True)
class Ok:
    id: int


@dataclass(frozen=True, slots=True)
class Value:
    id: int
    key: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Observing:
    id: int
    observer_id: str


@dataclass(frozen=True, slots=True)
class Error:
    id: int | None
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Update:
    observer_id: str
    key: str
    value: str | None
    updated_by: Participant


Reply = Joined | Ok | Value | Observing | Error
ServerMessage = Reply | Update

#: The kind of each request class (harness.protocol.kinds names it every way).
KIND_OF: dict[type, RequestKind] = {
    Join: JOIN,
    Set: SET,
    Get: GET,
    Observe: OBSERVE,
    StopObserving: STOP_OBSERVING,
}
#: The wire ``type`` of each request, and the success reply it expects.
REQUEST_TYPES: dict[type, str] = {cls: kind.wire for cls, kind in KIND_OF.items()}
EXPECTED_REPLY: dict[type, type] = {
    Join: Joined,
    Set: Ok,
    Get: Value,
    Observe: Observing,
    StopObserving: Ok,
}


def request_name(request: Request) -> str:
    """The wire name of a request's type, e.g. ``stopObserving``."""
    return REQUEST_TYPES[type(request)]


def request_kind(request: Request) -> RequestKind:
    return KIND_OF[type(request)]


# Bound once as plain strings: to_wire runs for every request sent, interpret_object
# for every request a server reads.
_JOIN, _SET, _GET, _OBSERVE, _STOP = (k.wire for k in (JOIN, SET, GET, OBSERVE, STOP_OBSERVING))
# A tuple, not a set: the type a client sent may be any JSON value, a list too.
_AFTER_JOIN = (_SET, _GET, _OBSERVE, _STOP)


# --- encoding ---------------------------------------------------------------


def _participant(p: Participant) -> dict[str, str]:
    return {"id": p.id, "name": p.name}


# One function per message type, found by the exact type: every frame either side
# sends is encoded here, and a dict lookup is cheaper than trying class patterns in turn.


def _join_wire(m: Join) -> dict[str, Any]:
    data: dict[str, Any] = {"type": _JOIN, "id": m.id, "session": m.session}
    data["participant"] = _participant(m.participant)
    if m.token is not None:
        data["token"] = m.token
    return data


def _joined_wire(m: Joined) -> dict[str, Any]:
    return {
        "type": "joined",
        "id": m.id,
        "session": m.session,
        "participant": _participant(m.participant),
        "limits": m.limits.to_wire(),
    }


def _update_wire(m: Update) -> dict[str, Any]:
    return {
        "type": "update",
        "observerId": m.observer_id,
        "key": m.key,
        "value": m.value,
        "updatedBy": _participant(m.updated_by),
    }


_WIRE_FORMS: dict[type, Callable[[Any], dict[str, Any]]] = {
    Join: _join_wire,
    Set: lambda m: {"type": _SET, "id": m.id, "key": m.key, "value": m.value},
    Get: lambda m: {"type": _GET, "id": m.id, "key": m.key},
    Observe: lambda m: {"type": _OBSERVE, "id": m.id, "key": m.key},
    StopObserving: lambda m: {"type": _STOP, "id": m.id, "observerId": m.observer_id},
    Joined: _joined_wire,
    Ok: lambda m: {"type": "ok", "id": m.id},
    Value: lambda m: {"type": "value", "id": m.id, "key": m.key, "value": m.value},
    Observing: lambda m: {"type": "observing", "id": m.id, "observerId": m.observer_id},
    Error: lambda m: {"type": "error", "id": m.id, "code": str(m.code), "message": m.message},
    Update: _update_wire,
}


def to_wire(message: Request | ServerMessage) -> dict[str, Any]:
    """The JSON object a message is sent as."""
    form = _WIRE_FORMS.get(type(message))
    if form is None:
        # A subclass of a message type is still that message.
        form = next((f for cls, f in _WIRE_FORMS.items() if isinstance(message, cls)), None)
        if form is None:
            raise TypeError(f"not a protocol message: {message!r}")
    return form(message)


def encode(message: Request | ServerMessage) -> bytes:
    """One text frame's UTF-8 payload."""
    return orjson.dumps(to_wire(message))


class UpdateFrames:
    """Builds the update frame for each observer of one write without re-encoding the body.

    A write to a key with a thousand observers is a thousand frames that differ
    only in ``observerId``; encoding the shared tail once keeps fan-out cheap.
    """

    __slots__ = ("_tail",)

    def __init__(self, key: str, value: str | None, updated_by: Participant) -> None:
        body = orjson.dumps({"key": key, "value": value, "updatedBy": _participant(updated_by)})
        self._tail = b"," + body[1:]

    def for_observer(self, observer_id: str) -> bytes:
        return b'{"type":"update","observerId":' + orjson.dumps(observer_id) + self._tail


# --- decoding what a server sent (strict) -----------------------------------


def loads_json(text: str | bytes) -> Any:
    """Parse JSON as RFC 8259 allows it; raises ValueError for text that is not JSON.

    orjson is the fast path. It refuses escaped lone surrogates and numbers past a
    double's range, which RFC 8259 sections 8.2 and 9 leave to implementations: a
    server may echo a lone surrogate a client sent (R1.7), so such text is read again
    with the standard library, which keeps them. NaN and Infinity are not JSON.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise ValueError(str(exc)) from None


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def parse_json_object(frame: str | bytes) -> dict[str, Any]:
    """Parse a text frame into a JSON object or raise ProtocolViolation."""
    try:
        data = loads_json(frame)
    except ValueError as exc:
        raise ProtocolViolation(
            f"frame is not valid JSON ({exc})", frame, requirement="R1.1"
        ) from None
    if not isinstance(data, dict):
        raise ProtocolViolation("frame is not a JSON object", frame, requirement="R1.1")
    return data


def decode_server_message(frame: str | bytes) -> ServerMessage:
    """Decode one frame a server sent, checking every field the spec requires."""
    data = parse_json_object(frame)
    kind = data.get("type")
    try:
        match kind:
            case "update":
                return Update(
                    _str(data, "observerId"),
                    _str(data, "key"),
                    _str_or_null(data, "value"),
                    _participant_from(data, "updatedBy"),
                )
            case "ok":
                return Ok(_int(data, "id"))
            case "value":
                return Value(_int(data, "id"), _str(data, "key"), _str_or_null(data, "value"))
            case "observing":
                return Observing(_int(data, "id"), _str(data, "observerId"))
            case "joined":
                return Joined(
                    _int(data, "id"),
                    _nonempty_str(data, "session"),
                    _participant_from(data, "participant"),
                    _limits_from(data),
                )
            case "error":
                if "id" not in data:
                    raise _Bad("field 'id' is missing (it must be an integer or null)")
                request_id = None if data["id"] is None else _int(data, "id")
                code_text = _str(data, "code")
                try:
                    code = ErrorCode(code_text)
                except ValueError:
                    raise _Bad(f"unknown error code {code_text!r}") from None
                return Error(request_id, code, _str(data, "message"))
            case _:
                raise _Bad(f"unknown message type {kind!r}")
    except _Bad as exc:
        raise ProtocolViolation(str(exc), frame, requirement="R1.4") from None


class _Bad(Exception):
    pass


def _field(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise _Bad(f"field {name!r} is missing")
    return data[name]


def _str(data: dict[str, Any], name: str) -> str:
    value = _field(data, name)
    if not isinstance(value, str):
        raise _Bad(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def _nonempty_str(data: dict[str, Any], name: str) -> str:
    value = _str(data, name)
    if not value:
        raise _Bad(f"field {name!r} must be a non-empty string")
    return value


def _str_or_null(data: dict[str, Any], name: str) -> str | None:
    value = _field(data, name)
    if value is not None and not isinstance(value, str):
        raise _Bad(f"field {name!r} must be a string or null, got {type(value).__name__}")
    return value


def _int(data: dict[str, Any], name: str) -> int:
    value = _field(data, name)
    # A number written 1.0 or 1e0 is the integer 1 to JSON (and to the schema): a server
    # whose encoder writes numbers that way conforms.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not is_integer(value):
        raise _Bad(f"field {name!r} must be an integer, got {value!r}")
    return value


def _participant_from(data: dict[str, Any], name: str) -> Participant:
    value = _field(data, name)
    if not isinstance(value, dict):
        raise _Bad(f"field {name!r} must be an object")
    participant_id = _str(value, "id")
    if not participant_id:
        raise _Bad(f"field '{name}.id' must be a non-empty string")
    return Participant(participant_id, _str(value, "name"))


def _limits_from(data: dict[str, Any]) -> Limits:
    value = _field(data, "limits")
    if not isinstance(value, dict):
        raise _Bad("field 'limits' must be an object")
    max_keys, max_bytes = _int(value, "maxKeys"), _int(value, "maxValueBytes")
    if max_keys < 1 or max_bytes < 1:
        raise _Bad("limits must be positive integers")
    return Limits(max_keys, max_bytes)


def is_integer(value: object) -> bool:
    # JSON true/false decode to bool, which Python counts as int; the spec does not.
    return isinstance(value, int) and not isinstance(value, bool)


# --- interpreting what a client sent (server side) ---------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request the server must answer with an error instead of applying it."""

    id: int | None
    code: ErrorCode
    message: str

    def reply(self) -> Error:
        return Error(self.id, self.code, self.message)


def interpret_request(frame: str | bytes, *, joined: bool, limits: Limits) -> Request | Rejection:
    """Turn one text frame into a request, or the rejection the spec requires.

    Checks run in the spec's order of precedence (R5.2): BAD_REQUEST, then
    NOT_JOINED, then the field checks. The checks that need server state
    (UNKNOWN_OBSERVER for an inactive id, KEY_LIMIT_EXCEEDED, UNAUTHORIZED)
    are the server's.
    """
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return Rejection(None, ErrorCode.BAD_REQUEST, "frame is not valid JSON")
    if not isinstance(data, dict):
        return Rejection(None, ErrorCode.BAD_REQUEST, "frame is not a JSON object")
    return interpret_object(data, joined=joined, limits=limits)


def interpret_object(
    data: dict[str, Any],
    *,
    joined: bool,
    limits: Limits,
    value_bytes: Callable[[str], int] | None = None,
) -> Request | Rejection:
    """The interpretation step of :func:`interpret_request`, on an already parsed object.

    Parsers differ where RFC 8259 lets them (duplicate names, big numbers, lone
    surrogates), so the fuzzer parses a frame several ways and judges each object
    here. ``value_bytes`` counts a value's size for R3.5 (default
    :func:`utf8_length`); a string holding a lone surrogate has no UTF-8 form, so
    its size depends on how a server encodes it.
    """
    request_id = data.get("id")
    if not is_integer(request_id):
        return Rejection(None, ErrorCode.BAD_REQUEST, "'id' is missing or not an integer")
    kind = data.get("type")
    if kind == _JOIN:
        if joined:
            return Rejection(request_id, ErrorCode.BAD_REQUEST, "this connection already joined")
        return _interpret_join(request_id, data)
    if kind not in _AFTER_JOIN:
        return Rejection(request_id, ErrorCode.BAD_REQUEST, f"unknown request type {kind!r}")
    if not joined:
        return Rejection(request_id, ErrorCode.NOT_JOINED, "join a session first")
    if kind == _STOP:
        observer_id = data.get("observerId")
        if not isinstance(observer_id, str):
            return Rejection(
                request_id, ErrorCode.UNKNOWN_OBSERVER, "'observerId' is missing or not a string"
            )
        return StopObserving(request_id, observer_id)
    key = data.get("key")
    if not isinstance(key, str) or not key:
        return Rejection(request_id, ErrorCode.INVALID_KEY, "'key' must be a non-empty string")
    if kind == _GET:
        return Get(request_id, key)
    if kind == _OBSERVE:
        return Observe(request_id, key)
    if "value" not in data:
        return Rejection(request_id, ErrorCode.INVALID_VALUE, "'value' is missing")
    value = data["value"]
    if value is not None and not isinstance(value, str):
        return Rejection(request_id, ErrorCode.INVALID_VALUE, "'value' must be a string or null")
    if value is not None:
        size = (value_bytes or utf8_length)(value)
        if size > limits.max_value_bytes:
            return Rejection(
                request_id,
                ErrorCode.VALUE_TOO_LARGE,
                f"value is {size} bytes in UTF-8; the limit is {limits.max_value_bytes}",
            )
    return Set(request_id, key, value)


def _interpret_join(request_id: int, data: dict[str, Any]) -> Join | Rejection:
    def bad(reason: str) -> Rejection:
        return Rejection(request_id, ErrorCode.BAD_REQUEST, reason)

    session = data.get("session")
    if not isinstance(session, str) or not session:
        return bad("'session' must be a non-empty string")
    participant = data.get("participant")
    if not isinstance(participant, dict):
        return bad("'participant' must be an object")
    participant_id = participant.get("id")
    if not isinstance(participant_id, str) or not participant_id:
        return bad("'participant.id' must be a non-empty string")
    name = participant.get("name")
    if not isinstance(name, str):
        return bad("'participant.name' must be a string")
    token = data.get("token")
    if "token" in data and not isinstance(token, str):
        return bad("'token' must be a string when present")
    return Join(request_id, session, Participant(participant_id, name), token)


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8, the unit the value limit is counted in (R3.5)."""
    # Fast path: ASCII text is one byte a character.
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))
