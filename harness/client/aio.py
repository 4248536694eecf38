"""The asyncio participant client, on websockets' sans-I/O protocol.

    async with connect("ws://127.0.0.1:8765/") as client:
        await client.join("meeting-1", "alice", "Alice")
        observer_id = await client.observe("BLOCK_CHAT", lambda value, by: print(value, by.id))
        await client.set("BLOCK_CHAT", "true")
        assert await client.get("BLOCK_CHAT") == "true"

Requests may be issued concurrently (pipelining): each request method frames
its request when called and returns the future its reply resolves, so
``asyncio.gather(*(client.set(k, v) for k in keys))`` costs no Task per request.
Replies are matched in request order by the core
(:class:`harness.client.core.ClientCore`), which holds all the connection's
state. This module only moves bytes: frames are handled in the transport's
``data_received`` callback, so a reply wakes the waiting caller directly, with no
reader task in between. Requests started in one turn of the loop leave in a few
writes (:data:`WRITE_EVERY` frames each), and one timer per connection enforces
every request's deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Coroutine
from time import monotonic_ns
from types import TracebackType
from typing import Any

from harness.client.core import (
    ClientCore,
    ClientListener,
    ClientOptions,
    FrameTrace,
    UpdateCallback,
)
from harness.client.wire import tls_context
from harness.errors import ConnectionLost, HarnessError
from harness.protocol import Error, Joined, PendingRequest, Request, Update

#: Seconds to wait for the server's half of the closing handshake.
CLOSE_TIMEOUT = 2.0
#: Frames buffered in one loop turn before they are written anyway. A pipeline of
#: hundreds then reaches the server in chunks it can start on while the rest are
#: framed, instead of one write at the end of the turn that leaves it idle until then.
WRITE_EVERY = 32


class StoreClient(ClientCore):
    """One participant connection. Use :func:`connect` to open it."""

    def __init__(self, url: str, options: ClientOptions | None = None, **changes: Any) -> None:
        super().__init__(url, options, **changes)
        self._transport: asyncio.Transport | None = None
        self._handshake: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None  # set while writing is paused
        self._updates: asyncio.Queue[Update | None] | None = None
        self._closed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._flush_due = False
        self._unwritten = 0  # frames framed since the last write, in this loop turn

    async def open(self) -> StoreClient:
        handshake = self.opening_handshake()
        uri = self.wire.uri
        options = self.options
        tls = tls_context(options.ca_file, options.insecure) if uri.secure else None
        loop = asyncio.get_running_loop()
        self._handshake = loop.create_future()
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                self._transport, _ = await loop.create_connection(
                    lambda: _Callbacks(self), uri.host, uri.port, ssl=tls
                )
                self._transport.write(handshake)
                await self._handshake
        except (OSError, TimeoutError, HarnessError) as exc:
            if self._transport is not None:
                self._transport.abort()
            reason = str(exc) or type(exc).__name__
            raise ConnectionLost(f"could not connect to {self.url}: {reason}") from None
        return self

    async def __aenter__(self) -> StoreClient:
        return self if self._transport is not None else await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self.begin_close()
        if self._transport is None or self.closed:
            return
        self._transport.write(self.data_to_send())
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._closed.wait()
        except TimeoutError:
            self._transport.abort()  # the server never completed the closing handshake
            await self._closed.wait()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- the store API ---------------------------------------------------------
    #
    # Plain functions that frame the request at once and return the future its reply
    # resolves: ``await client.set(k, v)`` reads as a coroutine call, while a pipeline
    # (``gather(*(client.set(...) ...))``) costs no coroutine frame or Task per request.

    def join(
        self, session: str, participant_id: str, name: str = "", *, token: str | None = None
    ) -> Awaitable[Joined]:
        return self._request(self._join_request(session, participant_id, name, token))

    def set(self, key: str, value: str | None) -> Awaitable[None]:
        return self._request(self._set_request(key, value))

    def delete(self, key: str) -> Awaitable[None]:
        return self._request(self._set_request(key, None))

    def get(self, key: str) -> Awaitable[str | None]:
        return self._request(self._get_request(key))

    def observe(self, key: str, callback: UpdateCallback | None = None) -> Awaitable[str]:
        """Observe ``key``; resolves to the observerId. ``callback(value, updated_by)``."""
        return self._request(self._observe_request(key), callback)

    def stop_observing(self, observer_id: str) -> Awaitable[None]:
        return self._request(self._stop_request(observer_id))

    def updates(self) -> AsyncIterator[Update]:
        """Every update received from now on, for all observers of this connection."""
        if self._updates is None:
            self._updates = asyncio.Queue()
            self.update_sink = self._updates.put_nowait
            if self.closed:
                self._updates.put_nowait(None)
        return self._iterate_updates(self._updates)

    def send_raw(
        self, frame: str | bytes, *, reply_id: int | None = None, binary: bool = False
    ) -> Awaitable[Error]:
        """Send a hand-made (usually malformed) frame; resolves to the error it earns.

        For conformance tests of bad input; a success reply is a ProtocolViolation.
        """
        waiter = asyncio.get_running_loop().create_future()
        try:
            self.start_raw(frame, reply_id, waiter, binary=binary)
        except HarnessError as exc:
            return _failed(waiter, exc)
        return self._sent(waiter)

    # --- plumbing ----------------------------------------------------------------

    def _request(
        self, request: Request, callback: UpdateCallback | None = None
    ) -> asyncio.Future[Any] | Coroutine[Any, Any, Any]:
        waiter = asyncio.get_running_loop().create_future()
        try:
            self.start(request, waiter, callback)
        except HarnessError as exc:  # an unusable connection: the await raises it
            return _failed(waiter, exc)
        return self._sent(waiter)

    def _sent(self, waiter: asyncio.Future[Any]) -> asyncio.Future[Any] | Coroutine[Any, Any, Any]:
        """Write (or schedule) what was framed; the awaitable the caller gets."""
        # The first request of a loop turn is written at once (a lone round trip waits
        # for nothing); the others follow in writes of WRITE_EVERY frames, and the rest
        # at the end of the turn.
        transport = self._transport
        assert transport is not None
        if not self._flush_due:
            self._flush_due = True
            self._unwritten = 0
            transport.write(self.data_to_send())
            asyncio.get_running_loop().call_soon(self._flush)
        elif (unwritten := self._unwritten + 1) < WRITE_EVERY:
            self._unwritten = unwritten
        else:
            self._unwritten = 0
            transport.write(self.data_to_send())
        if self._timer is None:
            self._arm_timer()
        if self._writable is not None:
            return self._after_writable(waiter)  # the server reads slower than we write
        return waiter

    async def _after_writable(self, waiter: asyncio.Future[Any]) -> Any:
        if self._writable is not None:
            await self._writable
        return await waiter

    def _flush(self) -> None:
        self._flush_due = False
        data = self.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)

    def _arm_timer(self) -> None:
        deadline = self.next_deadline_ns()
        if deadline is not None and not self.closed:
            delay = (deadline - monotonic_ns()) / 1e9
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        self._wake(self.expire(monotonic_ns()))
        self._arm_timer()

    @staticmethod
    def _wake(done: list[PendingRequest]) -> None:
        for pending in done:
            waiter = pending.waiter
            if waiter.done():
                continue  # its caller was cancelled
            outcome = pending.outcome
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
                waiter.exception()  # mark retrieved: nobody may be waiting any more
            else:
                waiter.set_result(outcome)

    # --- transport callbacks ------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        transport, handshake = self._transport, self._handshake
        assert transport is not None and handshake is not None
        try:
            answered = self.receive_data(data)
        except ConnectionLost as exc:  # the opening handshake failed
            if not handshake.done():
                handshake.set_exception(exc)
            return
        if not handshake.done() and self.handshake_done:
            handshake.set_result(None)
        outgoing = self.data_to_send()  # pongs, the closing handshake, a 1002 close
        if outgoing:
            transport.write(outgoing)
        self._wake(answered)
        if self.should_close:
            transport.close()

    def _connection_lost(self) -> None:
        failed = self.connection_lost()
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(self._end_error())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake(failed)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._closed.set()
        if self._updates is not None:
            self._updates.put_nowait(None)

    def _pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def _resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    @staticmethod
    async def _iterate_updates(queue: asyncio.Queue[Update | None]) -> AsyncIterator[Update]:
        while (update := await queue.get()) is not None:
            yield update


def _failed(waiter: asyncio.Future[Any], exc: BaseException) -> asyncio.Future[Any]:
    waiter.set_exception(exc)
    return waiter


class _Callbacks(asyncio.Protocol):
    """asyncio's transport callbacks, handed straight to the client."""

    def __init__(self, client: StoreClient) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client._data_received(data)

    def eof_received(self) -> bool:
        self.client._data_received(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._connection_lost()

    def pause_writing(self) -> None:
        self.client._pause_writing()

    def resume_writing(self) -> None:
        self.client._resume_writing()


def connect(url: str, options: ClientOptions | None = None, **changes: Any) -> StoreClient:
    """A client for ``url``; use as ``async with connect(url) as client``."""
    return StoreClient(url, options, **changes)


__all__ = ["WRITE_EVERY", "ClientListener", "ClientOptions", "FrameTrace", "StoreClient", "connect"]
