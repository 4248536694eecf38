"""One exception tree for the whole harness.

The split follows who is to blame, because for a conformance tool that is the
product: "your server broke requirement R4.2" must never look like "the harness
crashed".

    HarnessError
    ├── StoreError            the server answered with an error code (expected behaviour)
    ├── ProtocolViolation     the server broke the spec; quotes the offending frame
    ├── OutcomeUnknown        no reply: whether the server applied the request is unknown
    │   ├── RequestTimeout    no reply within the request's timeout
    │   └── ConnectionLost    the connection closed with the request still pending
    ├── ServerRestarting      the harness is restarting the server; connect again later
    ├── PreflightFailed       the server cannot be used at all: unreachable, silent, refusing
    ├── SuiteCannotRun        the conformance suite cannot run against this server (exit 2)
    ├── CaseFailed            a conformance case saw the server break its requirement
    ├── CaseSkipped           a conformance case can say nothing about this server
    ├── AnomalyFound          the live checker found an anomaly (a locust ANOMALY row)
    ├── FindingError          the fuzzer found a server failure; stops the batch
    ├── Unreachable           the fuzzer cannot even connect: nothing to judge a batch by
    └── HarnessUsageError     the user's options or calls are wrong (exit code 2)
        └── HistoryError      a history file cannot be read; names the file and line

Exit codes follow the tree: :func:`harness.exits.exit_code_for`. A few private
exceptions stay beside the code whose control flow they are (``_Bad`` in
protocol/messages.py, ``_Failed``, ``_BudgetSpent`` and ``_ServerGone`` in
fuzz/engine.py): nothing outside that module ever sees one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.fuzz.runner import Finding
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


class OutcomeUnknown(HarnessError):
    """A request got no reply; whether the server applied it is unknown.

    Histories record such a request as completed with ``unknown``, never as failed,
    and locust's failures table shows it under this name.
    """


class RequestTimeout(OutcomeUnknown):
    """No reply came in time; whether the server applied the request is unknown."""


class ConnectionLost(OutcomeUnknown):
    """The connection ended while the request was pending; its outcome is unknown."""

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class ServerRestarting(HarnessError):
    """A swarm participant connected while the harness was restarting the server; it retries."""


class PreflightFailed(HarnessError):
    """The server cannot be used: unreachable, silent, or refusing the join."""


class SuiteCannotRun(HarnessError):
    """The suite could not run against this server at all (exit code 2)."""


class AnomalyFound(HarnessError):
    """What a swarm's ANOMALY row says in locust's failures: the checker found one while
    the run went on. The verdict at the end, on the whole history, decides the exit code."""


class CaseFailed(HarnessError):
    """The server did not behave as the requirement says."""

    def __init__(self, message: str, *, expected: str = "", got: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.got = got


class CaseSkipped(HarnessError):
    """The case cannot say anything about this server; the reason says why."""


class FindingError(HarnessError):
    """Raised inside a fuzz batch to stop it at the first finding."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.describe())
        self.finding = finding


class Unreachable(HarnessError):
    """The server would not even accept a connection: nothing to judge a batch by."""


class HarnessUsageError(HarnessError):
    """The caller's options are wrong or the harness cannot run as asked."""


class HistoryError(HarnessUsageError):
    """A history file cannot be read; the message names the file and line."""


def _quote(frame: str | bytes, limit: int = 300) -> str:
    text = repr(frame)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(frame)} bytes in all)"
