"""One exception tree for the whole harness.

The split follows who is to blame, because for a conformance tool that is the
product: "your server broke requirement R4.2" must never look like "the harness
crashed".

    HarnessError
    ├── StoreError            the server answered with an error code (expected behaviour)
    ├── ProtocolViolation     the server broke the spec; quotes the offending frame
    ├── RequestTimeout        no reply within the request's timeout (outcome unknown)
    ├── ConnectionLost        the connection closed with requests still pending (outcome unknown)
    └── HarnessUsageError     the user's options or calls are wrong (exit code 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.protocol.limits import ErrorCode


class HarnessError(Exception):
    """Root of every exception the harness raises on purpose."""


class StoreError(HarnessError):
    """The server refused a request with a protocol error code."""

    def __init__(self, code: ErrorCode, message: str, request_id: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class ProtocolViolation(HarnessError):
    """The server sent something the spec does not allow.

    ``frame`` is the offending frame exactly as received, so reports can quote it.
    ``requirement`` is the number in docs/protocol.md it breaks (e.g. ``"R4.5"``), so
    reports can cite it without parsing text; the message cites it too. ``kind`` names
    the violation for histories and verdicts: :data:`VIOLATION_KINDS` lists those with
    a name of their own, every other one is ``protocol_violation``.
    """

    def __init__(
        self,
        reason: str,
        frame: str | bytes | None = None,
        *,
        requirement: str | None = None,
        kind: str = "protocol_violation",
    ) -> None:
        cited = f" ({requirement})" if requirement and requirement not in reason else ""
        quoted = "" if frame is None else f" in frame {_quote(frame)}"
        super().__init__(f"{reason}{cited}{quoted}")
        self.reason = reason
        self.frame = frame
        self.requirement = requirement
        self.kind = kind


#: Violations with a name of their own: kind -> the requirement each breaks.
VIOLATION_KINDS: dict[str, str] = {
    "update_after_stop": "R4.5",
    "update_before_observing": "R4.8",
}


class RequestTimeout(HarnessError):
    """No reply came in time; whether the server applied the request is unknown."""


class ConnectionLost(HarnessError):
    """The connection ended while the request was pending; its outcome is unknown."""

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class HarnessUsageError(HarnessError):
    """The caller's options are wrong or the harness cannot run as asked."""


def _quote(frame: str | bytes, limit: int = 300) -> str:
    text = repr(frame)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(frame)} bytes in all)"
