"""What a server may answer to each fuzzed frame, and whether what it did is allowed.

Pure functions and plain state, no I/O: the runner feeds frames and replies
through here, and the unit tests feed hand-made ones.

The spec leaves a server's JSON parser the freedom RFC 8259 gives it
(docs/protocol.md, "Left to the implementation"), so a text frame is read the
way each kind of correct parser reads it (:mod:`.jsontext`: duplicate names,
numbers as doubles or typed, lone surrogates kept or replaced), and each reading
is judged by the spec's precedence rule (R5.2) through
:func:`harness.protocol.messages.interpret_object`. Any answer one of them leads
to is allowed, and so is ``BAD_REQUEST`` for a frame some parser refuses as a
whole. A request whose id lies outside ±(2^53-1) may earn any reply or error
(R1.2), but not a close.

The state only a server holds is mirrored in :class:`SessionModel` and
:class:`ConnectionState`: which observers are active (R4.5) and how many keys the
session holds (R3.6). When an answer leaves it open which reading the server
took (an ``ok`` to a set whose ``key`` appears twice), the model keeps every
possibility rather than guess, so it never false-alarms later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.protocol import (
    ErrorCode,
    Get,
    Join,
    Limits,
    Observe,
    Rejection,
    Request,
    Set,
    StopObserving,
    request_name,
    utf8_length,
)
from harness.protocol.closes import (
    CLOSE_FRAME_TOO_LARGE,
    CLOSE_INVALID_UTF8,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_UNSUPPORTED_DATA,
)
from harness.protocol.messages import KIND_OF, interpret_object, is_integer

from .frames import Frame
from .jsontext import (
    DEEP_NESTING,
    MAX_SAFE_INTEGER,
    Number,
    Personality,
    Scanned,
    id_readings,
    lone_surrogate_count,
    outside_id_range,
    personalities,
    scan,
    varying_axes,
)

#: A frame this long may exceed a server's frame limit, so a 1009 close is allowed (R1.6).
#: The spec names no minimum limit; 8 KiB fits the largest legal request with its
#: 1024-byte value escaped at worst (six bytes per byte) and a generous key.
FRAME_LIMIT_FLOOR = 8 * 1024


#: The success reply each request earns (R2.1, R3.1, R4.1, R4.5).
ANSWER: dict[type, str] = {cls: kind.reply for cls, kind in KIND_OF.items()}
#: The requirement each error code answers.
CODE_REQUIREMENT: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: "R5.4",
    ErrorCode.UNAUTHORIZED: "R2.4",
    ErrorCode.NOT_JOINED: "R2.3",
    ErrorCode.UNKNOWN_OBSERVER: "R4.5",
    ErrorCode.INVALID_KEY: "R3.3",
    ErrorCode.INVALID_VALUE: "R3.4",
    ErrorCode.VALUE_TOO_LARGE: "R3.5",
    ErrorCode.KEY_LIMIT_EXCEEDED: "R3.6",
}
_JOIN_FIELDS = re.compile(r"session|participant|token|already joined")

NO_VALUE: frozenset[str | None] = frozenset({None})


@dataclass
class SessionModel:
    """What the session may hold, from the writes the server acknowledged.

    ``exact`` is true for the fuzzer's own fresh sessions: nobody else writes
    there, so every get has a known set of right answers and the key count is
    bounded. ``values`` maps a key to every value it may hold now: one value
    after a plain write, several after an answer that left open which reading
    of a frame the server applied.
    """

    limits: Limits
    exact: bool = True
    values: dict[str, frozenset[str | None]] = field(default_factory=dict)
    #: Every value ever possibly written per key, so an update can be matched to a write.
    written: dict[str, set[str | None]] = field(default_factory=dict)

    def possible(self, key: str) -> frozenset[str | None]:
        return self.values.get(key, NO_VALUE)

    def exceeds(self, request: Set) -> bool | None:
        """R3.6: would this set be refused for the key limit? None: it depends on what applied."""
        if not self.exact:
            return None
        here = self.possible(request.key)
        if request.value is None or None not in here:
            return False  # a delete, or an overwrite of a key that holds a value
        others = [values for key, values in self.values.items() if key != request.key]
        certain = sum(None not in values for values in others)
        maybe = sum(any(v is not None for v in values) for values in others)
        if maybe < self.limits.max_keys:
            return False
        if certain >= self.limits.max_keys and here == NO_VALUE:
            return True
        return None

    def apply(self, writes: Sequence[Set], *, certain: bool = True) -> None:
        """Record acknowledged writes: one of ``writes`` was applied, or none if not ``certain``."""
        by_key: dict[str, set[str | None]] = {}
        for write in writes:
            by_key.setdefault(write.key, set()).add(write.value)
        for key, values in by_key.items():
            self.written.setdefault(key, set()).update(values)
            if certain and len(by_key) == 1:
                self.values[key] = frozenset(values)  # one of them replaced what was there
            else:
                self.values[key] = self.possible(key) | values

    def read(self, key: str, value: str | None) -> None:
        """A get returned ``value`` (one of the possible ones): now that is what the key holds."""
        if self.exact:
            self.values[key] = frozenset({value})


@dataclass
class ConnectionState:
    """One fuzzed connection as its client sees it.

    ObserverIds are scoped to the connection (R2.5): another connection may hold
    the same ids, and this state never looks beyond its own.
    """

    joined: Join | None = None
    #: Active observerId -> the keys it may observe (one, unless the observe was ambiguous).
    observers: dict[str, frozenset[str]] = field(default_factory=dict)
    #: ObserverIds that may or may not be active: an ``ok`` to a stopObserving that
    #: named several (a repeated ``observerId``) stopped one of them.
    unsure: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Every observerId this connection was given, active or stopped.
    issued: dict[str, frozenset[str]] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)
    last_observer: str | None = None


@dataclass(frozen=True, slots=True)
class Expected:
    """The replies and closes a frame may earn.

    ``requests`` are the requests a success reply may answer (one per reading of
    the frame that succeeds), with the id it must echo; ``errors`` the acceptable
    (id, code) error replies. ``any_answer`` says why any reply or error with any
    id is allowed (R1.2: an id outside ±(2^53-1)); ``free_requests`` are then the
    requests a success answers, whatever its id.
    """

    requests: tuple[Request, ...]
    errors: frozenset[tuple[int | None, ErrorCode]]
    close_codes: frozenset[int]
    why: str
    any_answer: str | None = None
    free_requests: tuple[Request, ...] = ()
    #: Why each alternative is allowed, in the spec's terms (for :meth:`describe`).
    reasons: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def request(self) -> Request | None:
        """The one success a plain frame allows (the first, when readings differ)."""
        return self.requests[0] if self.requests else None

    def candidates(self) -> tuple[Request, ...]:
        return self.requests + self.free_requests

    def describe(self) -> str:
        """Every allowed answer with the reason for it, e.g. for a failure's 'expected'."""
        grouped: dict[str, list[str]] = {}
        for text, reason in self._alternatives():
            grouped.setdefault(reason, []).append(text)
        parts = [
            " or ".join(dict.fromkeys(texts)) + (f" ({reason})" if reason else "")
            for reason, texts in grouped.items()
        ]
        return "; or ".join(parts) if parts else "nothing (no answer fits)"

    def _alternatives(self) -> Iterable[tuple[str, str]]:
        if self.any_answer:
            kinds = dict.fromkeys(_article(ANSWER[type(r)]) for r in self.candidates())
            reply = f"{' or '.join(kinds)} reply" if kinds else "no success reply"
            yield f"any error, or {reply}, with any id, the connection kept", self.any_answer
        else:
            for request in self.requests:
                text = f"{describe_success(request)} with id {request.id}"
                yield text, self.reasons.get(_request_tag(request), self.why)
            for rid, code in sorted(self.errors, key=lambda e: (str(e[1]), str(e[0]))):
                text = f"error {code} with id {_show_id(rid)}"
                yield text, self.reasons.get(_error_tag(rid, code), self.why)
        for code in sorted(self.close_codes):
            yield f"a close with code {code}", self.reasons.get(f"close {code}", self.why)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`judge` made of a reply: a problem, or the readings it answers."""

    problem: str | None
    #: The requests the reply may answer; more than one leaves the outcome open.
    applied: tuple[Request, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Alternatives:
    """Collects the allowed answers to one frame, each with its reason."""

    def __init__(self, conn: ConnectionState, model: SessionModel) -> None:
        self.conn, self.model = conn, model
        self.requests: list[Request] = []
        self.free: list[Request] = []
        self.errors: dict[tuple[int | None, ErrorCode], str] = {}
        self.request_reasons: dict[str, str] = {}
        self.any_answer: str | None = None

    def error(self, rid: int | None, code: ErrorCode, reason: str) -> None:
        self.errors.setdefault((rid, code), reason)

    def refusal(self, ids: Iterable[int], reason: str) -> None:
        """A parser refuses the whole frame: BAD_REQUEST, id null or the id it could read."""
        for rid in (None, *ids):
            self.error(rid, ErrorCode.BAD_REQUEST, f"a parser may refuse the frame: {reason}")

    def reading(self, result: Request | Rejection, how: str, *, free: bool = False) -> None:
        """One reading of the frame; ``free``: its success may carry any id (R1.2)."""
        if isinstance(result, Rejection):
            if not free:
                requirement = CODE_REQUIREMENT[result.code]
                if result.code is ErrorCode.BAD_REQUEST and _JOIN_FIELDS.search(result.message):
                    requirement = "R2.2"
                self.error(result.id, result.code, f"{result.message}: {requirement}{how}")
            return
        success = self._state_allows(result, free)
        if success:
            target = self.free if free else self.requests
            if result not in target:
                target.append(result)
                self.request_reasons.setdefault(_request_tag(result), _valid(result) + how)

    def _state_allows(self, request: Request, free: bool) -> bool:
        """Whether the server's state allows a success; the refusals it allows are added."""
        rid = request.id
        match request:
            case Join():
                # An access check may refuse any join it judges (R2.4).
                if not free:
                    self.error(
                        rid, ErrorCode.UNAUTHORIZED, "an access check may refuse a join: R2.4"
                    )
                return True
            case Set():
                exceeds = self.model.exceeds(request)
                if exceeds is not False and not free:
                    limit = self.model.limits.max_keys
                    why = f"the session may already hold its {limit} keys: R3.6"
                    self.error(rid, ErrorCode.KEY_LIMIT_EXCEEDED, why)
                return exceeds is not True
            case StopObserving(observer_id=observer_id):
                if observer_id in self.conn.observers:
                    return True
                if not free:
                    state = "may not be" if observer_id in self.conn.unsure else "is not"
                    why = f"{observer_id!r} {state} an active observer of this connection: R4.5"
                    self.error(rid, ErrorCode.UNKNOWN_OBSERVER, why)
                return observer_id in self.conn.unsure
        return True

    def build(self, close_codes: frozenset[int], why: str, frame_size: int) -> Expected:
        reasons = dict(self.request_reasons)
        if CLOSE_FRAME_TOO_LARGE in close_codes:
            reasons[f"close {CLOSE_FRAME_TOO_LARGE}"] = (
                f"a {frame_size}-byte frame may pass the server's frame limit: R1.6"
            )
        reasons.update({_error_tag(rid, code): text for (rid, code), text in self.errors.items()})
        return Expected(
            tuple(self.requests),
            frozenset(self.errors),
            close_codes,
            why,
            self.any_answer,
            tuple(r for r in self.free if r not in self.requests),
            reasons,
        )


