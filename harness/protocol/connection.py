"""The client side of one store-protocol connection, without I/O.

:class:`ClientConnection` picks request ids, remembers what is pending and
matches every frame the server sends against the spec: replies must answer the
oldest pending request (R1.3), carry the reply type that request expects, and
updates must belong to an observer this connection holds (R4, R5). Both
front ends (:mod:`harness.client.aio` and :mod:`harness.client.sync`) move
frames between a socket and this object and nothing more.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ProtocolViolation
from harness.protocol.messages import (
    EXPECTED_REPLY,
    Error,
    Get,
    Joined,
    Observe,
    Observing,
    Reply,
    Request,
    StopObserving,
    Update,
    Value,
    decode_server_message,
    encode,
    request_name,
)


@dataclass(slots=True, eq=False)
class PendingRequest:
    """A request sent and not yet answered.

    ``request`` is None for a raw frame (the conformance suite sends malformed
    ones on purpose); then only an error reply with ``id`` is acceptable.
    ``waiter`` belongs to the front end (a future, an event...).
    """

    id: int | None
    request: Request | None
    sent_ns: int
    waiter: Any = None
    abandoned: bool = False
    frame: bytes = field(default=b"", repr=False)


class ClientConnection:
    """Request bookkeeping and reply matching for one connection."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.pending: deque[PendingRequest] = deque()
        #: observerId -> key, for observers this connection holds (R4.4, R4.5).
        self.observers: dict[str, str] = {}
        self.joined: Joined | None = None

    def next_id(self) -> int:
        return next(self._ids)

    def send(self, request: Request, sent_ns: int, waiter: Any = None) -> PendingRequest:
        """Remember ``request`` as pending; the returned entry's ``frame`` is what to send."""
        pending = PendingRequest(request.id, request, sent_ns, waiter, frame=encode(request))
        self.pending.append(pending)
        return pending

    def send_raw(
        self, frame: bytes | str, reply_id: int | None, sent_ns: int, waiter: Any = None
    ) -> PendingRequest:
        """Remember a hand-made frame that the server must answer with an error."""
        data = frame.encode() if isinstance(frame, str) else frame
        pending = PendingRequest(reply_id, None, sent_ns, waiter, frame=data)
        self.pending.append(pending)
        return pending

    def receive(self, frame: str | bytes) -> tuple[PendingRequest, Reply] | Update:
        """Match one frame from the server; raises ProtocolViolation if the spec forbids it."""
        message = decode_server_message(frame)
        if isinstance(message, Update):
            key = self.observers.get(message.observer_id)
            if key is None:
                raise ProtocolViolation(
                    f"update for observer {message.observer_id!r}, which is not active on "
                    "this connection (R4.5)",
                    frame,
                )
            if key != message.key:
                raise ProtocolViolation(
                    f"update for key {message.key!r} on observer {message.observer_id!r}, "
                    f"which observes {key!r} (R4.1)",
                    frame,
                )
            return message
        if not self.pending:
            raise ProtocolViolation("reply with no request pending", frame)
        head = self.pending[0]
        if message.id != head.id:
            ids = [p.id for p in self.pending]
            if message.id in ids:
                reason = (
                    f"reply to request {message.id} came before the reply to request "
                    f"{head.id}; replies must come in request order (R1.3)"
                )
            else:
                reason = f"reply id {message.id!r} matches no pending request (pending: {ids})"
            raise ProtocolViolation(reason, frame)
        # Checked before it leaves the queue: a violating reply must leave the request
        # pending, so the front end fails it with the violation instead of losing it.
        self._check_reply(head, message, frame)
        self.pending.popleft()
        return head, message

    def _check_reply(self, pending: PendingRequest, reply: Reply, frame: str | bytes) -> None:
        request = pending.request
        if isinstance(reply, Error):
            return
        if request is None:
            raise ProtocolViolation(
                "a malformed request was answered with success instead of an error", frame
            )
        expected = EXPECTED_REPLY[type(request)]
        if not isinstance(reply, expected):
            raise ProtocolViolation(
                f"{request_name(request)} must be answered with '{expected.__name__.lower()}' "
                f"or 'error', got '{type(reply).__name__.lower()}'",
                frame,
            )
        match request, reply:
            case Get(key=key), Value(key=got) if got != key:
                raise ProtocolViolation(f"get of {key!r} answered for key {got!r}", frame)
            case Observe(key=key), Observing(observer_id=observer_id):
                if observer_id in self.observers:
                    raise ProtocolViolation(
                        f"observerId {observer_id!r} is already in use on this connection",
                        frame,
                    )
                self.observers[observer_id] = key
            case StopObserving(observer_id=observer_id), _:
                self.observers.pop(observer_id, None)
            case _, Joined() as joined:
                self.joined = joined

    def fail_all(self) -> list[PendingRequest]:
        """Forget every pending request (the connection is gone) and return them."""
        failed = list(self.pending)
        self.pending.clear()
        return failed
