"""Hypothesis strategies for hostile client frames.

Most frames are protocol messages with a few mutations each (a field of the
wrong type, a missing field, an extra one, a repeated one), so they get past a
server's first checks and reach its handlers; the rest are the inputs a parser
meets in the wild: deep nesting, escaped lone surrogates, NaN, numbers past
64 bits or a double's range, ids written ``1.0`` or ``-0``, truncated JSON,
invalid UTF-8 in text frames, binary frames, random text and bytes, values
around the 1024-byte limit and frames over the 64 KiB frame limit. Parsers may
read several of these differently (docs/protocol.md, "Left to the
implementation"); the oracle accepts each correct reading.

Everything is built from small draws (a depth, a length, a character) so
hypothesis can shrink a failing frame to its essence: the simplest form of
every choice comes first in each ``one_of``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from harness.protocol.kinds import GET, JOIN, OBSERVE, SET, STOP_OBSERVING

from .frames import (
    FUZZ_PARTICIPANT,
    OBSERVER_PLACEHOLDER,
    SESSION_PLACEHOLDER,
    TOKEN_FIELD,
    TOKEN_PLACEHOLDER,
    Frame,
)

# join last: the order is what hypothesis shrinks towards, and saved seeds replay by it.
MESSAGE_TYPES = tuple(kind.wire for kind in (SET, GET, OBSERVE, STOP_OBSERVING, JOIN))

#: Characters that trip up text handling: NUL, BOM, bidi overrides, line and
#: paragraph separators, non-characters, a combining mark, astral code points.
ODD_CHARS = (
    "\x00", "\x1f", "\x7f", "\ufeff", "\u202e", "\u2028", "\u2029", "\ufffe", "\uffff",
    "\u0301", "\U0001f600", "\U0010ffff", '"', "\\", "/", "é", "€", "𝄞",
)  # fmt: skip
#: One character of each UTF-8 length, to build values of an exact byte size (R3.5).
WIDTHS = ("a", "é", "€", "😀")


@dataclass(frozen=True, slots=True)
class Deep:
    """A value nested ``depth`` arrays or objects deep, rendered without recursion."""

    depth: int
    opener: str = "["


@dataclass(frozen=True, slots=True)
class Raw:
    """A JSON fragment written as is: escapes and tokens no encoder would produce."""

    text: str


@dataclass(frozen=True, slots=True)
class Again:
    """A member name written a second time (RFC 8259 section 4): a dict key beside ``name``."""

    name: str


def render(value: Any, *, ascii_only: bool = False) -> str:
    """JSON text for ``value``; big integers and the markers above included."""
    if isinstance(value, Deep):
        close = "]" if value.opener == "[" else "}"
        return value.opener * value.depth + "0" + close * value.depth
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (f"{json.dumps(k.name if isinstance(k, Again) else k, ensure_ascii=ascii_only)}:"
                 f"{render(v, ascii_only=ascii_only)}" for k, v in value.items())  # fmt: skip
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(render(v, ascii_only=ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


# --- building blocks -------------------------------------------------------------

odd_text = st.text(
    alphabet=st.one_of(st.sampled_from(ODD_CHARS), st.characters(codec="utf-8")), max_size=12
)
#: Escaped lone surrogates, which parsers refuse, keep or replace (R1.7), and a
#: proper pair written as escapes, which every parser reads as one character.
lone_surrogate = st.sampled_from(
    ['"\\ud800"', '"a\\udc00"', '"\\udbff\\u0041"', '"\\ud83d"', '"\\ud83d\\ude00"']
).map(Raw)
keys = st.one_of(
    st.sampled_from(["k", "BLOCK_CHAT", "é", "\U0001f600", "\x00", " "]), odd_text, lone_surrogate
)


def sized_value(max_value_bytes: int) -> st.SearchStrategy[str]:
    """A value within a few bytes of the limit, of one-, two-, three- or four-byte characters."""

    def build(width: str, delta: int) -> str:
        size = max(0, max_value_bytes + delta)
        char_bytes = len(width.encode())
        return width * (size // char_bytes) + "a" * (size % char_bytes)

    return st.builds(build, st.sampled_from(WIDTHS), st.integers(-4, 4))


def surrogate_value(max_value_bytes: int) -> st.SearchStrategy[Raw]:
    """A value at the limit's edge that holds a lone surrogate, whose byte count is open (R3.5)."""

    def build(delta: int) -> Raw:
        return Raw('"' + "a" * max(0, max_value_bytes + delta) + '\\ud800"')

    return st.builds(build, st.integers(-4, 0))