def expect(frame: Frame, conn: ConnectionState, model: SessionModel) -> Expected:
    """Everything the spec allows a server to answer to ``frame`` in this state."""
    if frame.binary:
        # R5.4: BAD_REQUEST; an endpoint that takes only text may close with 1003 (RFC 6455 7.4.1).
        return Expected(
            (),
            frozenset({(None, ErrorCode.BAD_REQUEST)}),
            frozenset({CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED_DATA}),
            "a binary frame: R5.4, or RFC 6455 section 7.4.1 for the close",
        )
    closes = (
        frozenset({CLOSE_FRAME_TOO_LARGE}) if len(frame.data) > FRAME_LIMIT_FLOOR else frozenset()
    )
    if not frame.valid_utf8:
        # RFC 6455 8.1 makes the server fail the connection with 1007; a store that
        # decodes frames itself may instead call it not JSON (R5.4).
        return Expected(
            (),
            frozenset({(None, ErrorCode.BAD_REQUEST)}),
            closes | {CLOSE_INVALID_UTF8},
            "a text frame that is not valid UTF-8: RFC 6455 section 8.1, R5.4",
        )
    alternatives = _Alternatives(conn, model)
    scanned = scan(frame.data.decode("utf-8"))
    if scanned is None:
        # No parser reads it. A server that reads the id before the fault may echo it (R5.1).
        alternatives.refusal(_ids_before_fault(frame.data), "it is not JSON (R1.1, R5.4)")
        why = "a frame no JSON parser reads"
    else:
        _read_every_way(scanned, alternatives, conn, model)
        why = "a valid request"
    return alternatives.build(closes, why, len(frame.data))


