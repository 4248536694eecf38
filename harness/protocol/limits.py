"""Error codes and limits of the store protocol (docs/protocol.md, section 4 and R3)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error code a server may send, in the spec's order of precedence (R5.2)."""

    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    NOT_JOINED = "NOT_JOINED"
    UNKNOWN_OBSERVER = "UNKNOWN_OBSERVER"
    INVALID_KEY = "INVALID_KEY"
    INVALID_VALUE = "INVALID_VALUE"
    VALUE_TOO_LARGE = "VALUE_TOO_LARGE"
    KEY_LIMIT_EXCEEDED = "KEY_LIMIT_EXCEEDED"


@dataclass(frozen=True, slots=True)
class Limits:
    """What a server advertises in its ``joined`` reply."""

    max_keys: int = 100
    max_value_bytes: int = 1024

    def to_wire(self) -> dict[str, int]:
        return {"maxKeys": self.max_keys, "maxValueBytes": self.max_value_bytes}

    @classmethod
    def from_wire(cls, data: dict[str, int]) -> Limits:
        return cls(max_keys=data["maxKeys"], max_value_bytes=data["maxValueBytes"])


DEFAULT_LIMITS = Limits()

#: The reference server's frame limit (R1.6); clients use the same default.
DEFAULT_MAX_FRAME_BYTES = 64 * 1024
