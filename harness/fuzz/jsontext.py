"""JSON text as different correct parsers read it: the fuzzer's model of a server's parser.

RFC 8259 leaves a server's JSON parser much freedom, and docs/protocol.md
("Left to the implementation") accepts every choice a correct parser makes:

* duplicate member names (section 4): the first or the last one wins, or the
  frame is refused;
* numbers (section 9): integers beyond 64 bits, numbers past a double's range
  and ``-0`` may be refused; a JavaScript or Go parser reads every number as an
  IEEE double, so ``1.0`` and ``1e0`` are the integer 1 and 2^53+1 is 2^53;
* escaped lone surrogates (section 8.2): refused (R1.7 recommends it), kept as
  the code unit (JavaScript, Java) or replaced by U+FFFD (Go);
* nesting depth (section 9): a parser may refuse deep frames;
* extensions (section 9): Python's ``json`` reads ``NaN`` and ``Infinity``.

:func:`scan` reads a frame once, without recursion, into a raw tree that keeps
what the choices depend on (every member in order, each number's text); a
:class:`Personality` then turns that tree into the Python object its parser
would build, for :func:`harness.protocol.messages.interpret_object` to judge.
The frame-level refusals (:attr:`Scanned.refusals`) are answered the same way by
every parser that makes them: ``BAD_REQUEST``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import product
from typing import Any

#: The interoperable integers of I-JSON (RFC 7493 section 2.2); the spec's id range (R1.2).
MAX_SAFE_INTEGER = 2**53 - 1
#: What a 64-bit integer parser holds: int64 below zero, uint64 above (orjson, serde_json).
INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1
#: Nesting this deep is past what many JSON parsers accept (RFC 8259 section 9 lets
#: them limit it; orjson stops at 1024, Python's json at its recursion limit).
DEEP_NESTING = 100

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}
#: Python's json reads these by default; they are not JSON (RFC 8259 section 6).
_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Number:
    """A number token as written: parsers disagree on what it denotes."""

    text: str

    @property
    def is_integer_token(self) -> bool:
        return not any(c in self.text for c in ".eE")

    def exact(self) -> Decimal:
        return Decimal(self.text)


@dataclass(frozen=True, slots=True)
class Constant:
    """``NaN``, ``Infinity`` or ``-Infinity``: an extension some parsers accept."""

    name: str


@dataclass(slots=True)
class Obj:
    """An object's members in the order written, duplicates included."""

    members: list[tuple[str, Any]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)


@dataclass
class Scanned:
    """One frame read as JSON text, with every fact a parser's choice depends on."""

    value: Any
    depth: int = 0
    duplicates: bool = False
    lone_surrogates: bool = False
    constants: bool = False
    numbers: list[Number] = field(default_factory=list)

    @property
    def refusals(self) -> list[str]:
        """Why some correct parser refuses this frame as a whole (each earns BAD_REQUEST)."""
        why = []
        if self.lone_surrogates:
            why.append("it holds an escaped lone surrogate (R1.7: refusing is recommended)")
        if self.duplicates:
            why.append("it repeats a member name (RFC 8259 section 4)")
        if self.depth > DEEP_NESTING:
            why.append(f"it nests {self.depth} levels deep (RFC 8259 section 9)")
        if any(_out_of_parser_range(n) for n in self.numbers):
            why.append("it holds a number beyond 64-bit integers or doubles (RFC 8259 section 9)")
        if self.constants:
            why.append("NaN and Infinity are not JSON (RFC 8259 section 6)")
        if any(_is_negative_zero(n) for n in self.top_level_ids()):
            why.append("its id is -0, which a parser may call no integer")
        return why

    def top_level_ids(self) -> list[Any]:
        """Every raw value of a top-level ``id`` member, duplicates included."""
        if not isinstance(self.value, Obj):
            return []
        return [value for name, value in self.value.members if name == "id"]


