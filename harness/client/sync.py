"""The blocking participant client, for threads and for gevent (locust's runtime).

    with connect("ws://127.0.0.1:8765/") as client:
        client.join("meeting-1", "alice", "Alice")
        client.set("BLOCK_CHAT", "true")

It moves bytes between a plain socket and the sans-I/O core it shares with the
asyncio client (:class:`harness.client.core.ClientCore`), in one of two modes
chosen when the connection opens:

- Thread mode (plain threads, and ``wss://`` under gevent): one reader thread per
  connection reads the socket and hands each reply to the waiting caller through
  a lock. This client avoids ``websockets.sync``, whose receive thread and
  locking cost more per message: see benchmarks/bench_sync_clients.py.
- gevent mode (gevent has monkey-patched ``socket``): no reader greenlet. An io
  watcher on the socket runs a callback in gevent's hub, which reads what has
  arrived and switches straight to each waiting caller; writes go out without
  blocking, the rest when the socket is writable. A reply then costs one
  greenlet switch, as it does for a client that reads in its own greenlet, and
  without preemption the protocol state needs no lock. One hub timer per
  connection enforces every request's deadline.

Observer callbacks and listener hooks for replies and updates run on the
reader: the reader thread, or gevent's hub. They must not block: no requests
on any client, no sleeping, no socket I/O (in thread mode the reply they would
wait for is read by the very thread they hold up; in gevent mode the hub
refuses to block).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from queue import Empty, SimpleQueue
from time import monotonic_ns
from types import TracebackType
from typing import Any

from harness.client.core import (
    ClientCore,
    ClientListener,
    ClientOptions,
    FrameTrace,
    UpdateCallback,
    raise_outcome,
)
from harness.client.wire import tls_context
from harness.errors import ConnectionLost, ProtocolViolation
from harness.protocol import Error, Joined, PendingRequest, Request, Update

_RECEIVE_BYTES = 65536
_CLOSE_WAIT_S = 2.0


class _Waiter:
    """Where the reader thread wakes a caller once its request is ``done``.

    A lock taken at birth and released once is the cheapest one-shot signal
    between threads (threading.Event builds a Condition per wait). ``switch`` is
    named after gevent's ``Waiter.switch`` so both modes wake a caller alike.
    """

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()

    def wait(self, timeout: float) -> bool:
        return self.done.acquire(timeout=timeout)

    def switch(self, value: object = None) -> None:
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


class StoreClient(ClientCore):
    """One participant connection, blocking API. Use :func:`connect` to open it."""

    def __init__(self, url: str, options: ClientOptions | None = None, **changes: Any) -> None:
        super().__init__(url, options, **changes)
        self._sock: socket.socket | None = None
        self._lock: contextlib.AbstractContextManager[object] = threading.Lock()
        self._closed = threading.Event()
        self._reader: threading.Thread | None = None
        self._updates: SimpleQueue[Update | None] | None = None
        # gevent mode only: the hub, the OS socket under gevent's, its io watchers,
        # the bytes the socket has not taken yet and the connection's deadline timer.
        self._hub: Any = None
        self._green_waiter: Any = None
        self._raw: socket.socket | None = None
        self._readable: Any = None
        self._writable: Any = None
        self._unsent = bytearray()
        self._timer: Any = None

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> StoreClient:
        handshake = self.opening_handshake()
        uri = self.wire.uri
        options = self.options
        context = tls_context(options.ca_file, options.insecure) if uri.secure else None
        try:
            sock = socket.create_connection(
                (uri.host, uri.port), timeout=self.options.connect_timeout
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=uri.host)
            self._sock = sock
            first_answered = self._handshake(handshake)
        except (OSError, ConnectionLost) as exc:
            self._close_socket()
            raise ConnectionLost(f"could not connect to {self.url}: {exc}") from None
        sock.settimeout(None)
        hub = _gevent_hub(sock, uri.secure)
        if hub is not None:
            self._watch(hub, sock, first_answered)
            return self
        self._reader = threading.Thread(
            target=self._read_frames, args=(first_answered,), daemon=True, name="store-reader"
        )
        self._reader.start()
        return self

    def _handshake(self, request: bytes) -> list[PendingRequest]:
        """Send the opening handshake and wait for the response (bounded by the socket timeout).

        Frames that arrived in the same reads are handled already (no request is out
        yet, so none is answered); a violation among them is the reader's to act on.
        """
        assert self._sock is not None
        self._sock.sendall(request)
        answered: list[PendingRequest] = []
        while not self.handshake_done:
            data = self._sock.recv(_RECEIVE_BYTES)
            answered += self.receive_data(data)
            if not data and not self.handshake_done:
                raise ConnectionResetError("the server closed during the handshake")
        return answered

    def close(self) -> None:
        # Mark the close as ours before it starts, so the recorded ``closed`` event
        # says by_client and observers end at this instant.
        with self._lock:
            self.begin_close()
            if self._sock is None or self._closed.is_set():
                ended = True
            else:
                ended = False
                self._write(self.data_to_send())
        if ended:
            self._close_socket()
            return
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

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._closed.wait(timeout)

    def _close_socket(self) -> None:
        # gevent mode: libev must stop watching the descriptor before it is closed.
        if self._readable is not None:
            self._readable.close()
            self._writable.close()
            self._unsent.clear()
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    def __enter__(self) -> StoreClient:
        return self if self._sock is not None else self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the store API ---------------------------------------------------------------

    def join(
        self, session: str, participant_id: str, name: str = "", *, token: str | None = None
    ) -> Joined:
        return self._request(self._join_request(session, participant_id, name, token))

    def set(self, key: str, value: str | None) -> None:
        self._request(self._set_request(key, value))

    def delete(self, key: str) -> None:
        self._request(self._set_request(key, None))

    def get(self, key: str) -> str | None:
        return self._request(self._get_request(key))

    def observe(self, key: str, callback: UpdateCallback | None = None) -> str:
        """Observe ``key``; returns the observerId. ``callback(value, updated_by)``."""
        return self._request(self._observe_request(key), callback)

    def stop_observing(self, observer_id: str) -> None:
        self._request(self._stop_request(observer_id))

    def updates(self, timeout: float | None = None) -> Iterator[Update]:
        """Every update received from now on; ends when the connection closes or
        no update came within ``timeout`` seconds."""
        if self._updates is None:
            self._updates = SimpleQueue()
            self.update_sink = self._updates.put
            if self.closed:
                self._updates.put(None)
        return self._iterate_updates(self._updates, timeout)

    def send_raw(
        self, frame: str | bytes, *, reply_id: int | None = None, binary: bool = False
    ) -> Error:
        """Send a hand-made (usually malformed) frame and return the error it earns.

        For conformance tests of bad input; a success reply is a ProtocolViolation.
        """
        return self._request(None, None, (frame, reply_id, binary))

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

    def _request(
        self,
        request: Request | None,
        callback: UpdateCallback | None = None,
        raw: tuple[str | bytes, int | None, bool] | None = None,
    ) -> Any:
        if self._hub is not None:
            # Between two switches a greenlet runs alone: no lock. The hub's read
            # callback, or the connection's timer, switches straight back here.
            waiter = self._green_waiter(self._hub)
            pending = self._start(request, callback, raw, waiter)
            if self._timer is None:
                self._arm_timer()
            waiter.get()
            return raise_outcome(pending)
        waiter = _Waiter()
        with self._lock:
            pending = self._start(request, callback, raw, waiter)
        if not waiter.wait(self.options.request_timeout):
            with self._lock:
                if not pending.done:
                    self.abandon(pending)
        return raise_outcome(pending)

    def _start(
        self,
        request: Request | None,
        callback: UpdateCallback | None,
        raw: tuple[str | bytes, int | None, bool] | None,
        waiter: object,
    ) -> PendingRequest:
        """Register the request with the core and write it. Thread mode holds the lock."""
        if request is not None:
            pending = self.start(request, waiter, callback)
        else:
            assert raw is not None
            frame, reply_id, binary = raw
            pending = self.start_raw(frame, reply_id, waiter, binary=binary)
        self._write(self.data_to_send())
        return pending

    def _arm_timer(self) -> None:
        """gevent mode: one hub timer, at the oldest awaited request's deadline."""
        deadline = self.next_deadline_ns()
        if deadline is not None and not self.closed:
            self._timer = self._hub.loop.timer(max(0.0, (deadline - monotonic_ns()) / 1e9))
            self._timer.start(self._on_deadline)

    def _on_deadline(self) -> None:
        """gevent mode, in the hub."""
        self._timer.close()
        self._timer = None
        self._wake(self.expire(monotonic_ns()))
        self._arm_timer()

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

    def _read_frames(self, answered: list[PendingRequest]) -> None:
        """Thread mode: the reader thread."""
        sock = self._sock
        assert sock is not None
        try:
            reading = not self.should_close
            while reading:
                self._wake(answered)
                try:
                    data = sock.recv(_RECEIVE_BYTES)
                except OSError:
                    data = b""
                with self._lock:  # one hold per read: the lock is not free
                    reading = self._received(data, answered)
        finally:
            self._finish(answered)

    def _watch(self, hub: Any, sock: socket.socket, answered: list[PendingRequest]) -> None:
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
        if self.should_close:  # a violation came with the handshake's bytes
            self._finish(answered)

    def _on_readable(self) -> None:
        """gevent mode, in the hub: handle everything readable now, then wake callers."""
        raw = self._raw
        assert raw is not None
        answered: list[PendingRequest] = []
        drained = False  # anything else (end of stream, violation, a bug) ends the connection
        try:
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
        finally:
            if drained:
                self._wake(answered)
            else:
                self._finish(answered)

    def _received(self, data: bytes, answered: list[PendingRequest]) -> bool:
        """Handle bytes read (b"" at the end of the stream); False once the connection ends.

        Thread mode holds the lock.
        """
        answered += self.receive_data(data)
        self._write(self.data_to_send())  # pongs, the closing handshake, a 1002 close
        return bool(data) and not self.should_close

    @staticmethod
    def _wake(answered: list[PendingRequest]) -> None:
        for pending in answered:
            pending.waiter.switch(None)
        answered.clear()

    def _finish(self, answered: list[PendingRequest]) -> None:
        """The connection ended: fail what is pending, end updates, close the socket.

        Callers are woken only once the client reads as closed, so none of them
        (in gevent mode they run at once) writes to a finished connection.
        """
        with self._lock:
            lost = self.connection_lost()
            self._closed.set()
            if self._updates is not None:
                self._updates.put(None)
        self._close_socket()
        self._wake(answered)
        self._wake(lost)


def connect(url: str, options: ClientOptions | None = None, **changes: Any) -> StoreClient:
    """A client for ``url``; use as ``with connect(url) as client``."""
    return StoreClient(url, options, **changes)


__all__ = [
    "ClientListener",
    "ClientOptions",
    "FrameTrace",
    "ProtocolViolation",
    "StoreClient",
    "connect",
]