def _read_every_way(
    scanned: Scanned, alternatives: _Alternatives, conn: ConnectionState, model: SessionModel
) -> None:
    raw_ids = scanned.top_level_ids()
    readable = set().union(*(id_readings(raw) for raw in raw_ids))
    for reason in scanned.refusals:
        alternatives.refusal(readable, reason)
    out_of_range = [raw for raw in raw_ids if outside_id_range(raw)]
    if out_of_range:
        shown = ", ".join(raw.text for raw in out_of_range if isinstance(raw, Number))
        alternatives.any_answer = (
            f"the id {shown} lies outside ±(2^53-1), where a parser may round it: R1.2"
        )
    readings = personalities(scanned)
    joined = conn.joined is not None
    results: list[tuple[Personality, Request | Rejection, bool, str]] = []
    for personality in readings:
        data = personality.materialize(scanned.value)
        if not isinstance(data, dict):
            reason = "the frame is not a JSON object"
            refused = Rejection(None, ErrorCode.BAD_REQUEST, reason)
            results.append((personality, refused, False, ""))
            continue
        for counter, counted in _value_counters(data, personality):
            result = interpret_object(data, joined=joined, limits=model.limits, value_bytes=counter)
            results.append((personality, result, False, counted))
            if out_of_range:
                # Whatever the server made of the id, a success must fit the rest.
                placeholder = dict(data, id=0)
                result = interpret_object(
                    placeholder, joined=joined, limits=model.limits, value_bytes=counter
                )
                results.append((personality, result, True, counted))
    # Name the parser only where readings differ, and then only by the choices that differ.
    differ = len({result for _, result, free, _ in results if not free}) > 1
    axes = varying_axes(readings)
    for personality, result, free, counted in results:
        how = f", as {personality.describe(axes)} reads it" if differ and axes else ""
        alternatives.reading(result, how + counted, free=free)