def scan(text: str) -> Scanned | None:
    """The raw tree of ``text``, or None when no parser reads it as JSON.

    Iterative, so a frame nested thousands deep costs no recursion. Strings are
    decoded as JavaScript and Python decode them: an escaped pair is one code
    point, an escaped lone surrogate stays a lone code point in the str.
    """
    result = Scanned(None)
    stack: list[Obj | list[Any]] = []
    keys: list[str | None] = []
    pos = _skip(text, 0)
    while True:
        # Read one value at ``pos``; containers push and loop back here for their first item.
        if pos >= len(text):
            return None
        char = text[pos]
        if char in "{[":
            container: Obj | list[Any] = Obj() if char == "{" else []
            stack.append(container)
            result.depth = max(result.depth, len(stack))
            pos = _skip(text, pos + 1)
            closer = "}" if char == "{" else "]"
            if pos < len(text) and text[pos] == closer:
                stack.pop()
                value: Any = container
                pos += 1
            elif isinstance(container, Obj):
                pos = _member_name(text, pos, keys, result)
                if pos < 0:
                    return None
                continue
            else:
                keys.append(None)
                continue
        else:
            pos, value = _scalar(text, pos, result)
            if pos < 0:
                return None
        # A value is complete: file it in its container, then find what follows.
        while True:
            if not stack:
                result.value = value
                return result if _skip(text, pos) == len(text) else None
            top = stack[-1]
            if isinstance(top, Obj):
                name = keys.pop()
                assert name is not None
                if name in top.names:
                    result.duplicates = True
                top.names.add(name)
                top.members.append((name, value))
            else:
                keys.pop()
                top.append(value)
            pos = _skip(text, pos)
            if pos >= len(text):
                return None
            if text[pos] == ",":
                pos = _skip(text, pos + 1)
                if isinstance(top, Obj):
                    pos = _member_name(text, pos, keys, result)
                    if pos < 0:
                        return None
                else:
                    keys.append(None)
                break
            if text[pos] == ("}" if isinstance(top, Obj) else "]"):
                value = stack.pop()
                pos += 1
                continue
            return None


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _member_name(text: str, pos: int, keys: list[str | None], result: Scanned) -> int:
    """Read ``"name" :`` at ``pos``; the position of the value, or -1."""
    match = _STRING.match(text, pos)
    if match is None:
        return -1
    name = _decode_string(match.group(), result)
    pos = _skip(text, match.end())
    if pos >= len(text) or text[pos] != ":":
        return -1
    keys.append(name)
    return _skip(text, pos + 1)


def _scalar(text: str, pos: int, result: Scanned) -> tuple[int, Any]:
    if text[pos] == '"':
        match = _STRING.match(text, pos)
        if match is None:
            return -1, None
        return match.end(), _decode_string(match.group(), result)
    for word, constant in (("-Infinity", "-Infinity"), ("Infinity", "Infinity"), ("NaN", "NaN")):
        if text.startswith(word, pos):
            result.constants = True
            return pos + len(word), Constant(constant)
    match = _NUMBER.match(text, pos)
    if match is not None:
        number = Number(match.group())
        result.numbers.append(number)
        return match.end(), number
    for word, literal in _LITERALS.items():
        if text.startswith(word, pos):
            return pos + len(word), literal
    return -1, None


def _decode_string(token: str, result: Scanned) -> str:
    # The token matched the JSON string grammar, so the standard library decodes
    # it exactly as RFC 8259 says, keeping lone surrogates as lone code points.
    text = token[1:-1] if "\\" not in token else json.loads(token)
    if "\\u" in token and _SURROGATE.search(text):
        result.lone_surrogates = True
    return text


def _out_of_parser_range(number: Number) -> bool:
    """Beyond what a 64-bit integer or a double holds: a parser may refuse it."""
    value = _exact(number)
    if value is None:
        return True
    if number.is_integer_token:
        return not INT64_MIN <= value <= UINT64_MAX
    as_float = float(number.text)
    return math.isinf(as_float) or (as_float == 0 and value != 0)


def _is_negative_zero(value: Any) -> bool:
    return isinstance(value, Number) and value.text.startswith("-") and _exact(value) == 0


def _exact(number: Number) -> Decimal | None:
    try:
        return number.exact()
    except InvalidOperation:
        return None


def exact_integer(number: Number) -> int | None:
    """The integer a number token denotes exactly, or None (a fraction, or absurdly large)."""
    value = _exact(number)
    if value is None or value.adjusted() > 400:
        return None
    if value != value.to_integral_value():
        return None
    return int(value)


def double_integer(number: Number) -> int | None:
    """The integer a JavaScript or Go parser reads the token as (nearest double), or None."""
    as_float = float(number.text)
    if math.isinf(as_float) or not as_float.is_integer():
        return None
    return int(as_float)


def id_readings(value: Any) -> set[int]:
    """Every integer some correct parser reads this raw ``id`` value as."""
    if not isinstance(value, Number):
        return set()
    readings = {double_integer(value)}
    if value.is_integer_token:
        readings.add(exact_integer(value))
    readings.discard(None)
    return readings  # type: ignore[return-value]


def outside_id_range(value: Any) -> bool:
    """R1.2: an id a parser may round, or one beyond ±(2^53-1): any answer conforms.

    A number counts when what it denotes exactly or what a double makes of it
    is an integer beyond the interoperable range (2^53+1, 1e20, 2^53+0.5).
    """
    if not isinstance(value, Number):
        return False
    exact = _exact(value)
    if exact is None or exact.adjusted() >= 16:
        return True  # at least 10^16: past 2^53 whatever a parser makes of it
    readings = id_readings(value)
    if exact == exact.to_integral_value():
        readings.add(int(exact))
    return any(abs(reading) > MAX_SAFE_INTEGER for reading in readings)


# --- personalities ------------------------------------------------------------------

