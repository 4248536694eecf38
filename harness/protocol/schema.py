"""JSON Schema validation of frames against the spec's schemas.

The strict decoder in :mod:`harness.protocol.messages` is what the clients use
on the hot path; this module checks frames against the published schema
(``schemas/store-protocol.schema.json``), which is what the conformance suite
quotes when a server's frame is malformed.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from harness.protocol.kinds import KINDS
from harness.protocol.messages import loads_json

SERVER_MESSAGE_TYPES = ("joined", "ok", "value", "observing", "error", "update")
CLIENT_MESSAGE_TYPES = tuple(kind.wire for kind in KINDS)


@cache
def load_schema() -> dict[str, Any]:
    text = resources.files("harness.protocol").joinpath("schemas/store-protocol.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))


@cache
def _validator(message_type: str) -> Draft202012Validator:
    schema = load_schema()
    return Draft202012Validator({"$ref": f"#/$defs/{message_type}", "$defs": schema["$defs"]})


def schema_problems(frame: str | bytes, *, direction: str = "server") -> list[str]:
    """Every way ``frame`` breaks the schema for its direction; empty when it conforms."""
    allowed = SERVER_MESSAGE_TYPES if direction == "server" else CLIENT_MESSAGE_TYPES
    try:
        data = loads_json(frame)
    except ValueError as exc:
        return [f"not valid JSON: {exc}"]
    if not isinstance(data, dict):
        return ["not a JSON object"]
    message_type = data.get("type")
    if message_type not in allowed:
        return [f"'type' is {message_type!r}, expected one of {', '.join(allowed)}"]
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in _validator(message_type).iter_errors(data)
    ]
