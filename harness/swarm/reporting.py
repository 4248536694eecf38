"""What a swarm process tells locust: a stats row per request, notification and connect,
and the protocol violations participants saw (counted in the PROTOCOL row, quoted
for run.json).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from harness.client.core import ClientCore, ClientListener
from harness.errors import OutcomeUnknown, ProtocolViolation, StoreError
from harness.history.events import FRAME_QUOTE_CHARS
from harness.protocol import Error, PendingRequest, Reply, Update
from harness.protocol.auth import redact_tokens
from harness.protocol.messages import KIND_OF

#: Locust request_type for each protocol request (harness.protocol.kinds), and whether
#: its stats row is the key's group (else the session); then the harness's own rows.
_ROWS = {cls: (kind.locust, kind.keyed) for cls, kind in KIND_OF.items()}
NOTIFY, CONNECT, PROTOCOL = "NOTIFY", "CONNECT", "PROTOCOL"
#: Violations quoted in full per process; the rest are only counted.
MAX_VIOLATIONS_KEPT = 20


def key_label(key: str) -> str:
    """Group generated keys (``key-17``) into one stats row (``key-*``)."""
    stem = key.rstrip("0123456789")
    return f"{stem}*" if stem != key else key


class LocustReporter(ClientListener):
    """Fires locust's request event for every completed request and every notification,
    and hands every protocol violation a client sees to ``on_violation``.

    Violations come here rather than to a listener of their own, so the per-message
    path calls no extra hook for them.
    """

    def __init__(
        self,
        request_event: Any,
        on_violation: Callable[[ProtocolViolation, ClientCore], None] | None = None,
    ) -> None:
        self.fire = request_event.fire
        self.on_violation = on_violation
        self.counts: Counter[str] = Counter()
        self.in_flight = 0

    def violation_seen(
        self, client: ClientCore, violation: ProtocolViolation, seen_ns: int
    ) -> None:
        if self.on_violation is not None:
            self.on_violation(violation, client)

    def request_sent(self, client: ClientCore, pending: PendingRequest) -> None:
        self.in_flight += 1

    def request_done(
        self, client: ClientCore, pending: PendingRequest, reply: Reply | None, done_ns: int
    ) -> None:
        self.in_flight -= 1
        request = pending.request
        if request is None:
            return
        kind, keyed = _ROWS[type(request)]
        exception: Exception | None = None
        if reply is None:
            exception = OutcomeUnknown("no reply: timed out or connection lost")
        elif isinstance(reply, Error):
            exception = StoreError(reply.code, reply.message, reply.id)
        label = key_label(request.key) if keyed else client.session or ""  # type: ignore[union-attr]
        self.counts[kind] += 1
        self.fire(
            request_type=kind,
            name=label,
            response_time=(done_ns - pending.sent_ns) / 1e6,
            response_length=len(pending.frame),
            exception=exception,
            context={},
        )

    def notified(self, update: Update, latency_us: int, clock: str) -> None:
        self.counts[NOTIFY] += 1
        self.fire(
            request_type=NOTIFY,
            name=f"{key_label(update.key)} ({clock} clock)",
            response_time=latency_us / 1000,
            response_length=0,
            exception=None,
            context={},
        )


class ViolationsOnly(ClientListener):
    """For the audit's client: its violations are counted too, its reads are not."""

    def __init__(self, on_violation: Callable[[ProtocolViolation, ClientCore], None]) -> None:
        self.on_violation = on_violation

    def violation_seen(
        self, client: ClientCore, violation: ProtocolViolation, seen_ns: int
    ) -> None:
        self.on_violation(violation, client)


class Reporting:
    """The rows a process adds to locust's stats beside the listeners': connects and
    violations, with what run.json keeps of them."""

    def __init__(self, request_event: Any, process_name: str) -> None:
        self.fire = request_event.fire
        self.process_name = process_name
        self.requests = LocustReporter(request_event, self.violation)
        self.connects = Counter[str]()
        #: The first protocol violations participants saw, each quoting its frame.
        self.violations: list[dict[str, Any]] = []
        self.violation_count = 0

    def connect(self, started: float, error: BaseException | None) -> None:
        self.connects["failed" if error else "ok"] += 1
        self.fire(
            request_type=CONNECT,
            name="connect+join",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )

    def violation(self, violation: ProtocolViolation, client: ClientCore | None = None) -> None:
        """Count a violation in locust's PROTOCOL row and keep it, quoted, for run.json.

        Runs in the client's reader (gevent's hub): it must not block.
        """
        self.violation_count += 1
        requirement = violation.requirement or "spec"
        if len(self.violations) < MAX_VIOLATIONS_KEPT:
            frame = violation.frame
            if isinstance(frame, bytes):
                frame = frame.decode("utf-8", "backslashreplace")
            self.violations.append(
                {
                    "requirement": violation.requirement,
                    "kind": violation.kind,
                    # A server may echo a join token back: run.json keeps no signature.
                    "message": redact_tokens(str(violation)),
                    "frame": None if frame is None else redact_tokens(frame[:FRAME_QUOTE_CHARS]),
                    "connection": client.connection_id if client else None,
                    "participant": client.participant.id if client and client.participant else None,
                    "session": client.session if client else None,
                    "process": self.process_name,
                }
            )
        self.fire(
            request_type=PROTOCOL,
            name=f"{requirement} {violation.kind}",
            response_time=0,
            response_length=0,
            # One text per kind: locust's failures table has a row per distinct text, and
            # frames and observer ids differ every time (run.json quotes them).
            exception=ProtocolViolation(
                f"{violation.kind.replace('_', ' ')}; run.json and the verdict quote the frames",
                requirement=requirement,
            ),
            context={},
        )
