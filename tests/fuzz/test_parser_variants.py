"""The fuzzer on servers whose JSON parser is not orjson: quiet when legal, loud when not.

:class:`DoubleParserServer` reads frames as Go's encoding/json does (every
number an IEEE double, so ids past 2^53 come back rounded; lone surrogates
replaced by U+FFFD) and takes the first of repeated member names. Each of those
is a choice docs/protocol.md leaves to the implementation, so the fuzzer must
find nothing. The faulty variants break a rule no parser choice excuses.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from harness.fuzz import fuzz
from harness.fuzz.jsontext import DEEP_NESTING
from harness.protocol import Error, ErrorCode
from harness.server.aio import Connection, ReferenceServer
from harness.server.embedded import EmbeddedServer

_SURROGATE = re.compile("[\ud800-\udfff]")


def _double(text: str) -> float:
    return float(text)


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(reversed(pairs))


def _normalize(value: Any) -> Any:
    """What a Go-like parser holds, written back so the reference's orjson reads the same."""
    if isinstance(value, dict):
        return {_normalize(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, float):
        if math.isinf(value):
            return 0.5  # Infinity: a number but no integer, which 0.5 stays through orjson
        # An integral double is an integer; past 64 bits it stays a double, as orjson would.
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    return value


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', text):
        depth += char in "[{"
        depth -= char in "]}"
        deepest = max(deepest, depth)
    return deepest


class DoubleParserServer(ReferenceServer):
    """The reference server behind a Go-like parser (all legal choices)."""

    def parse(self, frame: str) -> dict[str, Any] | str:
        """The request object, or why the frame is refused with BAD_REQUEST."""
        if _depth(frame) > DEEP_NESTING:
            return "frame nests too deep"
        try:
            data = json.loads(
                frame,
                parse_int=_double,
                parse_float=_double,
                parse_constant=_refuse,
                object_pairs_hook=_first_wins,
            )
        except (ValueError, RecursionError):
            return "frame is not valid JSON"
        if not isinstance(data, dict):
            return "frame is not a JSON object"
        normalized = _normalize(data)
        assert isinstance(normalized, dict)
        return normalized

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            super().handle_frame(conn, frame)
            return
        data = self.parse(frame)
        if isinstance(data, str):
            self.reply(conn, Error(None, ErrorCode.BAD_REQUEST, data))
            return
        super().handle_frame(conn, orjson.dumps(data).decode())


class Int32IdServer(ReferenceServer):
    """Echoes ids through a 32-bit integer: 2^31 comes back as -2^31 (breaks R1.2)."""

    def send(self, conn: Connection, frame: bytes) -> None:
        data = orjson.loads(frame)
        if isinstance(data.get("id"), int):
            data["id"] = (data["id"] + 2**31) % 2**32 - 2**31
        super().send(conn, orjson.dumps(data))


class SurrogateKeyServer(DoubleParserServer):
    """Calls a key with a lone surrogate INVALID_KEY, which R3.3 does not allow.

    R1.7 lets it refuse the frame with BAD_REQUEST or read the string; a key is
    INVALID_KEY only when missing, not a string or empty.
    """

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, str):
            try:
                data = json.loads(frame)
            except (ValueError, RecursionError):
                data = None
            key, rid = (data.get("key"), data.get("id")) if isinstance(data, dict) else (None, None)
            if isinstance(key, str) and _SURROGATE.search(key) and type(rid) is int:
                self.reply(conn, Error(rid, ErrorCode.INVALID_KEY, "key is not valid Unicode"))
                return
        super().handle_frame(conn, frame)


def _serve(factory: Callable[..., ReferenceServer]) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(factory) as server:
        yield server


@pytest.fixture
def double_parser() -> Iterator[EmbeddedServer]:
    yield from _serve(DoubleParserServer)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_go_like_parser_is_no_finding(
    double_parser: EmbeddedServer, run: Callable, seed: int
) -> None:
    result = run(fuzz(double_parser.url, frames=400, seconds=None, seed=seed, shrink_seconds=5))
    assert result.finding is None, result.finding.describe()
    assert result.frames_sent >= 400


@pytest.mark.parametrize(
    ("factory", "requirement"), [(Int32IdServer, "R1.2"), (SurrogateKeyServer, "INVALID_KEY")]
)
def test_a_fault_no_parser_choice_excuses_is_found(
    factory: Callable[..., ReferenceServer], requirement: str, run: Callable
) -> None:
    for server in _serve(factory):
        result = run(fuzz(server.url, frames=800, seconds=None, seed=1, shrink_seconds=10))
    assert result.finding is not None
    assert result.finding.kind == "wrong-reply"
    assert requirement in result.finding.detail, result.finding.describe()
    assert "expected" in result.finding.detail
    assert result.reproduced is True