def _value_counters(
    data: dict[str, Any], personality: Personality
) -> list[tuple[Callable[[str], int], str]]:
    """How a server may count the value's bytes for R3.5, each with its words.

    A lone surrogate has no UTF-8 form. WTF-8, CESU-8 and JavaScript's
    Buffer.byteLength (which writes U+FFFD for it) count it as 3 bytes, an
    encoder that drops it as 0, so when the count decides which side of
    ``maxValueBytes`` the value falls, both VALUE_TOO_LARGE and success conform.
    A replacing parser (Go) holds U+FFFD instead, 3 bytes by every count.
    """
    value = data.get("value")
    if not isinstance(value, str) or personality.surrogates != "kept":
        return [(utf8_length, "")]
    if not lone_surrogate_count(value):
        return [(utf8_length, "")]

    def dropped(text: str) -> int:
        return utf8_length(text) - 3 * lone_surrogate_count(text)

    return [
        (utf8_length, ", counting a lone surrogate as 3 bytes (WTF-8, Buffer.byteLength)"),
        (dropped, ", counting a lone surrogate as 0 bytes (an encoder that drops it)"),
    ]


def judge(
    expected: Expected, reply: dict[str, Any], conn: ConnectionState, model: SessionModel
) -> Verdict:
    """Whether ``reply`` (a schema-valid, non-update frame) is an allowed answer."""
    kind = reply.get("type")
    rid = reply.get("id")
    if kind == "error":
        code = reply.get("code")
        if expected.any_answer or any(
            _same_id(rid, want) and code == allowed for want, allowed in expected.errors
        ):
            return Verdict(None)
        got = f"got error {code} with id {_show_id(rid)}"
        if any(code == allowed for _, allowed in expected.errors):
            got += (
                " (the code fits, the id does not: an error carries the request's id, "
                "R5.1, exactly within ±(2^53-1), R1.2)"
            )
        return Verdict(f"{got}; expected {expected.describe()}")
    pool = expected.candidates() if expected.any_answer else expected.requests
    candidates = [r for r in pool if ANSWER[type(r)] == kind]
    if not candidates:
        got = f"got {_article(str(kind))} reply with id {_show_id(rid)}"
        return Verdict(f"{got}; expected {expected.describe()}")
    if not expected.any_answer:
        echoed = [r for r in candidates if _same_id(rid, r.id)]
        if not echoed:
            want = " or ".join(dict.fromkeys(str(r.id) for r in candidates))
            return Verdict(
                f"the {kind!r} reply carries id {_show_id(rid)}, the request's id is {want} "
                "(R1.2: within ±(2^53-1) a reply echoes its request's id exactly)"
            )
        candidates = echoed
    problems: list[str] = []
    matched: list[Request] = []
    for request in candidates:
        problem = _content_problem(request, reply, conn, model)
        if problem is None:
            matched.append(request)
        elif problem not in problems:
            problems.append(problem)
    if matched:
        return Verdict(None, tuple(matched))
    return Verdict("; or ".join(problems))


