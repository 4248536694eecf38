"""The client's sans-I/O core: one connection's whole state, bytes in and bytes out.

:class:`ClientCore` has websockets' ``Protocol`` shape. It never touches a
socket, a loop or a thread; a front end (:mod:`harness.client.aio`,
:mod:`harness.client.sync`) subclasses it and only moves bytes and wakes waiters:

- :meth:`~ClientCore.start` registers a request (or fails it at once on an
  unusable connection); :meth:`~ClientCore.data_to_send` is what to write.
- :meth:`~ClientCore.receive_data` takes what the socket read and returns the
  requests it answered, each ``done`` with its ``outcome`` (a return value, or
  the exception the caller raises).
- :meth:`~ClientCore.next_deadline_ns` is when to call :meth:`~ClientCore.expire`:
  one timer per connection, not one per request. Deadlines grow in send order.
- :meth:`~ClientCore.connection_lost` returns the requests the end fails.

All the state lives here once: the join (``participant``, ``session``,
``limits``), the lifecycle (``violation``, ``closing_ns``, ``closed``) and,
in the frame matcher :class:`~harness.protocol.ClientConnection` under it
(``self.connection``), the pending queue and the one observer table. Below that,
:class:`~harness.client.wire.Wire` frames bytes (RFC 6455).

**How a store adapter plugs in** (issue 13). An adapter for a store with its own
protocol replaces the two layers under the core, not the core: it builds the
same :class:`~harness.protocol.Request` messages and registers them with
:meth:`ClientCore._track`, then reports what its store answered through
:meth:`ClientCore._answer` (a :class:`~harness.protocol.Reply`: ``Ok``, ``Value``,
``Observing``, ``Joined``, or ``Error`` with an ``ErrorCode``), notifications
through :meth:`ClientCore._deliver`, timeouts through :meth:`ClientCore.abandon`
and the end through :meth:`ClientCore._end`. Those are the three outcomes every
listener understands: a reply (ok), an ``Error`` (an error code), and ``None``
(unknown: timeout or lost connection). So recording, the latency histograms,
the locust rows and the checker work unchanged above any adapter.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from time import monotonic_ns
from typing import Any

from harness.client.wire import Wire
from harness.errors import (
    ConnectionLost,
    HarnessError,
    HarnessUsageError,
    ProtocolViolation,
    RequestTimeout,
    StoreError,
)
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
    Ok,
    Participant,
    PendingRequest,
    Reply,
    Request,
    Set,
    StopObserving,
    Update,
    Value,
)
from harness.protocol.closes import CLOSE_PROTOCOL_ERROR
from harness.protocol.connection import Observation

log = logging.getLogger(__name__)

UpdateCallback = Callable[[str | None, Participant], None]
#: ``trace(direction, data)``: every frame, "sent" or "received", as it crosses the wire.
FrameTrace = Callable[[str, str | bytes], None]

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

    def request_sent(self, client: ClientCore, pending: PendingRequest) -> None:
        pass

    def request_done(
        self, client: ClientCore, pending: PendingRequest, reply: Reply | None, done_ns: int
    ) -> None:
        pass

    def update_received(self, client: ClientCore, update: Update, received_ns: int) -> None:
        pass

    def connection_closed(self, client: ClientCore, closed_ns: int, by_client: bool) -> None:
        """The connection ended; ``closed_ns`` is when the client began closing it, if it did.

        Observers stop at that instant: a history must not expect later updates.
        """

    def violation_seen(
        self, client: ClientCore, violation: ProtocolViolation, seen_ns: int
    ) -> None:
        """The server broke the spec on this connection, whether or not a request was pending.

        Called once per violation, before the client fails the connection with 1002
        (the ``connection_closed`` that follows says ``by_client``, at ``seen_ns``).
        ``violation.frame`` is the offending frame, ``violation.requirement`` the
        requirement it breaks. Rare by nature, so listeners may do real work here.
        """


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How one client connection behaves; the same for both front ends."""

    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    # Off by default: permessage-deflate costs several times the memory per connection.
    compression: bool = False
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    listeners: tuple[ClientListener, ...] = ()
    trace: FrameTrace | None = None
    #: Extra opening-handshake headers, (name, value) pairs: ``Authorization``, cookies.
    headers: tuple[tuple[str, str], ...] = ()
    #: The WebSocket subprotocol to offer (``Sec-WebSocket-Protocol``), if the store wants one.
    subprotocol: str | None = None
    #: For ``wss://``: a CA bundle to verify the server with (default: the system's), or
    #: ``insecure`` to verify nothing (a self-signed test server).
    ca_file: str | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.request_timeout <= 0:
            raise HarnessUsageError(f"request_timeout must be positive, got {self.request_timeout}")
        object.__setattr__(self, "listeners", tuple(self.listeners))
        object.__setattr__(self, "headers", tuple((n, v) for n, v in self.headers))


