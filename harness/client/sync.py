"""The blocking participant client, for threads and for gevent (locust's runtime).

    with connect("ws://127.0.0.1:8765/") as client:
        client.join("meeting-1", "alice", "Alice")
        client.set("BLOCK_CHAT", "true")

It drives websockets' sans-I/O ``ClientProtocol`` over a plain socket with one
reader thread per connection. Under gevent's monkey-patching that thread is a
greenlet and the socket is cooperative, which is why this client avoids
``websockets.sync`` (whose receive thread and locking cost more per message):
see benchmarks/bench_transport.py for the measured comparison.

Observer callbacks run on the reader thread; they must not make blocking
requests on the same client (the reply they would wait for is read by the very
thread they hold up).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from queue import Empty, SimpleQueue
from time import monotonic_ns
from types import TracebackType

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from harness.client.base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    ClientBase,
    ClientListener,
    UpdateCallback,
    describe_close,
)
from harness.errors import ConnectionLost, HarnessUsageError, ProtocolViolation, RequestTimeout
from harness.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    Joined,
    PendingRequest,
    Reply,
    Request,
    Update,
)

_RECEIVE_BYTES = 65536


class _Waiter:
    """Where the reader thread leaves a reply for the thread that asked."""

    __slots__ = ("error", "event", "reply")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: Reply | None = None
        self.error: BaseException | None = None


class StoreClient(ClientBase):
    """One participant connection, blocking API. Use :func:`connect` to open it."""

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
        super().__init__(url, request_timeout=request_timeout, listeners=listeners)
        self.connect_timeout = connect_timeout
        self.compression = compression
        self.max_frame_bytes = max_frame_bytes
        self.violation: ProtocolViolation | None = None
        self._sock: socket.socket | None = None
        self._ws: ClientProtocol | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reader: threading.Thread | None = None
        self._fragments: list[bytes] = []
        self._updates: SimpleQueue[Update | None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> StoreClient:
        try:
            uri = parse_uri(self.url)
        except InvalidURI as exc:
            raise HarnessUsageError(f"not a WebSocket URL: {self.url!r} ({exc})") from None
        extensions = [ClientPerMessageDeflateFactory()] if self.compression else None
        self._ws = ClientProtocol(uri, extensions=extensions, max_size=self.max_frame_bytes)
        try:
            sock = socket.create_connection((uri.host, uri.port), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if uri.secure:
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=uri.host)
            self._sock = sock
            pending_frames = self._handshake()
        except (OSError, InvalidHandshake) as exc:
            self._close_socket()
            raise ConnectionLost(f"could not connect to {self.url}: {exc}") from None
        sock.settimeout(None)
        self._reader = threading.Thread(
            target=self._read_frames, args=(pending_frames,), daemon=True, name="store-reader"
        )
        self._reader.start()
        return self

    def _handshake(self) -> list[Frame]:
        """Send the opening handshake and wait for the response (bounded by the socket timeout)."""
        assert self._ws is not None and self._sock is not None
        self._ws.send_request(self._ws.connect())
        self._sock.sendall(b"".join(self._ws.data_to_send()))
        while True:
            data = self._sock.recv(_RECEIVE_BYTES)
            if data:
                self._ws.receive_data(data)
            else:
                self._ws.receive_eof()
            events = self._ws.events_received()
            if self._ws.handshake_exc is not None:
                raise self._ws.handshake_exc
            if events and isinstance(events[0], Response):
                # Frames that arrived in the same read are handed to the reader.
                return [event for event in events[1:] if isinstance(event, Frame)]
            if not data:
                raise ConnectionResetError("the server closed during the handshake")

    def close(self) -> None:
        # Mark the close as ours before it starts, as the asyncio client does, so the
        # recorded ``closed`` event says by_client and observers end at this instant.
        if self.closing_ns is None and not self.closed:
            self.closing_ns = monotonic_ns()
        if self._ws is None or self._closed.is_set():
            self._close_socket()
            return
        with self._lock:
            if self._ws.state is State.OPEN:
                self._ws.send_close(1000)
                self._send_pending_bytes()
        if self._reader is not None:
            self._reader.join(2.0)
        self._close_socket()
        if self._reader is not None:
            self._reader.join(2.0)

    def _close_socket(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    def __enter__(self) -> StoreClient:
        return self if self._ws is not None else self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # --- the store API ---------------------------------------------------------------

    def join(
        self, session: str, participant_id: str, name: str = "", *, token: str | None = None
    ) -> Joined:
        return self._request(self._join_request(session, participant_id, name, token))

    def set(self, key: str, value: str | None) -> None:
        self._request(self._set_request(key, value))

    def delete(self, key: str) -> None:
        self.set(key, None)

    def get(self, key: str) -> str | None:
        return self._request(self._get_request(key))

    def observe(self, key: str, callback: UpdateCallback | None = None) -> str:
        """Observe ``key``; returns the observerId. ``callback(value, updated_by)``."""
        return self._request(self._observe_request(key, callback))

    def stop_observing(self, observer_id: str) -> None:
        self._request(self._stop_request(observer_id))

    def updates(self, timeout: float | None = None) -> Iterator[Update]:
        """Every update received from now on; ends when the connection closes or
        no update came within ``timeout`` seconds."""
        if self._updates is None:
            self._updates = SimpleQueue()
            if self.closed:
                self._updates.put(None)
        return self._iterate_updates(self._updates, timeout)

    @staticmethod
    def _iterate_updates(
        queue: SimpleQueue[Update | None], timeout: float | None
    ) -> Iterator[Update]:
        while True:
            try:
                update = queue.get(timeout=timeout)
            except Empty:
                return
            if update is None:
                return
            yield update

    # --- plumbing ----------------------------------------------------------------------

    def _request(self, request: Request) -> object:
        waiter = _Waiter()
        with self._lock:
            pending = self._begin(request, waiter)
            if self.violation is not None or self._closed.is_set() or self._ws is None:
                self.protocol.pending.remove(pending)
                self._on_unknown(pending)
                if self._ws is None:
                    raise HarnessUsageError("the client is not connected; call open() first")
                if self.violation is not None:
                    raise self.violation
                raise ConnectionLost(describe_close(self.close_code, self.close_reason))
            self._ws.send_text(pending.frame)
            self._send_pending_bytes()
        if not waiter.event.wait(self.request_timeout):
            with self._lock:
                if not waiter.event.is_set():
                    pending.abandoned = True
                    self._on_unknown(pending)
                    raise RequestTimeout(
                        f"no reply to request {pending.id} within {self.request_timeout:g}s"
                    )
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return self._result(waiter.reply)

    def _send_pending_bytes(self) -> None:
        """Write what the protocol has queued; a dead socket is noticed by the reader."""
        assert self._ws is not None and self._sock is not None
        data = self._ws.data_to_send()
        if data:
            with contextlib.suppress(OSError):
                self._sock.sendall(b"".join(data))

    def _read_frames(self, first_frames: list[Frame]) -> None:
        assert self._ws is not None and self._sock is not None
        answered: list[tuple[PendingRequest, Reply]] = []
        try:
            with self._lock:
                self._handle_frames(first_frames, answered)
            self._wake(answered)
            while True:
                try:
                    data = self._sock.recv(_RECEIVE_BYTES)
                except OSError:
                    data = b""
                with self._lock:
                    if data:
                        self._ws.receive_data(data)
                    else:
                        self._ws.receive_eof()
                    events = self._ws.events_received()
                    self._send_pending_bytes()  # pongs and the closing handshake
                    self._handle_frames([e for e in events if isinstance(e, Frame)], answered)
                self._wake(answered)
                if not data or self._ws.state is State.CLOSED:
                    break
        except ProtocolViolation as exc:
            self.violation = exc
            with self._lock:
                with contextlib.suppress(Exception):
                    self._ws.fail(1002, "protocol violation")
                self._send_pending_bytes()
        finally:
            self._finish()

    def _handle_frames(
        self, frames: list[Frame], answered: list[tuple[PendingRequest, Reply]]
    ) -> None:
        for frame in frames:
            if frame.opcode is Opcode.BINARY:
                raise ProtocolViolation("the server sent a binary frame (R1.1)", bytes(frame.data))
            if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.CONT:
                self._fragments.append(frame.data)
                if not frame.fin:
                    continue
                data = b"".join(self._fragments)
                self._fragments.clear()
                event = self._on_frame(data)
                if isinstance(event, Update):
                    if self._updates is not None:
                        self._updates.put(event)
                else:
                    answered.append(event)

    @staticmethod
    def _wake(answered: list[tuple[PendingRequest, Reply]]) -> None:
        for pending, reply in answered:
            waiter: _Waiter = pending.waiter
            waiter.reply = reply
            waiter.event.set()
        answered.clear()

    def _finish(self) -> None:
        assert self._ws is not None
        with self._lock:
            close = self._ws.close_rcvd or self._ws.close_sent
            self.close_code = close.code if close is not None else None
            self.close_reason = close.reason if close is not None else ""
            error = self.violation or ConnectionLost(
                describe_close(self.close_code, self.close_reason), self.close_code
            )
            for pending in self._lost():
                waiter: _Waiter = pending.waiter
                waiter.error = error
                waiter.event.set()
            self._closed.set()
            if self._updates is not None:
                self._updates.put(None)
        self._close_socket()


def connect(url: str, **options: object) -> StoreClient:
    """A client for ``url``; use as ``with connect(url) as client``."""
    return StoreClient(url, **options)  # type: ignore[arg-type]
