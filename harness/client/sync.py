"""The blocking participant client, for threads and for gevent (locust's runtime).

    with connect("ws://127.0.0.1:8765/") as client:
        client.join("meeting-1", "alice", "Alice")
        client.set("BLOCK_CHAT", "true")

It drives websockets' sans-I/O protocol (:class:`harness.client.wire.Wire`,
shared with the asyncio client) over a plain socket, in one of two modes chosen
when the connection opens:

- Thread mode (plain threads, and ``wss://`` under gevent): one reader thread per
  connection reads the socket and hands each reply to the waiting caller through
  a lock. This client avoids ``websockets.sync``, whose receive thread and
  locking cost more per message: see benchmarks/bench_sync_clients.py.
- gevent mode (gevent has monkey-patched ``socket``): no reader greenlet. An io
  watcher on the socket runs a callback in gevent's hub, which reads what has
  arrived and switches straight to each waiting caller; writes go out without
  blocking, the rest when the socket is writable. A reply then costs one
  greenlet switch, as it does for a client that reads in its own greenlet, and
  without preemption the protocol state needs no lock.

Observer callbacks and listener hooks for replies and updates run on the
reader: the reader thread, or gevent's hub. They must not block: no requests
on any client, no sleeping, no socket I/O (in thread mode the reply they would
wait for is read by the very thread they hold up; in gevent mode the hub
refuses to block).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
from collections.abc import Iterator, Sequence
from queue import Empty, SimpleQueue
from time import monotonic_ns
from types import TracebackType
from typing import Any

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
_CLOSE_WAIT_S = 2.0

#: What a gevent-mode request's timer hands its waiter: no reply came in time.
_TIMED_OUT = object()


class _Waiter:
    """Where the reader thread leaves a reply (or the error that ends the wait).

    A lock taken at birth and released once is the cheapest one-shot signal
    between threads (threading.Event builds a Condition per wait). ``switch`` is
    named after gevent's ``Waiter.switch`` so both modes wake a caller alike.
    """

    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.value: Reply | BaseException | None = None

    def wait(self, timeout: float) -> bool:
        return self.done.acquire(timeout=timeout)

    def switch(self, value: Reply | BaseException) -> None:
        self.value = value
        if self.done.locked():
            self.done.release()


def _gevent_hub(sock: socket.socket, secure: bool) -> Any:
    """gevent's hub when ``sock`` is a monkey-patched gevent socket we can watch; else None.

    Checked without importing gevent: a process that never imported it runs threads.
    TLS keeps the thread mode, as an SSL socket's raw reads are not its plaintext.
    """
    monkey = sys.modules.get("gevent.monkey")
    if secure or monkey is None or not monkey.is_module_patched("socket"):
        return None
    if not hasattr(sock, "_sock"):  # gevent's cooperative socket wraps the OS socket there
        return None
    from gevent import get_hub

    return get_hub()


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
        super().__init__(
            url,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            listeners=listeners,
            compression=compression,
            max_frame_bytes=max_frame_bytes,
        )
        self._sock: socket.socket | None = None
        self._wire: Wire | None = None
        self._lock: contextlib.AbstractContextManager[object] = threading.Lock()
        self._closed = threading.Event()
        self._reader: threading.Thread | None = None
        self._updates: SimpleQueue[Update | None] | None = None
        # gevent mode only: the hub, the OS socket under gevent's, its io watchers
        # and the bytes the socket has not taken yet.
        self._hub: Any = None
        self._green_waiter: Any = None
        self._raw: socket.socket | None = None
        self._readable: Any = None
        self._writable: Any = None
        self._unsent = bytearray()

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
        hub = _gevent_hub(sock, wire.uri.secure)
        if hub is not None:
            self._watch(hub, sock, first_messages)
            return self
        self._reader = threading.Thread(
            target=self._read_frames, args=(first_messages,), daemon=True, name="store-reader"
        )
        self._reader.start()
        return self

    def _handshake(self) -> list[str]:
        """Send the opening handshake and wait for the response (bounded by the socket timeout).

        Returns messages that arrived in the same reads, for the reader to handle.
        """
        assert self._wire is not None and self._sock is not None
        self._sock.sendall(self._wire.opening_handshake())
        messages: list[str] = []
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
        if self._hub is not None:
            # The hub reads the server's close frame and finishes; if the server does
            # not answer, a shut-down socket reads as end of stream, which finishes too.
            if not self._closed.wait(_CLOSE_WAIT_S) and self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
                self._closed.wait(_CLOSE_WAIT_S)
        elif self._reader is not None:
            self._reader.join(_CLOSE_WAIT_S)
        self._close_socket()
        if self._reader is not None:
            self._reader.join(_CLOSE_WAIT_S)

    def _close_socket(self) -> None:
        # gevent mode: libev must stop watching the descriptor before it is closed.
        if self._readable is not None:
            self._readable.close()
            self._writable.close()
            self._unsent.clear()
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

    # --- requests ----------------------------------------------------------------------

    def _request(self, request: Request) -> object:
        if self._hub is not None:
            return self._request_green(request)
        waiter = _Waiter()
        with self._lock:
            pending = self._send(request, waiter)
        if not waiter.wait(self.request_timeout):
            with self._lock:
                if waiter.value is None:
                    self._timed_out(pending)
        return self._outcome(waiter.value)

    def _request_green(self, request: Request) -> object:
        # Between two switches a greenlet runs alone: no lock. The waiter is gevent's:
        # the hub's read callback switches straight here with the reply, or the
        # timer with _TIMED_OUT, whichever comes first.
        hub = self._hub
        waiter = self._green_waiter(hub)
        pending = self._send(request, waiter)
        timer = hub.loop.timer(self.request_timeout)
        timer.start(waiter.switch, _TIMED_OUT)
        try:
            value = waiter.get()
        finally:
            timer.close()
        if value is _TIMED_OUT:
            self._timed_out(pending)
        return self._outcome(value)

    def _send(self, request: Request, waiter: object) -> PendingRequest:
        """Register ``request`` and write it, or fail it at once on an unusable connection.

        Thread mode holds the lock.
        """
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
        return pending

    def _timed_out(self, pending: PendingRequest) -> None:
        # Reported once, as unknown: a reply arriving later is not reported again.
        pending.abandoned = True
        self._on_unknown(pending)
        raise RequestTimeout(f"no reply to request {pending.id} within {self.request_timeout:g}s")

    def _outcome(self, value: object) -> object:
        if isinstance(value, BaseException):
            raise value
        assert value is not None
        return self._result(value)  # type: ignore[arg-type]

    # --- bytes out ---------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write to the socket; a dead socket is noticed by the reader.

        Thread mode holds the lock. gevent mode never blocks (the hub writes too:
        pongs, the closing handshake): what the socket does not take at once waits
        in ``_unsent``, behind which later frames queue so none interleave.
        """
        if not data:
            return
        if self._hub is None:
            assert self._sock is not None
            with contextlib.suppress(OSError):
                self._sock.sendall(data)
            return
        if self._unsent:
            self._unsent += data
            return
        assert self._raw is not None
        try:
            sent = self._raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return
        if sent < len(data):
            self._unsent += memoryview(data)[sent:]
            self._writable.start(self._on_writable)

    def _on_writable(self) -> None:
        """gevent mode, in the hub: the socket takes more of ``_unsent``."""
        assert self._raw is not None
        try:
            sent = self._raw.send(self._unsent)
        except BlockingIOError:
            return
        except OSError:
            sent = len(self._unsent)  # dead: drop it, the read side ends the connection
        del self._unsent[:sent]
        if not self._unsent:
            self._writable.stop()

    # --- bytes in ----------------------------------------------------------------------

    def _read_frames(self, first_messages: list[str]) -> None:
        """Thread mode: the reader thread."""
        sock = self._sock
        assert sock is not None
        answered: list[tuple[PendingRequest, Reply]] = []
        try:
            with self._lock:
                self._handle_messages(first_messages, answered)
            reading = True
            while reading:
                self._wake(answered)
                try:
                    data = sock.recv(_RECEIVE_BYTES)
                except OSError:
                    data = b""
                with self._lock:  # one hold per read: the lock is not free
                    reading = self._received(data, answered)
        except ProtocolViolation as exc:
            with self._lock:
                self._violated(exc)
        finally:
            self._finish(answered)

    def _watch(self, hub: Any, sock: socket.socket, first_messages: list[str]) -> None:
        """gevent mode: read in the hub whenever the socket has bytes."""
        from gevent.hub import Waiter

        self._hub = hub
        self._green_waiter = Waiter
        self._raw = sock._sock  # type: ignore[attr-defined]  # non-blocking, under gevent's
        self._lock = contextlib.nullcontext()  # no preemption: nothing to exclude
        fd = sock.fileno()
        self._readable = hub.loop.io(fd, 1)
        self._writable = hub.loop.io(fd, 2)
        self._readable.start(self._on_readable)
        if first_messages or (self._wire is not None and self._wire.violation is not None):
            # No request is out yet, so nobody is woken outside the hub.
            self._on_readable(first_messages)

    def _on_readable(self, first_messages: Sequence[str] = ()) -> None:
        """gevent mode, in the hub: handle everything readable now, then wake callers."""
        raw = self._raw
        assert raw is not None
        answered: list[tuple[PendingRequest, Reply]] = []
        drained = False  # anything else (end of stream, violation, a bug) ends the connection
        try:
            self._handle_messages(first_messages, answered)
            while True:
                try:
                    data = raw.recv(_RECEIVE_BYTES)
                except BlockingIOError:
                    drained = True  # all read: the watcher calls again when more comes
                    break
                except OSError:
                    data = b""
                if not self._received(data, answered):
                    break
        except ProtocolViolation as exc:
            self._violated(exc)
        finally:
            if drained:
                self._wake(answered)
            else:
                self._finish(answered)

    def _received(self, data: bytes, answered: list[tuple[PendingRequest, Reply]]) -> bool:
        """Handle bytes read (b"" at the end of the stream); False once the connection ended.

        Raises ProtocolViolation. Thread mode holds the lock.
        """
        wire = self._wire
        assert wire is not None
        messages = wire.receive(data)
        self._write(wire.outgoing())  # pongs and the closing handshake
        self._handle_messages(messages, answered)
        return bool(data) and not wire.finished

    def _handle_messages(
        self, messages: Sequence[str], answered: list[tuple[PendingRequest, Reply]]
    ) -> None:
        for message in messages:
            event = self._on_frame(message)
            if isinstance(event, Update):
                if self._updates is not None:
                    self._updates.put(event)
            else:
                answered.append(event)
        assert self._wire is not None
        if self._wire.violation is not None:  # a frame that broke R1.1, after these
            raise self._wire.violation

    def _violated(self, violation: ProtocolViolation) -> None:
        """The server broke the spec: close with 1002; pending requests fail with it."""
        assert self._wire is not None
        self._violation(violation)
        self._write(self._wire.fail(1002, "protocol violation"))

    @staticmethod
    def _wake(answered: list[tuple[PendingRequest, Reply]]) -> None:
        for pending, reply in answered:
            pending.waiter.switch(reply)
        answered.clear()

    def _finish(self, answered: list[tuple[PendingRequest, Reply]]) -> None:
        """The connection ended: fail what is pending, end updates, close the socket.

        Callers are woken only once the client reads as closed, so none of them
        (in gevent mode they run at once) writes to a finished connection.
        """
        assert self._wire is not None
        with self._lock:
            self.close_code, self.close_reason = self._wire.close_code_and_reason()
            error = self.violation or ConnectionLost(
                describe_close(self.close_code, self.close_reason), self.close_code
            )
            lost = self._lost()
            self._closed.set()
            if self._updates is not None:
                self._updates.put(None)
        self._close_socket()
        self._wake(answered)
        for pending in lost:
            pending.waiter.switch(error)


def connect(url: str, **options: object) -> StoreClient:
    """A client for ``url``; use as ``with connect(url) as client``."""
    return StoreClient(url, **options)  # type: ignore[arg-type]
