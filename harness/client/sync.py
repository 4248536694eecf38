"""The blocking participant client, for threads and for gevent (locust's runtime).

    with connect("ws://127.0.0.1:8765/") as client:
        client.join("meeting-1", "alice", "Alice")
        client.set("BLOCK_CHAT", "true")

It drives websockets' sans-I/O protocol (:class:`harness.client.wire.Wire`,
shared with the asyncio client) over a plain socket with one reader thread per
connection. Under gevent's monkey-patching that thread is a greenlet and the
socket is cooperative, which is why this client avoids ``websockets.sync``
(whose receive thread and locking cost more per message): see
benchmarks/bench_sync_clients.py for the measured comparison.

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

from harness.client.base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    ClientBase,
    ClientListener,
    UpdateCallback,
    describe_close,
)
from harness.client.wire import Wire
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
    """Where the reader thread leaves a reply for the thread that asked.

    A lock taken at birth and released once is the cheapest one-shot signal
    both for threads and for gevent (threading.Event builds a Condition per wait).
    """

    __slots__ = ("done", "error", "reply")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.reply: Reply | None = None
        self.error: BaseException | None = None

    def wait(self, timeout: float) -> bool:
        return self.done.acquire(timeout=timeout)

    def settle(self, reply: Reply | None, error: BaseException | None = None) -> None:
        self.reply, self.error = reply, error
        if self.done.locked():
            self.done.release()


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
        self._wire: Wire | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reader: threading.Thread | None = None
        self._updates: SimpleQueue[Update | None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> StoreClient:
        self._wire = wire = Wire(
            self.url, compression=self.compression, max_frame_bytes=self.max_frame_bytes
        )
        try:
            sock = socket.create_connection(
                (wire.uri.host, wire.uri.port), timeout=self.connect_timeout
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if wire.uri.secure:
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=wire.uri.host)
            self._sock = sock
            first_messages = self._handshake()
        except (OSError, ConnectionLost) as exc:
            self._close_socket()
            raise ConnectionLost(f"could not connect to {self.url}: {exc}") from None
        sock.settimeout(None)
        self._reader = threading.Thread(
            target=self._read_frames, args=(first_messages,), daemon=True, name="store-reader"
        )
        self._reader.start()
        return self

    def _handshake(self) -> list[bytes]:
        """Send the opening handshake and wait for the response (bounded by the socket timeout).

        Returns messages that arrived in the same reads, for the reader to handle.
        """
        assert self._wire is not None and self._sock is not None
        self._sock.sendall(self._wire.opening_handshake())
        messages: list[bytes] = []
        while not self._wire.handshake_done:
            data = self._sock.recv(_RECEIVE_BYTES)
            messages += self._wire.receive(data)
            if not data and not self._wire.handshake_done:
                raise ConnectionResetError("the server closed during the handshake")
        return messages

    def close(self) -> None:
        # Mark the close as ours before it starts, as the asyncio client does, so the
        # recorded ``closed`` event says by_client and observers end at this instant.
        if self.closing_ns is None and not self.closed:
            self.closing_ns = monotonic_ns()
        if self._wire is None or self._closed.is_set():
            self._close_socket()
            return
        with self._lock:
            self._write(self._wire.close())
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
        return self if self._wire is not None else self.open()

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
            if self.violation is not None or self._closed.is_set() or self._wire is None:
                self.protocol.pending.remove(pending)
                self._on_unknown(pending)
                if self._wire is None:
                    raise HarnessUsageError("the client is not connected; call open() first")
                if self.violation is not None:
                    raise self.violation
                raise ConnectionLost(describe_close(self.close_code, self.close_reason))
            self._write(self._wire.send_text(pending.frame))
        if not waiter.wait(self.request_timeout):
            with self._lock:
                if waiter.reply is None and waiter.error is None:
                    pending.abandoned = True
                    self._on_unknown(pending)
                    raise RequestTimeout(
                        f"no reply to request {pending.id} within {self.request_timeout:g}s"
                    )
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return self._result(waiter.reply)

    def _write(self, data: bytes) -> None:
        """Write to the socket; a dead socket is noticed by the reader."""
        if data:
            assert self._sock is not None
            with contextlib.suppress(OSError):
                self._sock.sendall(data)

    def _read_frames(self, first_messages: list[bytes]) -> None:
        wire, sock = self._wire, self._sock
        assert wire is not None and sock is not None
        answered: list[tuple[PendingRequest, Reply]] = []
        data = b"-"
        try:
            with self._lock:
                self._handle_messages(first_messages, answered)
            self._wake(answered)
            while data and not wire.finished:
                try:
                    data = sock.recv(_RECEIVE_BYTES)
                except OSError:
                    data = b""
                with self._lock:  # one hold per read: the lock is not free under gevent
                    messages = wire.receive(data)
                    self._write(wire.outgoing())  # pongs and the closing handshake
                    self._handle_messages(messages, answered)
                self._wake(answered)
        except ProtocolViolation as exc:
            self.violation = exc
            with self._lock:
                self._write(wire.fail(1002, "protocol violation"))
        finally:
            self._finish()

    def _handle_messages(
        self, messages: list[bytes], answered: list[tuple[PendingRequest, Reply]]
    ) -> None:
        for message in messages:
            event = self._on_frame(message.decode())
            if isinstance(event, Update):
                if self._updates is not None:
                    self._updates.put(event)
            else:
                answered.append(event)

    @staticmethod
    def _wake(answered: list[tuple[PendingRequest, Reply]]) -> None:
        for pending, reply in answered:
            pending.waiter.settle(reply)
        answered.clear()

    def _finish(self) -> None:
        assert self._wire is not None
        with self._lock:
            self.close_code, self.close_reason = self._wire.close_code_and_reason()
            error = self.violation or ConnectionLost(
                describe_close(self.close_code, self.close_reason), self.close_code
            )
            for pending in self._lost():
                pending.waiter.settle(None, error)
            self._closed.set()
            if self._updates is not None:
                self._updates.put(None)
        self._close_socket()


def connect(url: str, **options: object) -> StoreClient:
    """A client for ``url``; use as ``with connect(url) as client``."""
    return StoreClient(url, **options)  # type: ignore[arg-type]
