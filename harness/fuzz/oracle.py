"""What a server must do with each fuzzed frame, and whether what it did is allowed.

Pure functions and plain state, no I/O: the runner feeds frames and replies
through here, and the unit tests feed hand-made ones.

For a text frame the answer comes from :func:`harness.protocol.interpret_request`
(the spec's precedence rule, R5.2) plus the state only a server holds, which
the fuzzer mirrors in :class:`SessionModel` and :class:`ConnectionState`: which
observers are active (R4.5) and how many keys the session holds (R3.6).
Besides the reply, a server may close the connection with a code the spec or
RFC 6455 gives to that kind of frame (:data:`CLOSE_CODES_FOR`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.protocol import (
    CLOSE_FRAME_TOO_LARGE,
    ErrorCode,
    Get,
    Join,
    Limits,
    Observe,
    Rejection,
    Request,
    Set,
    StopObserving,
    interpret_request,
)
from harness.protocol.messages import is_integer

from .frames import Frame

#: A frame this long may exceed a server's frame limit, so a 1009 close is allowed (R1.6).
#: The spec names no minimum limit; 8 KiB fits the largest legal request with its
#: 1024-byte value escaped at worst (six bytes per byte) and a generous key.
FRAME_LIMIT_FLOOR = 8 * 1024
#: Nesting this deep is past what many JSON parsers accept; refusing such a frame
#: as BAD_REQUEST is allowed (the spec pins no depth), crashing on it is not.
DEEP_NESTING = 100

CLOSE_INVALID_UTF8 = 1007
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003


@dataclass
class SessionModel:
    """What the session holds, from the writes the server acknowledged.

    ``exact`` is true for the fuzzer's own fresh sessions: nobody else writes
    there, so every get has one right answer and the key count is known.
    """

    limits: Limits
    exact: bool = True
    values: dict[str, str | None] = field(default_factory=dict)
    #: Every value ever acknowledged per key, so an update can be matched to a write.
    written: dict[str, set[str | None]] = field(default_factory=dict)

    def key_count(self) -> int:
        return sum(value is not None for value in self.values.values())

    def would_exceed(self, request: Set) -> bool:
        """R3.6: a new key beyond maxKeys is refused; overwrites and deletes are not."""
        if request.value is None or self.values.get(request.key) is not None:
            return False
        return self.key_count() >= self.limits.max_keys

    def apply(self, request: Set) -> None:
        self.values[request.key] = request.value
        self.written.setdefault(request.key, set()).add(request.value)


@dataclass
class ConnectionState:
    """One fuzzed connection as its client sees it."""

    joined: Join | None = None
    #: Active observerId -> key (R4.4, R4.5).
    observers: dict[str, str] = field(default_factory=dict)
    #: Every observerId this connection was given, active or stopped.
    issued: dict[str, str] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)
    last_observer: str | None = None


@dataclass(frozen=True, slots=True)
class Expected:
    """The replies and closes a frame may earn.

    ``request`` is the request a success reply answers (None: no success is
    allowed); ``errors`` are the acceptable (id, code) error replies.
    """

    request: Request | None
    errors: frozenset[tuple[int | None, ErrorCode]]
    close_codes: frozenset[int]
    why: str

    def describe(self) -> str:
        allowed = [f"a {type(self.request).__name__.lower()} success"] if self.request else []
        allowed += [f"{code} with id {rid}" for rid, code in sorted(self.errors, key=str)]
        allowed += [f"close {code}" for code in sorted(self.close_codes)]
        return f"{' or '.join(allowed)} ({self.why})"


def expect(frame: Frame, conn: ConnectionState, model: SessionModel) -> Expected:
    """Everything the spec allows a server to answer to ``frame`` in this state."""
    if frame.binary:
        # R5.4: BAD_REQUEST; an endpoint that takes only text may close with 1003 (RFC 6455 7.4.1).
        return Expected(
            None,
            frozenset({(None, ErrorCode.BAD_REQUEST)}),
            frozenset({CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED_DATA}),
            "a binary frame (R5.4)",
        )
    closes = (
        frozenset({CLOSE_FRAME_TOO_LARGE}) if len(frame.data) > FRAME_LIMIT_FLOOR else frozenset()
    )
    if not frame.valid_utf8:
        # RFC 6455 8.1 makes the server fail the connection with 1007; a store that
        # decodes frames itself may instead call it not JSON (R5.4).
        return Expected(
            None,
            frozenset({(None, ErrorCode.BAD_REQUEST)}),
            closes | {CLOSE_INVALID_UTF8},
            "a text frame that is not valid UTF-8 (R1.1)",
        )
    interpreted = interpret_request(frame.data, joined=conn.joined is not None, limits=model.limits)
    errors: set[tuple[int | None, ErrorCode]] = set()
    if nesting_depth(frame.data) > DEEP_NESTING:
        errors |= {(None, ErrorCode.BAD_REQUEST), (_read_id(frame.data), ErrorCode.BAD_REQUEST)}
    match interpreted:
        case Rejection(id=rid, code=code, message=message):
            errors.add((rid, code))
            return Expected(None, frozenset(errors), closes, f"{message} (R5.1, R5.2)")
        case Join():
            # An access check may refuse any join (R2.4).
            errors.add((interpreted.id, ErrorCode.UNAUTHORIZED))
            return Expected(interpreted, frozenset(errors), closes, "a valid join (R2.1)")
        case Set() if model.exact and model.would_exceed(interpreted):
            errors.add((interpreted.id, ErrorCode.KEY_LIMIT_EXCEEDED))
            return Expected(None, frozenset(errors), closes, "the session is full (R3.6)")
        case Set() if not model.exact:
            errors.add((interpreted.id, ErrorCode.KEY_LIMIT_EXCEEDED))
            return Expected(interpreted, frozenset(errors), closes, "a set in a shared session")
        case StopObserving() if interpreted.observer_id not in conn.observers:
            errors.add((interpreted.id, ErrorCode.UNKNOWN_OBSERVER))
            why = f"{interpreted.observer_id!r} is not active here (R4.5)"
            return Expected(None, frozenset(errors), closes, why)
    return Expected(interpreted, frozenset(errors), closes, "a valid request")


def judge(
    expected: Expected, reply: dict[str, Any], conn: ConnectionState, model: SessionModel
) -> str | None:
    """Why ``reply`` (a schema-valid, non-update frame) is wrong, or None when it is allowed."""
    kind = reply.get("type")
    if kind == "error":
        got = (reply.get("id"), reply.get("code"))
        for rid, code in expected.errors:
            if _same_id(got[0], rid) and got[1] == code:
                return None
        return f"got error {got[1]} with id {got[0]!r}; expected {expected.describe()}"
    request = expected.request
    if request is None:
        return f"got a {kind!r} reply; expected {expected.describe()}"
    if not _same_id(reply.get("id"), request.id):
        return f"the reply's id is {reply.get('id')!r}, the request's {request.id} (R1.2)"
    match request:
        case Join(session=session, participant=participant):
            if kind != "joined":
                return f"a join was answered with {kind!r}, not 'joined' (R2.1)"
            if reply["session"] != session:
                return f"joined echoes session {reply['session']!r}, not {session!r} (R2.1)"
            echoed = reply["participant"]
            if (echoed.get("id"), echoed.get("name")) != (participant.id, participant.name):
                return f"joined echoes participant {echoed!r}, not {participant!r} (R2.1)"
        case Set():
            if kind != "ok":
                return f"a set was answered with {kind!r}, not 'ok' (R3.1)"
        case Get(key=key):
            if kind != "value" or reply["key"] != key:
                return f"a get of {key!r} was answered with {reply!r} (R3.1)"
            if model.exact and reply["value"] != model.values.get(key):
                want = model.values.get(key)
                return f"get {key!r} returned {reply['value']!r}; the session holds {want!r} (R3.1)"
        case Observe():
            if kind != "observing":
                return f"an observe was answered with {kind!r}, not 'observing' (R4.1)"
            if reply["observerId"] in conn.observers:
                return f"observerId {reply['observerId']!r} is already active here (R4.4)"
        case StopObserving():
            if kind != "ok":
                return f"a stopObserving was answered with {kind!r}, not 'ok' (R4.5)"
    return None


def apply(
    request: Request, reply: dict[str, Any], conn: ConnectionState, model: SessionModel
) -> None:
    """Record what a successful reply changed, so later frames are judged against it."""
    match request:
        case Join():
            conn.joined = request
        case Set():
            model.apply(request)
        case Observe(key=key):
            observer_id = reply["observerId"]
            conn.observers[observer_id] = conn.issued[observer_id] = key
            conn.last_observer = observer_id
        case StopObserving(observer_id=observer_id):
            conn.observers.pop(observer_id, None)
            conn.stopped.add(observer_id)


def judge_update(
    update: dict[str, Any], conn: ConnectionState, model: SessionModel, pending: Request | None
) -> str | None:
    """Why an update (a schema-valid frame) cannot be right, or None."""
    observer_id, key, value = update["observerId"], update["key"], update["value"]
    if observer_id not in conn.issued:
        return f"an update for observerId {observer_id!r}, which this connection never held (R4.1)"
    if observer_id in conn.stopped:
        return f"an update for observerId {observer_id!r} after its stopObserving's ok (R4.5)"
    if conn.issued[observer_id] != key:
        return f"an update of {key!r} for an observer of {conn.issued[observer_id]!r} (R4.1)"
    possible = set(model.written.get(key, ()))
    if isinstance(pending, Set) and pending.key == key:
        possible.add(pending.value)  # the update may come before the set's ok
    if model.exact and value not in possible:
        return f"an update of {key!r} to {value!r}, a value nobody wrote (R4.2)"
    return None


def nesting_depth(data: bytes) -> int:
    """The deepest array/object nesting in a JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _read_id(data: bytes) -> int | None:
    """The frame's top-level integer id as a shallower parser would read it, if any.

    Deep frames are generated with the nesting in a field after ``id``, so a
    parser that refuses them partway may still have read it.
    """
    match = re.match(rb'\s*\{\s*"type"\s*:\s*"[^"\\]*"\s*,\s*"id"\s*:\s*(-?\d+)\s*[,}]', data)
    if match is None:
        match = re.match(rb'\s*\{\s*"id"\s*:\s*(-?\d+)\s*[,}]', data)
    return int(match.group(1)) if match else None


def _same_id(got: object, want: int | None) -> bool:
    # 1 == 1.0 == True in Python; an id is an integer or null and nothing else (R5.1).
    if want is None:
        return got is None
    return is_integer(got) and got == want


__all__ = [
    "DEEP_NESTING",
    "FRAME_LIMIT_FLOOR",
    "ConnectionState",
    "Expected",
    "SessionModel",
    "apply",
    "expect",
    "judge",
    "judge_update",
    "nesting_depth",
]