def _content_problem(
    request: Request, reply: dict[str, Any], conn: ConnectionState, model: SessionModel
) -> str | None:
    match request:
        case Join(session=session, participant=participant):
            if reply["session"] != session:
                got = reply["session"]
                return f"the joined reply echoes session {got!r}; expected {session!r} (R2.1)"
            echoed = reply["participant"]
            got_participant = (echoed.get("id"), echoed.get("name"))
            if got_participant != (participant.id, participant.name):
                want = {"id": participant.id, "name": participant.name}
                shown = {"id": got_participant[0], "name": got_participant[1]}
                return f"the joined reply echoes participant {shown!r}; expected {want!r} (R2.1)"
        case Get(key=key):
            if reply["key"] != key:
                return f"a get of {key!r} was answered with the value of {reply['key']!r} (R3.1)"
            want = model.possible(key)
            if model.exact and reply["value"] not in want:
                return (
                    f"get {key!r} returned {reply['value']!r}; expected {describe_values(want)}, "
                    "what the acknowledged writes left (R3.1, R3.8)"
                )
        case Observe():
            observer_id = reply["observerId"]
            if observer_id in conn.observers:
                return (
                    f"the observing reply gives observerId {observer_id!r}, which an active "
                    "observer of this connection already holds; expected an id of its own (R4.4)"
                )
    return None


def apply(
    applied: Request | Sequence[Request],
    reply: dict[str, Any],
    conn: ConnectionState,
    model: SessionModel,
) -> None:
    """Record what a success reply changed, so later frames are judged against it.

    ``applied`` are the readings the reply may answer (:attr:`Verdict.applied`):
    with one, its effect is certain; with several, each effect only may have
    happened (R5.3: a request either applies or changes nothing).
    """
    requests = [applied] if not isinstance(applied, Sequence) else list(applied)
    if not requests:
        return
    sets = [r for r in requests if isinstance(r, Set)]
    if sets:
        model.apply(sets, certain=len(sets) == len(requests))
    first = requests[0]
    if isinstance(first, Join):
        conn.joined = first  # every matching reading echoes the same session and participant
    elif isinstance(first, Get):
        model.read(reply["key"], reply["value"])
    elif isinstance(first, Observe):
        observer_id = reply["observerId"]
        keys = frozenset(r.key for r in requests if isinstance(r, Observe))
        conn.observers[observer_id] = conn.issued[observer_id] = keys
        # A reused id is a new observer (nothing forbids reuse after a stop).
        conn.stopped.discard(observer_id)
        conn.unsure.pop(observer_id, None)
        conn.last_observer = observer_id
    stops = {r.observer_id for r in requests if isinstance(r, StopObserving)}
    if len(stops) == 1 and len(requests) == sum(isinstance(r, StopObserving) for r in requests):
        (observer_id,) = stops
        conn.observers.pop(observer_id, None)
        conn.unsure.pop(observer_id, None)
        conn.stopped.add(observer_id)
    else:
        for observer_id in stops:
            if observer_id in conn.observers:
                conn.unsure[observer_id] = conn.observers.pop(observer_id)