_OPTION_NAMES = frozenset(f.name for f in fields(ClientOptions))


def describe_close(code: int | None, reason: str) -> str:
    if code is None:
        return "connection closed without a close frame"
    return f"connection closed with code {code}" + (f" ({reason})" if reason else "")


def _result(reply: Reply) -> object:
    """What a request's caller gets for ``reply``: a value, or a StoreError to raise."""
    if type(reply) is Ok:
        return None  # the commonest reply, answered before the type tests below
    if isinstance(reply, Error):
        return StoreError(reply.code, reply.message, reply.id)
    if isinstance(reply, Value):
        return reply.value
    if isinstance(reply, Observing):
        return reply.observer_id
    if isinstance(reply, Joined):
        return reply
    return None


class ClientCore:
    """One connection's state and the store protocol's rules, without I/O."""

    def __init__(self, url: str, options: ClientOptions | None = None, **changes: Any) -> None:
        unknown = set(changes) - _OPTION_NAMES
        if unknown:
            raise TypeError(f"unknown client options: {', '.join(sorted(unknown))}")
        base = options or ClientOptions()
        self.options = replace(base, **changes) if changes else base
        self.url = url
        self.connection_id = new_connection_id()
        self.listeners = self.options.listeners
        #: The store-protocol frame matcher: pending requests and the observer table.
        self.connection = ClientConnection()
        self.participant: Participant | None = None
        self.session: str | None = None
        self.limits: Limits | None = None
        #: The first spec violation seen; the connection is failed with 1002 after it.
        self.violation: ProtocolViolation | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        #: When this side began closing, so histories end its observers there, not later.
        self.closing_ns: int | None = None
        #: Where updates go besides callbacks and listeners (a front end's ``updates()``).
        self.update_sink: Callable[[Update], None] | None = None
        self._wire: Wire | None = None
        self._ended = False

    @property
    def closed(self) -> bool:
        return self._ended

    @property
    def observers(self) -> Mapping[str, Observation]:
        """observerId -> (key, callback) for every observer this connection holds."""
        return self.connection.observers

    # --- bytes -------------------------------------------------------------------

    def opening_handshake(self) -> bytes:
        options = self.options
        self._wire = Wire(
            self.url,
            compression=options.compression,
            max_frame_bytes=options.max_frame_bytes,
            headers=options.headers,
            subprotocol=options.subprotocol,
        )
        return self._wire.opening_handshake()

    @property
    def wire(self) -> Wire:
        assert self._wire is not None, "opening_handshake() comes first"
        return self._wire

    @property
    def handshake_done(self) -> bool:
        return self._wire is not None and self._wire.handshake_done

    @property
    def should_close(self) -> bool:
        """The transport should be closed: a violation, or the closing handshake is done."""
        return self.violation is not None or (self._wire is not None and self._wire.finished)

    def data_to_send(self) -> bytes:
        return self._wire.outgoing() if self._wire is not None else b""

    def begin_close(self) -> None:
        """Begin the closing handshake; its bytes wait in :meth:`data_to_send`."""
        if self.closing_ns is None and not self._ended:
            self.closing_ns = monotonic_ns()
        if self._wire is not None and not self._ended:
            self._wire.close()

    # --- requests out -------------------------------------------------------------

    def next_id(self) -> int:
        return self.connection.next_id()

    # The store API's requests, built once for both front ends.

    def _join_request(
        self, session: str, participant_id: str, name: str, token: str | None
    ) -> Join:
        return Join(self.next_id(), session, Participant(participant_id, name), token)

    def _set_request(self, key: str, value: str | None) -> Set:
        return Set(self.next_id(), key, value)

    def _get_request(self, key: str) -> Get:
        return Get(self.next_id(), key)

    def _observe_request(self, key: str) -> Observe:
        return Observe(self.next_id(), key)

    def _stop_request(self, observer_id: str) -> StopObserving:
        return StopObserving(self.next_id(), observer_id)

    def start(
        self, request: Request, waiter: object, callback: UpdateCallback | None = None
    ) -> PendingRequest:
        """Register and frame ``request``; raises at once if the connection is unusable."""
        return self._track(self.connection.send(request, monotonic_ns(), waiter, callback), True)

    def start_raw(
        self, frame: str | bytes, reply_id: int | None, waiter: object, *, binary: bool = False
    ) -> PendingRequest:
        """Register and frame a hand-made frame that the server must answer with an error."""
        pending = self.connection.send_raw(frame, reply_id, monotonic_ns(), waiter)
        return self._track(pending, not binary)

    def _track(self, pending: PendingRequest, text: bool) -> PendingRequest:
        pending.deadline_ns = pending.sent_ns + int(self.options.request_timeout * 1e9)
        for listener in self.listeners:
            listener.request_sent(self, pending)
        wire = self._wire
        # A wire no longer open (the server's close frame came, the transport has not
        # ended yet) would raise websockets' InvalidState: the request is not sent.
        if wire is None or self.violation is not None or self._ended or not wire.is_open:
            self.connection.forget(pending)
            self._unknown(pending, monotonic_ns())
            if wire is None:
                raise HarnessUsageError("the client is not connected; open() it first")
            raise self._end_error()
        trace = self.options.trace
        if trace is not None:
            trace("sent", pending.frame)
        if text:
            wire.send_text(pending.frame)
        else:
            wire.send_binary(pending.frame)
        return pending

    # --- bytes in -------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[PendingRequest]:
        """Feed bytes read (b"" at end of stream); returns the requests now answered.

        Raises ConnectionLost when the opening handshake fails. A frame that breaks
        the spec stops the reading: the requests answered before it are returned,
        the violation is reported and the 1002 close waits in :meth:`data_to_send`.
        """
        wire = self.wire
        messages = wire.receive(data)
        answered: list[PendingRequest] = []
        if self.violation is not None:
            return answered  # the connection is being failed; later frames go unread
        now = monotonic_ns()  # one read, one instant: every frame in it arrived together
        trace = self.options.trace
        receive = self.connection.receive
        try:
            for text in messages:
                if trace is not None:
                    trace("received", text)
                event = receive(text)
                if type(event) is Update:
                    self._deliver(event, now)
                else:
                    self._answer(event[0], event[1], now, answered)  # type: ignore[index]
        except ProtocolViolation as violation:
            self._violated(violation)
            return answered
        if wire.violation is not None:  # a frame that broke R1.1, after the ones before it
            self._violated(wire.violation)
        return answered

    def _answer(
        self, pending: PendingRequest, reply: Reply, now: int, answered: list[PendingRequest]
    ) -> None:
        if type(reply) is Joined:
            self.participant, self.session, self.limits = (
                reply.participant,
                reply.session,
                reply.limits,
            )
        if pending.abandoned:
            return  # reported as unknown at its timeout, and its caller has moved on
        for listener in self.listeners:
            listener.request_done(self, pending, reply, now)
        pending.done = True
        pending.outcome = reply if pending.request is None else _result(reply)
        answered.append(pending)

    def _deliver(self, update: Update, now: int) -> None:
        for listener in self.listeners:
            listener.update_received(self, update, now)
        observation = self.connection.observers.get(update.observer_id)
        if observation is not None and observation.callback is not None:
            try:
                observation.callback(update.value, update.updated_by)
            except Exception:
                # One faulty callback must not stop deliveries to the others.
                log.exception("observer callback for %r raised", update.key)
        if self.update_sink is not None:
            self.update_sink(update)

    def _violated(self, violation: ProtocolViolation) -> None:
        """The server broke the spec: remember it, mark the close as ours, tell listeners.

        The close is the client's, begun now: the history ends this connection's
        observers here, so nothing the server would have sent after is expected of it.
        """
        if self.violation is not None:
            return
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
        if self._wire is not None:
            self._wire.fail(CLOSE_PROTOCOL_ERROR, "protocol violation")

    # --- deadlines and the end ------------------------------------------------------

    def next_deadline_ns(self) -> int | None:
        """When the oldest request still awaited times out; None when none is."""
        for pending in self.connection.pending:
            if not pending.abandoned:
                return pending.deadline_ns
        return None

    def expire(self, now_ns: int) -> list[PendingRequest]:
        """Abandon every request whose deadline has passed; returns them, ``done``."""
        expired = []
        for pending in self.connection.pending:
            if pending.abandoned:
                continue
            if pending.deadline_ns > now_ns:
                break
            self.abandon(pending)
            expired.append(pending)
        return expired

    def abandon(self, pending: PendingRequest) -> None:
        """Stop waiting for ``pending``: its outcome is unknown, reported once.

        It stays pending on the wire, so a late reply is still matched in order
        (R1.3), and is not reported again.
        """
        pending.abandoned = True
        self._unknown(pending, monotonic_ns())
        pending.done = True
        pending.outcome = RequestTimeout(
            f"no reply to request {pending.id} within {self.options.request_timeout:g}s"
        )

    def _unknown(self, pending: PendingRequest, now: int) -> None:
        for listener in self.listeners:
            listener.request_done(self, pending, None, now)

    def connection_lost(self) -> list[PendingRequest]:
        """The transport ended: read the close, fail every request still awaited."""
        wire = self._wire
        if wire is not None:
            if not wire.finished:
                # A handshake that never finished raises here: the end says it all.
                with contextlib.suppress(HarnessError):
                    wire.receive(b"")
            self.close_code, self.close_reason = wire.close_code_and_reason()
        return self._end(self._end_error())

    def _end(self, error: HarnessError) -> list[PendingRequest]:
        """Fail what is pending with ``error``; tell listeners the connection is gone."""
        failed = [p for p in self.connection.fail_all() if not p.abandoned]
        now = monotonic_ns()
        for pending in failed:
            self._unknown(pending, now)
            pending.done = True
            pending.outcome = error
        self._ended = True
        by_client = self.closing_ns is not None
        closed_ns = self.closing_ns if self.closing_ns is not None else monotonic_ns()
        for listener in self.listeners:
            listener.connection_closed(self, closed_ns, by_client)
        return failed

    def _end_error(self) -> HarnessError:
        return self.violation or ConnectionLost(
            describe_close(self.close_code, self.close_reason), self.close_code
        )


def raise_outcome(pending: PendingRequest) -> Any:
    """The caller's side of an outcome: return the value, or raise the exception."""
    outcome = pending.outcome
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_REQUEST_TIMEOUT",
    "ClientCore",
    "ClientListener",
    "ClientOptions",
    "FrameTrace",
    "UpdateCallback",
    "describe_close",
    "new_connection_id",
    "process_tag",
    "raise_outcome",
]