#: How deep :meth:`Personality.materialize` builds: the request (1), its members
#: (``participant``, 2) and theirs (``participant.id``, 3). Nothing judges deeper,
#: so deeper containers are built empty, of the right type, and cost no recursion.
MATERIALIZE_DEPTH = 3


@dataclass(frozen=True, slots=True)
class Personality:
    """One way a correct JSON parser reads a frame it does not refuse.

    ``numbers``: ``"typed"`` (orjson, Python, serde_json: an integer token is an
    integer, anything with a fraction or exponent a float) or ``"double"``
    (JavaScript, Go: every number an IEEE double, integral ones integers).
    ``duplicates``: which of repeated member names wins. ``surrogates``: a lone
    surrogate ``"kept"`` as the code unit or ``"replaced"`` by U+FFFD.
    ``constants``: NaN and Infinity read as numbers (Python's json).
    """

    numbers: str = "typed"
    duplicates: str = "last"
    surrogates: str = "kept"
    constants: bool = False

    def describe(self, axes: Iterable[str] = ("numbers", "duplicates", "surrogates")) -> str:
        """The parser in words, naming only the choices in ``axes`` (the ones that mattered)."""
        words = {
            "numbers": {
                "typed": "reading typed numbers (orjson, Python)",
                "double": "reading numbers as doubles (JavaScript, Go)",
            }[self.numbers],
            "duplicates": f"taking the {self.duplicates} of repeated names",
            "surrogates": {
                "kept": "keeping lone surrogates",
                "replaced": "replacing lone surrogates with U+FFFD",
            }[self.surrogates],
        }
        chosen = [words[axis] for axis in axes]
        return "a parser " + (", ".join(chosen) if chosen else "of any kind")

    def materialize(self, value: Any, depth: int = 1) -> Any:
        if isinstance(value, Obj):
            if depth > MATERIALIZE_DEPTH:
                return {}
            members = value.members if self.duplicates == "last" else reversed(value.members)
            built: dict[str, Any] = {}
            for name, member in members:
                built[self._string(name)] = member
            return {name: self.materialize(member, depth + 1) for name, member in built.items()}
        if isinstance(value, list):
            if depth > MATERIALIZE_DEPTH:
                return []
            return [self.materialize(item, depth + 1) for item in value]
        if isinstance(value, str):
            return self._string(value)
        if isinstance(value, Number):
            return self._number(value)
        if isinstance(value, Constant):
            return _CONSTANTS[value.name]
        return value

    def _string(self, text: str) -> str:
        if self.surrogates == "replaced" and _SURROGATE.search(text):
            return _SURROGATE.sub("\ufffd", text)
        return text

    def _number(self, number: Number) -> int | float:
        if self.numbers == "double":
            as_float = float(number.text)
            # Number.isInteger: an integral double is an integer, -0 included (as 0).
            return int(as_float) if as_float.is_integer() else as_float
        if number.is_integer_token:
            exact = exact_integer(number)
            return exact if exact is not None else float(number.text)
        return float(number.text)


def personalities(scanned: Scanned) -> list[Personality]:
    """The parsers whose readings of this frame can differ; one when no choice matters."""
    numbers = ("typed", "double") if any(map(_reads_differently, scanned.numbers)) else ("typed",)
    duplicates = ("last", "first") if scanned.duplicates else ("last",)
    surrogates = ("kept", "replaced") if scanned.lone_surrogates else ("kept",)
    found = []
    for num, dup, sur in product(numbers, duplicates, surrogates):
        if scanned.constants:
            # Only a parser that reads NaN at all reads this frame; the rest refuse it.
            if num == "typed":
                found.append(Personality(num, dup, sur, constants=True))
        else:
            found.append(Personality(num, dup, sur))
    return found


def _reads_differently(number: Number) -> bool:
    """Whether a typed parser and a double parser may read this token as different values."""
    if not number.is_integer_token:
        return True
    exact = exact_integer(number)
    return exact is None or abs(exact) > MAX_SAFE_INTEGER


def varying_axes(readings: Sequence[Personality]) -> list[str]:
    """The choices in which these personalities differ, for naming them in a failure."""
    axes = ("numbers", "duplicates", "surrogates")
    return [axis for axis in axes if len({getattr(p, axis) for p in readings}) > 1]


def lone_surrogate_count(text: str) -> int:
    return len(_SURROGATE.findall(text))


def json_text(value: Any) -> bytes:
    """``value`` as JSON text in UTF-8; a lone surrogate is written as its escape."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode()


__all__ = [
    "DEEP_NESTING",
    "MAX_SAFE_INTEGER",
    "Constant",
    "Number",
    "Obj",
    "Personality",
    "Scanned",
    "double_integer",
    "exact_integer",
    "id_readings",
    "json_text",
    "lone_surrogate_count",
    "outside_id_range",
    "personalities",
    "scan",
    "varying_axes",
]