def judge_update(
    update: dict[str, Any],
    conn: ConnectionState,
    model: SessionModel,
    pending: Expected | Request | None,
) -> str | None:
    """Why an update (a schema-valid frame) cannot be right, or None.

    ``pending`` is what the frame being answered may be: an update may come
    before the ok of the write it reports.
    """
    observer_id, key, value = update["observerId"], update["key"], update["value"]
    if observer_id not in conn.issued:
        return (
            f"an update for observerId {observer_id!r}, which no observing reply on this "
            "connection announced; expected updates only for observers this connection "
            "holds (R4.1), each after its observing reply (R4.8)"
        )
    active = observer_id in conn.observers or observer_id in conn.unsure
    if observer_id in conn.stopped and not active:
        return (
            f"an update for observerId {observer_id!r} after the ok to its stopObserving; "
            "expected no update for it after that ok (R4.5)"
        )
    keys = conn.issued[observer_id]
    if key not in keys:
        return (
            f"an update of {key!r} for observerId {observer_id!r}, an observer of "
            f"{describe_values(keys)}; expected updates of that key only (R4.1)"
        )
    possible = set(model.written.get(key, ()))
    if isinstance(pending, Expected):
        writes: tuple[Request, ...] = pending.candidates()
    else:
        writes = () if pending is None else (pending,)
    possible |= {w.value for w in writes if isinstance(w, Set) and w.key == key}
    if model.exact and value not in possible:
        return (
            f"an update of {key!r} to {value!r}; expected one of the values written to it, "
            f"{describe_values(possible) if possible else 'none so far'} (R4.2)"
        )
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


_NUMBER_TEXT = rb"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
_ID_AFTER_TYPE = re.compile(
    rb'\s*\{\s*"type"\s*:\s*"[^"\\]*"\s*,\s*"id"\s*:\s*' + _NUMBER_TEXT + rb"\s*[,}]"
)
_ID_FIRST = re.compile(rb'\s*\{\s*"id"\s*:\s*' + _NUMBER_TEXT + rb"\s*[,}]")


def _ids_before_fault(data: bytes) -> set[int]:
    """The ids a parser that stops at the fault may already have read from the frame's start."""
    match = _ID_AFTER_TYPE.match(data) or _ID_FIRST.match(data)
    return id_readings(Number(match.group(1).decode())) if match else set()


def _same_id(got: object, want: int | None) -> bool:
    # 1 == 1.0 == True in Python; an id is an integer or null and nothing else (R5.1).
    if want is None:
        return got is None
    return is_integer(got) and got == want


def _show_id(rid: object) -> str:
    return "null" if rid is None else repr(rid)


def describe_values(values: Iterable[object]) -> str:
    """Values for a failure text: the one value, or "one of" them all."""
    shown = sorted((repr(v) for v in values), key=lambda text: (len(text), text))
    return shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)


def describe_success(request: Request) -> str:
    """The success reply a request earns, in words: "an 'ok' to the set of 'k'"."""
    match request:
        case Set(key=key, value=value):
            return f"an 'ok' to the set of {key!r} to {_short(value)}"
        case Get(key=key):
            return f"a 'value' reply for {key!r}"
        case Observe(key=key):
            return f"an 'observing' reply for an observer of {key!r}"
        case StopObserving(observer_id=observer_id):
            return f"an 'ok' to the stopObserving of {observer_id!r}"
    return f"a 'joined' reply echoing session {request.session!r}"


def _article(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind!r}"


def _short(value: str | None, limit: int = 40) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[: limit - 5]}...' ({len(value or '')} chars)"


def _valid(request: Request) -> str:
    requirement = {Join: "R2.1", Set: "R3.1", Get: "R3.1", Observe: "R4.1"}
    return f"a valid {request_name(request)}: {requirement.get(type(request), 'R4.5')}"


def _request_tag(request: Request) -> str:
    return f"request {request!r}"


def _error_tag(rid: int | None, code: ErrorCode) -> str:
    return f"error {rid!r} {code}"


__all__ = [
    "ANSWER",
    "DEEP_NESTING",
    "FRAME_LIMIT_FLOOR",
    "MAX_SAFE_INTEGER",
    "ConnectionState",
    "Expected",
    "SessionModel",
    "Verdict",
    "apply",
    "describe_success",
    "describe_values",
    "expect",
    "judge",
    "judge_update",
    "nesting_depth",
]
