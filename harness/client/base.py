"""What the asyncio and blocking clients share: request building, reply handling, hooks.

A front end only moves frames: it calls :meth:`ClientBase._begin` before
sending, :meth:`ClientBase._on_frame` for every frame received and
:meth:`ClientBase._on_lost` when the connection ends. Everything else (the
request/reply matching, observer callbacks, listener hooks, turning replies
into return values or exceptions) lives here once.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from time import monotonic_ns

from harness.errors import HarnessUsageError, ProtocolViolation, StoreError
from harness.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    ClientConnection,
    Error,
    Get,
    Join,
    Joined,
    Limits,
    Observe,
    Observing,
    Participant,
    PendingRequest,
    Reply,
    Request,
    Set,
    StopObserving,
    Update,
    Value,
)

log = logging.getLogger(__name__)

UpdateCallback = Callable[[str | None, Participant], None]

DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0


# Connection ids must stay unique when histories from many processes and
# machines are merged, so each process gets a random tag, renewed in a forked
# child (locust --processes forks after the locustfile is imported).
def _new_process_tag() -> None:
    global _PROCESS_TAG, _connection_numbers
    _PROCESS_TAG = f"{os.getpid():x}{secrets.token_hex(2)}"
    _connection_numbers = itertools.count(1)


_new_process_tag()
os.register_at_fork(after_in_child=_new_process_tag)


def process_tag() -> str:
    return _PROCESS_TAG


def new_connection_id() -> str:
    return f"{_PROCESS_TAG}-{next(_connection_numbers)}"


class ClientListener:
    """Hooks called for every request and update on a client; subclass what you need.

    All times are ``time.monotonic_ns()``. ``reply`` is None when the outcome is
    unknown (timeout, connection lost): the server may or may not have applied
    the request, and histories must say so rather than call it failed.
    """

    def request_sent(self, client: ClientBase, pending: PendingRequest) -> None:
        pass

    def request_done(
        self, client: ClientBase, pending: PendingRequest, reply: Reply | None, done_ns: int
    ) -> None:
        pass

    def update_received(self, client: ClientBase, update: Update, received_ns: int) -> None:
        pass

    def connection_closed(self, client: ClientBase, closed_ns: int, by_client: bool) -> None:
        """The connection ended; ``closed_ns`` is when the client began closing it, if it did.

        Observers stop at that instant: a history must not expect later updates.
        """

    def violation_seen(
        self, client: ClientBase, violation: ProtocolViolation, seen_ns: int
    ) -> None:
        """The server broke the spec on this connection, whether or not a request was pending.

        Called once per violation, before the client fails the connection with 1002
        (the ``connection_closed`` that follows says ``by_client``, at ``seen_ns``).
        ``violation.frame`` is the offending frame, ``violation.requirement`` the
        requirement it breaks. Rare by nature, so listeners may do real work here.
        """


class ClientBase:
    """State and reply handling shared by both front ends."""

    def __init__(
        self,
        url: str,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        listeners: Sequence[ClientListener] = (),
        compression: bool = False,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        if request_timeout <= 0:
            raise HarnessUsageError(f"request_timeout must be positive, got {request_timeout}")
        self.url = url
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        # Off by default: permessage-deflate costs several times the memory per connection.
        self.compression = compression
        self.max_frame_bytes = max_frame_bytes
        #: The first spec violation seen; the connection is closed with 1002 after it.
        self.violation: ProtocolViolation | None = None
        self.listeners = list(listeners)
        self.connection_id = new_connection_id()
        self.protocol = ClientConnection()
        self.participant: Participant | None = None
        self.session: str | None = None
        self.limits: Limits | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        #: When this side began closing, so histories end its observers there, not later.
        self.closing_ns: int | None = None
        self._callbacks: dict[str, UpdateCallback | None] = {}
        # Callbacks of observe requests still waiting for their observerId.
        self._waiting_callbacks: dict[int, UpdateCallback | None] = {}

    # --- requests -------------------------------------------------------------

    def _join_request(
        self, session: str, participant_id: str, name: str, token: str | None
    ) -> Join:
        return Join(self.protocol.next_id(), session, Participant(participant_id, name), token)

    def _set_request(self, key: str, value: str | None) -> Set:
        return Set(self.protocol.next_id(), key, value)

    def _get_request(self, key: str) -> Get:
        return Get(self.protocol.next_id(), key)

    def _observe_request(self, key: str, callback: UpdateCallback | None) -> Observe:
        request = Observe(self.protocol.next_id(), key)
        self._waiting_callbacks[request.id] = callback
        return request

    def _stop_request(self, observer_id: str) -> StopObserving:
        return StopObserving(self.protocol.next_id(), observer_id)

    def _begin(self, request: Request, waiter: object) -> PendingRequest:
        pending = self.protocol.send(request, monotonic_ns(), waiter)
        for listener in self.listeners:
            listener.request_sent(self, pending)
        return pending

    def _begin_raw(
        self, frame: bytes | str, reply_id: int | None, waiter: object
    ) -> PendingRequest:
        pending = self.protocol.send_raw(frame, reply_id, monotonic_ns(), waiter)
        for listener in self.listeners:
            listener.request_sent(self, pending)
        return pending

    # --- frames in --------------------------------------------------------------

    def _on_frame(self, frame: str | bytes) -> tuple[PendingRequest, Reply] | Update:
        """Handle one frame; returns the update, or the request it answered and the reply.

        Raises ProtocolViolation when the frame breaks the spec.
        """
        now = monotonic_ns()
        event = self.protocol.receive(frame)
        if isinstance(event, Update):
            for listener in self.listeners:
                listener.update_received(self, event, now)
            callback = self._callbacks.get(event.observer_id)
            if callback is not None:
                try:
                    callback(event.value, event.updated_by)
                except Exception:
                    # One faulty callback must not stop deliveries to the others.
                    log.exception("observer callback for %r raised", event.key)
            return event
        pending, reply = event
        self._after_reply(pending, reply)
        if not pending.abandoned:  # a timed-out request was already reported as unknown
            for listener in self.listeners:
                listener.request_done(self, pending, reply, now)
        return event

    def _after_reply(self, pending: PendingRequest, reply: Reply) -> None:
        callback = self._waiting_callbacks.pop(pending.id, None) if pending.id else None
        if isinstance(reply, Joined):
            self.participant = reply.participant
            self.session = reply.session
            self.limits = reply.limits
        elif isinstance(reply, Observing):
            # Registered before the reply is handed back so no update can slip by.
            self._callbacks[reply.observer_id] = callback
        elif isinstance(pending.request, StopObserving) and not isinstance(reply, Error):
            self._callbacks.pop(pending.request.observer_id, None)

    def _violation(self, violation: ProtocolViolation) -> None:
        """The server broke the spec: remember it, mark the close as ours, tell listeners.

        Both front ends call this before failing the connection with 1002. The close is
        the client's, begun now: the history ends this connection's observers here,
        so nothing the server would have sent after is expected of it.
        """
        if self.violation is not None:
            return  # the connection is already being failed; later frames go unread
        now = monotonic_ns()
        self.violation = violation
        if self.closing_ns is None:
            self.closing_ns = now
        for listener in self.listeners:
            try:
                listener.violation_seen(self, violation, now)
            except Exception:
                # A listener's fault must not hide the violation from the others.
                log.exception("listener %r failed on a protocol violation", listener)

    def _on_unknown(self, pending: PendingRequest) -> None:
        """The request will get no reply we wait for (timeout or connection lost)."""
        now = monotonic_ns()
        for listener in self.listeners:
            listener.request_done(self, pending, None, now)

    def _lost(self) -> list[PendingRequest]:
        failed = [p for p in self.protocol.fail_all() if not p.abandoned]
        for pending in failed:
            self._on_unknown(pending)
        by_client = self.closing_ns is not None
        closed_ns = self.closing_ns if by_client else monotonic_ns()
        for listener in self.listeners:
            listener.connection_closed(self, closed_ns, by_client)
        return failed

    # --- replies to return values --------------------------------------------

    @staticmethod
    def _result(reply: Reply) -> object:
        if isinstance(reply, Error):
            raise StoreError(reply.code, reply.message, reply.id)
        if isinstance(reply, Value):
            return reply.value
        if isinstance(reply, Observing):
            return reply.observer_id
        if isinstance(reply, Joined):
            return reply
        return None


def describe_close(code: int | None, reason: str) -> str:
    if code is None:
        return "connection closed without a close frame"
    return f"connection closed with code {code}" + (f" ({reason})" if reason else "")


__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_REQUEST_TIMEOUT",
    "ClientBase",
    "ClientListener",
    "UpdateCallback",
    "describe_close",
    "new_connection_id",
]
