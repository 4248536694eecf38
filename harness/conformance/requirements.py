"""The spec's numbered requirements, as the suite grades them (docs/protocol.md).

The text here is a one-line digest for reports; the spec is normative. A test
checks that this table and the spec list the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    level: Level
    summary: str

    @property
    def section(self) -> str:
        return self.id[1:].split(".")[0]


SECTIONS: dict[str, str] = {
    "1": "Transport and framing",
    "2": "Joining a session",
    "3": "Writes and reads",
    "4": "Observing",
    "5": "Errors",
}

_M, _S = Level.MUST, Level.SHOULD

REQUIREMENTS: dict[str, Requirement] = {
    r.id: r
    for r in [
        Requirement("R1.1", _M, "one text frame, one JSON object with a string type"),
        Requirement(
            "R1.2", _M, "an integer id, echoed exactly within ±(2^53-1); updates carry none"
        ),
        Requirement("R1.3", _M, "replies come in request order, also when pipelined"),
        Requirement("R1.4", _M, "every frame a server sends matches the schema of its type"),
        Requirement("R1.5", _M, "unknown extra fields in a request are ignored"),
        Requirement("R1.6", _M, "an oversized frame may close (1009) only that connection"),
        Requirement("R1.7", _S, "an escaped lone surrogate is refused with BAD_REQUEST"),
        Requirement(
            "R2.1", _M, "join is answered with joined, echoing session, participant, limits"
        ),
        Requirement("R2.2", _M, "invalid join fields and a second join earn BAD_REQUEST"),
        Requirement("R2.3", _M, "requests before a join earn NOT_JOINED"),
        Requirement(
            "R2.4",
            _M,
            "a refused join (bad, expired, mismatched token) earns UNAUTHORIZED, close 1008",
        ),
        Requirement("R2.5", _M, "one participant on several connections, each its own scope"),
        Requirement("R3.1", _M, "set stores or overwrites; get returns the value or null"),
        Requirement(
            "R3.2", _M, "null deletes (absent too, still a write); empty string is a value"
        ),
        Requirement("R3.3", _M, "INVALID_KEY for a missing, non-string or empty key"),
        Requirement("R3.4", _M, "INVALID_VALUE for a missing value or one not string/null"),
        Requirement("R3.5", _M, "VALUE_TOO_LARGE past maxValueBytes in UTF-8; exactly at is fine"),
        Requirement("R3.6", _M, "KEY_LIMIT_EXCEEDED past maxKeys, exact under concurrency"),
        Requirement("R3.7", _M, "one store per session; sessions isolated, each its own limit"),
        Requirement("R3.8", _M, "a get after a set's ok sees that write or a later one"),
        Requirement("R3.9", _M, "last write wins on every connection of the session"),
        Requirement("R3.10", _M, "keys, sessions and participant ids are compared exactly"),
        Requirement("R4.1", _M, "each write reaches every active observer exactly once"),
        Requirement("R4.2", _M, "an update carries observerId, key, value and updatedBy"),
        Requirement("R4.3", _M, "every observer sees a key's updates in one order, no gaps"),
        Requirement("R4.4", _M, "several observers on one connection, each gets its own"),
        Requirement("R4.5", _M, "stopObserving ends deliveries; unknown ids earn UNKNOWN_OBSERVER"),
        Requirement("R4.6", _M, "closing a connection ends its observers, keeps its writes"),
        Requirement("R4.7", _S, "a participant that stops reading does not delay the others"),
        Requirement("R4.8", _M, "the observing reply precedes every update for its observer"),
        Requirement("R5.1", _M, "an error carries the request's id, or null when unreadable"),
        Requirement("R5.2", _M, "with several faults, the first in precedence order is reported"),
        Requirement("R5.3", _M, "a failed request changes nothing and notifies no one"),
        Requirement("R5.4", _M, "malformed input earns BAD_REQUEST; the connection stays usable"),
    ]
}
