"""The strict decoder and the published JSON Schema judge server frames alike.

The clients use the decoder; the conformance suite quotes the schema. If they
disagreed, a frame could pass one and fail the other, and a report would blame
the wrong party.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.errors import ProtocolViolation
from harness.protocol import decode_server_message
from harness.protocol.schema import schema_problems

P = {"id": "p", "name": "P"}
VALID: dict[str, dict[str, Any]] = {
    "joined": {
        "type": "joined",
        "id": 1,
        "session": "s",
        "participant": P,
        "limits": {"maxKeys": 100, "maxValueBytes": 1024},
    },
    "ok": {"type": "ok", "id": 1},
    "value": {"type": "value", "id": 1, "key": "k", "value": "v"},
    "observing": {"type": "observing", "id": 1, "observerId": "o1"},
    "error": {"type": "error", "id": None, "code": "INVALID_KEY", "message": "m"},
    "update": {"type": "update", "observerId": "o1", "key": "k", "value": None, "updatedBy": P},
}
REPLACEMENTS = st.sampled_from(
    [None, 0, -1, 1, 2**40, 1.5, True, False, "", "x", "NOT_JOINED", "ok", [], {}, {"id": "p"}]
)


def accepted_by_decoder(frame: bytes) -> bool:
    try:
        decode_server_message(frame)
    except ProtocolViolation:
        return False
    return True


def agree(frame: bytes) -> None:
    problems = schema_problems(frame)
    assert accepted_by_decoder(frame) == (problems == []), (frame, problems)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    message = orjson.loads(orjson.dumps(VALID[draw(st.sampled_from(sorted(VALID)))]))
    for _ in range(draw(st.integers(0, 3))):
        # Pick a field, or a field of a nested object (participant, limits).
        holder = message
        nested = [k for k, v in message.items() if isinstance(v, dict) and v]
        if nested and draw(st.booleans()):
            holder = message[draw(st.sampled_from(nested))]
        if not holder:
            break
        field = draw(st.sampled_from(sorted(holder)))
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop":
            del holder[field]
        elif action == "replace":
            holder[field] = copy.deepcopy(draw(REPLACEMENTS))
        else:
            holder["extra"] = copy.deepcopy(draw(REPLACEMENTS))
    return orjson.dumps(message)


@settings(max_examples=400)
@given(mutated_frames())
@example(orjson.dumps({**VALID["joined"], "session": ""}))
@example(orjson.dumps({**VALID["error"], "id": 1.5}))
@example(orjson.dumps({"type": "set", "id": 1, "key": "k", "value": "v"}))
@example(b"[]")
@example(b"{")
def test_decoder_and_schema_agree_on_mutated_frames(frame):
    agree(frame)


def test_every_valid_frame_passes_both():
    for message in VALID.values():
        frame = orjson.dumps(message)
        assert schema_problems(frame) == []
        assert accepted_by_decoder(frame)