deep = st.builds(
    Deep,
    st.one_of(st.integers(1, 64), st.integers(1, 1000)),
    st.sampled_from(["[", '{"a":']),
)
huge_numbers = st.one_of(
    st.sampled_from([2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, 10**30, -(10**40)]),
    st.integers(-(2**200), 2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    # Past a double's range either way, and a very long integer (RFC 8259 section 9).
    st.sampled_from(["1e400", "-1e400", "1e-400", "1" + "0" * 400]).map(Raw),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), odd_text, huge_numbers)
#: What a field may hold instead of the right thing.
wrong_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(odd_text, scalars, max_size=3),
    deep,
    lone_surrogate,
    st.sampled_from([Raw("NaN"), Raw("-Infinity")]),
)
#: Ids: integers in the interoperable range, which every parser reads alike; ids
#: beyond ±(2^53-1), which a parser may round (R1.2: any answer then); and
#: numbers written like integers that parsers read differently (1.0, -0).
ids = st.one_of(
    st.integers(0, 1000),
    st.sampled_from([-1, 2**31, 2**53 - 1, -(2**53 - 1), 2**63 - 1, -(2**63)]),
    st.sampled_from(
        [2**53 + 1, -(2**53 + 1), 2**64 - 1, 2**64, 10**30]
        + [Raw(t) for t in ("1.0", "1e0", "1E0", "10e-1", "-0", "-0.0", "1.0000000000000001")]
        + [Raw("1e400")]
    ),
)
wrong_ids = st.one_of(
    st.none(),
    st.booleans(),
    odd_text,
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.lists(st.integers(0, 3), max_size=2),
    deep,
    lone_surrogate,
)


def _fields(kind: str, draw: Any, max_value_bytes: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"type": kind, "id": draw(ids)}
    if kind == "join":
        fields["session"] = SESSION_PLACEHOLDER
        name = draw(st.one_of(st.just("Fuzz"), odd_text))
        fields["participant"] = {"id": draw(st.one_of(st.just("fuzz"), keys)), "name": name}
    elif kind == STOP_OBSERVING.wire:
        choices = st.sampled_from([OBSERVER_PLACEHOLDER, "o1", "nobody", ""])
        fields["observerId"] = draw(st.one_of(choices, odd_text))
    else:
        fields["key"] = draw(keys)
    if kind == "set":
        values = st.one_of(
            st.just("v"),
            st.none(),
            odd_text,
            sized_value(max_value_bytes),
            surrogate_value(max_value_bytes),
        )
        fields["value"] = draw(values)
    return fields


@st.composite
def message(draw: Any, max_value_bytes: int) -> Frame:
    """A protocol message with up to three mutations, rendered with or without escapes."""
    fields = _fields(draw(st.sampled_from(MESSAGE_TYPES)), draw, max_value_bytes)
    for _ in range(draw(st.one_of(st.just(0), st.integers(1, 3)))):
        mutation = draw(st.sampled_from(["retype", "drop", "extra", "participant", "repeat"]))
        names = sorted(n for n in fields if isinstance(n, str))
        # Mostly the request's own fields: a bad type or id stops every server at
        # its first check, so those two are hit only some of the time.
        own = [n for n in names if n not in ("type", "id")] or names
        if mutation == "retype":
            name = draw(st.one_of(st.sampled_from(own), st.sampled_from(names)))
            fields[name] = draw(wrong_ids if name == "id" else wrong_values)
        elif mutation == "drop":
            fields.pop(draw(st.one_of(st.sampled_from(own), st.sampled_from(names))))
        elif mutation == "extra":
            fields[draw(st.one_of(st.just("extra"), odd_text))] = draw(wrong_values)
        elif mutation == "repeat":
            # The same name again, usually with a value as plausible as the first.
            name = draw(st.one_of(st.sampled_from(own), st.sampled_from(names)))
            again = _fields(draw(st.sampled_from(MESSAGE_TYPES)), draw, max_value_bytes)
            plausible = st.just(again[name]) if name in again else wrong_values
            fields[Again(name)] = draw(st.one_of(plausible, wrong_values))
        elif isinstance(fields.get("participant"), dict):
            part = dict(fields["participant"])
            name = draw(st.sampled_from(["id", "name", "extra"]))
            part[Again(name) if draw(st.booleans()) else name] = draw(wrong_values)
            fields["participant"] = part
    return Frame.text(render(fields, ascii_only=draw(st.booleans())))


