"""The client side of one store-protocol connection, frame by frame, without I/O.

:class:`ClientConnection` picks request ids, remembers what is pending and
matches every frame the server sends against the spec: replies must answer the
oldest pending request (R1.3), carry the reply type that request expects, and
updates must belong to an observer this connection holds (R4, R5). Every
violation names the requirement it breaks (``ProtocolViolation.requirement``).

It holds the connection's only observer table (observerId -> key and callback)
and its only pending queue. :class:`harness.client.core.ClientCore` sits above
it and adds the lifecycle, listeners and deadlines; neither keeps the other's state.
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
    Join,
    Observe,
    Observing,
    Reply,
    Request,
    Set,
    StopObserving,
    Update,
    Value,
    decode_server_message,
    encode,
    request_name,
)

#: Where the spec gives each request's success reply: a reply of another type breaks it.
_SUCCESS_REPLY_REQUIREMENT: dict[type, str] = {
    Join: "R2.1",
    Set: "R3.1",
    Get: "R3.1",
    Observe: "R4.1",
    StopObserving: "R4.5",
}


@dataclass(slots=True, eq=False)
class PendingRequest:
    """A request sent and not yet answered.

    ``request`` is None for a raw frame (the conformance suite sends malformed
    ones on purpose); then only an error reply with ``id`` is acceptable.
    ``waiter`` belongs to the front end (a future, a lock...). ``callback`` is an
    observe's update callback until its observerId arrives. Once ``done``,
    ``outcome`` is what the caller gets: a return value, or the exception to raise.
    ``abandoned`` says the caller was told "unknown" (a timeout) before any reply.
    """

    id: int | None
    request: Request | None
    sent_ns: int
    waiter: Any = None
    abandoned: bool = False
    frame: bytes = field(default=b"", repr=False)
    deadline_ns: int = 0
    callback: Any = None
    done: bool = False
    outcome: Any = None


@dataclass(slots=True, eq=False)
class Observation:
    """An observer this connection holds: its key and the callback its updates go to."""

    key: str
    callback: Any = None


class ClientConnection:
    """Request bookkeeping and reply matching for one connection."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.pending: deque[PendingRequest] = deque()
        #: observerId -> key and callback, for observers this connection holds (R4.4, R4.5).
        self.observers: dict[str, Observation] = {}
        #: observerIds whose stopObserving was acknowledged, so a later update for one
        #: can be called what it is (R4.5). Per connection, like observerIds (R2.5).
        self.stopped: set[str] = set()

    def next_id(self) -> int:
        return next(self._ids)

    def send(
        self, request: Request, sent_ns: int, waiter: Any = None, callback: Any = None
    ) -> PendingRequest:
        """Remember ``request`` as pending; the returned entry's ``frame`` is what to send.

        ``callback`` (observe only) is registered with the observerId the reply brings.
        """
        pending = PendingRequest(
            request.id, request, sent_ns, waiter, False, encode(request), 0, callback
        )
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

    def forget(self, pending: PendingRequest) -> None:
        """Drop a request that was never sent (the connection was unusable)."""
        self.pending.remove(pending)

    def receive(self, frame: str | bytes) -> tuple[PendingRequest, Reply] | Update:
        """Match one frame from the server; raises ProtocolViolation if the spec forbids it."""
        message = decode_server_message(frame)
        if isinstance(message, Update):
            observation = self.observers.get(message.observer_id)
            if observation is None:
                raise self._inactive_observer(message.observer_id, frame)
            if observation.key != message.key:
                key = observation.key
                raise ProtocolViolation(
                    f"update for key {message.key!r} on observer {message.observer_id!r}, "
                    f"which observes {key!r}",
                    frame,
                    requirement="R4.1",
                )
            return message
        if not self.pending:
            raise ProtocolViolation(
                f"a reply (id {message.id!r}) came while no request was pending",
                frame,
                requirement="R1.2",
            )
        head = self.pending[0]
        if message.id != head.id:
            ids = [p.id for p in self.pending]
            if message.id in ids:
                raise ProtocolViolation(
                    f"reply to request {message.id} came before the reply to request "
                    f"{head.id}; replies must come in request order",
                    frame,
                    requirement="R1.3",
                )
            raise ProtocolViolation(
                f"reply id {message.id!r} matches no pending request (pending: {ids})",
                frame,
                requirement="R1.2",
            )
        # Checked before it leaves the queue: a violating reply must leave the request
        # pending, so the front end fails it with the violation instead of losing it.
        self._check_reply(head, message, frame)
        self.pending.popleft()
        return head, message

    def _inactive_observer(self, observer_id: str, frame: str | bytes) -> ProtocolViolation:
        """Say why an update for an observerId this connection does not hold is forbidden.

        Only on the violation path: the pending queue is scanned here, never per update.
        """
        observe_pending = any(isinstance(p.request, Observe) for p in self.pending)
        if observe_pending and observer_id not in self.stopped:
            return ProtocolViolation(
                f"update for observer {observer_id!r} arrived before the 'observing' reply "
                "that announces it (an observe is still pending on this connection)",
                frame,
                requirement="R4.8",
                kind="update_before_observing",
            )
        if observer_id in self.stopped:
            reuse = (
                "; if the server reused the id for the observe still pending, the update "
                "came before its 'observing' reply instead (R4.8)"
                if observe_pending
                else ""
            )
            return ProtocolViolation(
                f"update for observer {observer_id!r} after stopObserving was acknowledged{reuse}",
                frame,
                requirement="R4.5",
                kind="update_after_stop",
            )
        # observerIds are scoped per connection (R2.5): another connection's is unknown here.
        return ProtocolViolation(
            f"update for observer {observer_id!r}, which no 'observing' reply on this "
            "connection announced (R4.8); observerIds are scoped per connection (R2.5)",
            frame,
            requirement="R4.8",
            kind="update_for_unknown_observer",
        )

    def _check_reply(self, pending: PendingRequest, reply: Reply, frame: str | bytes) -> None:
        request = pending.request
        if isinstance(reply, Error):
            return
        if request is None:
            raise ProtocolViolation(
                "a malformed request was answered with success instead of an error",
                frame,
                requirement="R5.4",
            )
        kind = type(request)
        expected = EXPECTED_REPLY[kind]
        if not isinstance(reply, expected):
            raise ProtocolViolation(
                f"{request_name(request)} must be answered with '{expected.__name__.lower()}' "
                f"or 'error', got '{type(reply).__name__.lower()}'",
                frame,
                requirement=_SUCCESS_REPLY_REQUIREMENT[kind],
            )
        if kind is Set:
            return  # the commonest reply: an ok to a write says all there is to check
        match request, reply:
            case Get(key=key), Value(key=got) if got != key:
                raise ProtocolViolation(
                    f"get of {key!r} answered for key {got!r}", frame, requirement="R3.1"
                )
            case Observe(key=key), Observing(observer_id=observer_id):
                if observer_id in self.observers:
                    raise ProtocolViolation(
                        f"observerId {observer_id!r} is already in use on this connection",
                        frame,
                        requirement="R4.4",
                    )
                self.observers[observer_id] = Observation(key, pending.callback)
                self.stopped.discard(observer_id)  # a server may issue a stopped id again
            case StopObserving(observer_id=observer_id), _:
                if self.observers.pop(observer_id, None) is not None:
                    self.stopped.add(observer_id)

    def fail_all(self) -> list[PendingRequest]:
        """Forget every pending request (the connection is gone) and return them."""
        failed = list(self.pending)
        self.pending.clear()
        return failed