def frames(max_value_bytes: int = 1024) -> st.SearchStrategy[Frame]:
    """Any frame the fuzzer sends; messages come first, so failures shrink towards them."""
    msg = message(max_value_bytes)
    nested = st.builds(
        lambda m, d: (
            Frame(m.data[:-1] + b',"nested":' + render(d).encode() + b"}")
            if m.data.endswith(b"}")
            else m
        ),
        msg,
        deep,
    )
    # Half the frames are messages (half of those unmutated), so a batch's state
    # grows and frames reach the handlers; the other half is hostile input.
    hostile = st.one_of(
        nested,
        st.builds(lambda v: Frame.text(render(v)), wrong_values),  # not an object
        st.builds(_truncated, msg, st.integers(0, 64)),
        st.builds(_invalid_utf8, msg, st.integers(0, 64), st.sampled_from(INVALID_UTF8)),
        st.one_of(
            st.builds(lambda m: Frame(m.data, binary=True), msg),
            st.builds(lambda b: Frame(b, binary=True), st.binary(max_size=64)),
        ),
        st.one_of(
            st.builds(Frame.text, odd_text),
            st.builds(_oversized, st.integers(60_000, 70_000), st.sampled_from(["value", "pad"])),
        ),
    )
    return st.one_of(msg, hostile)


#: Byte sequences that are not UTF-8: a stray continuation byte, a lead byte
#: with no continuation, an overlong NUL, an encoded surrogate, a code point past U+10FFFF.
INVALID_UTF8 = (b"\xff", b"\x80", b"\xc3", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80")


def _truncated(frame: Frame, cut: int) -> Frame:
    return Frame(frame.data[: max(1, len(frame.data) - 1 - cut)])


def _invalid_utf8(frame: Frame, at: int, bad: bytes) -> Frame:
    at = min(at, len(frame.data))
    return Frame(frame.data[:at] + bad + frame.data[at:])


def _oversized(size: int, where: str) -> Frame:
    """A set of about ``size`` bytes: near the reference server's 64 KiB frame limit (R1.6)."""
    if where == "value":
        return Frame.text(render({"type": "set", "id": 7, "key": "big", "value": "x" * size}))
    fields = {"type": "get", "id": 7, "key": "big", "pad": "x" * size}
    return Frame.text(render(fields))


def batches(max_frames: int, max_value_bytes: int = 1024) -> st.SearchStrategy[list[Frame]]:
    """A batch: usually a well-formed join first (so frames reach the handlers), then frames.

    The join is a choice hypothesis can shrink away when it is not needed. It carries
    the run's token for its session, if the run has one (:data:`TOKEN_PLACEHOLDER`).
    """
    join = Frame.text(
        render({"type": "join", "id": 1, "session": SESSION_PLACEHOLDER,
                "participant": {"id": FUZZ_PARTICIPANT, "name": "Fuzz"},
                "token": TOKEN_PLACEHOLDER})
    )  # fmt: skip
    assert TOKEN_FIELD in join.data
    return st.builds(
        lambda joins, rest: [join] * joins + rest,
        st.integers(0, 3).map(lambda n: int(n > 0)),
        st.lists(frames(max_value_bytes), min_size=1, max_size=max_frames),
    )


__all__ = ["Again", "Deep", "Raw", "batches", "frames", "message", "render"]
