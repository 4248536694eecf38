"""The asyncio participant client, on websockets' sans-I/O protocol.

    async with connect("ws://127.0.0.1:8765/") as client:
        await client.join("meeting-1", "alice", "Alice")
        observer_id = await client.observe("BLOCK_CHAT", lambda value, by: print(value, by.id))
        await client.set("BLOCK_CHAT", "true")
        assert await client.get("BLOCK_CHAT") == "true"

Requests may be issued concurrently from several tasks (pipelining); replies
are matched in request order by the protocol core. Frames are handled in the
transport's ``data_received`` callback, so a reply wakes the waiting caller
directly, with no reader task in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
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
from harness.errors import (
    ConnectionLost,
    HarnessError,
    HarnessUsageError,
    ProtocolViolation,
    RequestTimeout,
)
from harness.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    Error,
    Joined,
    PendingRequest,
    Reply,
    Request,
    Update,
)

FrameTrace = Callable[[str, str | bytes], None]
#: Seconds to wait for the server's half of the closing handshake.
CLOSE_TIMEOUT = 2.0


class StoreClient(ClientBase):
    """One participant connection. Use :func:`connect` to open it."""

    def __init__(
        self,
        url: str,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        listeners: Sequence[ClientListener] = (),
        compression: bool = False,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        trace: FrameTrace | None = None,
    ) -> None:
        super().__init__(
            url,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            listeners=listeners,
            compression=compression,
            max_frame_bytes=max_frame_bytes,
        )
        self.trace = trace
        self._wire: Wire | None = None
        self._transport: asyncio.Transport | None = None
        self._handshake: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None  # set while writing is paused
        self._updates: asyncio.Queue[Update | None] | None = None
        self._closed = asyncio.Event()

    async def open(self) -> StoreClient:
        self._wire = wire = Wire(
            self.url, compression=self.compression, max_frame_bytes=self.max_frame_bytes
        )
        loop = asyncio.get_running_loop()
        self._handshake = loop.create_future()
        try:
            async with asyncio.timeout(self.connect_timeout):
                self._transport, _ = await loop.create_connection(
                    lambda: _Callbacks(self),
                    wire.uri.host,
                    wire.uri.port,
                    ssl=True if wire.uri.secure else None,
                )
                self._transport.write(wire.opening_handshake())
                await self._handshake
        except (OSError, TimeoutError, HarnessError) as exc:
            if self._transport is not None:
                self._transport.abort()
            reason = str(exc) or type(exc).__name__
            raise ConnectionLost(f"could not connect to {self.url}: {reason}") from None
        return self

    async def __aenter__(self) -> StoreClient:
        return self if self._wire is not None else await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self.closing_ns is None and not self.closed:
            self.closing_ns = monotonic_ns()
        if self._transport is None or self._wire is None or self.closed:
            return
        self._transport.write(self._wire.close())
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._closed.wait()
        except TimeoutError:
            self._transport.abort()  # the server never completed the closing handshake
            await self._closed.wait()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- the store API ---------------------------------------------------------

    async def join(
        self, session: str, participant_id: str, name: str = "", *, token: str | None = None
    ) -> Joined:
        return await self._request(self._join_request(session, participant_id, name, token))

    async def set(self, key: str, value: str | None) -> None:
        await self._request(self._set_request(key, value))

    async def delete(self, key: str) -> None:
        await self.set(key, None)

    async def get(self, key: str) -> str | None:
        return await self._request(self._get_request(key))

    async def observe(self, key: str, callback: UpdateCallback | None = None) -> str:
        """Observe ``key``; returns the observerId. ``callback(value, updated_by)``."""
        return await self._request(self._observe_request(key, callback))

    async def stop_observing(self, observer_id: str) -> None:
        await self._request(self._stop_request(observer_id))

    def updates(self) -> AsyncIterator[Update]:
        """Every update received from now on, for all observers of this connection."""
        if self._updates is None:
            self._updates = asyncio.Queue()
            if self.closed:
                self._updates.put_nowait(None)
        return self._iterate_updates(self._updates)

    async def send_raw(
        self, frame: str | bytes, *, reply_id: int | None = None, binary: bool = False
    ) -> Error:
        """Send a hand-made (usually malformed) frame and return the error it earns.

        For conformance tests of bad input; a success reply is a ProtocolViolation.
        """
        waiter = asyncio.get_running_loop().create_future()
        pending = self._begin_raw(frame, reply_id, waiter)
        data = frame.encode() if isinstance(frame, str) else frame
        return await self._send_and_wait(pending, data, text=not binary)

    # --- plumbing ----------------------------------------------------------------

    async def _request(self, request: Request) -> object:
        waiter = asyncio.get_running_loop().create_future()
        pending = self._begin(request, waiter)
        reply = await self._send_and_wait(pending, pending.frame, text=True)
        return self._result(reply)

    async def _send_and_wait(self, pending: PendingRequest, data: bytes, *, text: bool) -> Reply:
        self._check_usable(pending)
        assert self._wire is not None and self._transport is not None
        if self.trace is not None:
            self.trace("sent", data)
        self._transport.write(self._wire.send_text(data) if text else self._wire.send_binary(data))
        # One timer on the loop rather than asyncio.timeout() around a shielded
        # future: fewer event-loop turns per request, which round trips feel.
        timer = asyncio.get_running_loop().call_later(self.request_timeout, self._expire, pending)
        try:
            if self._writable is not None:
                await self._writable  # the server reads slower than we write
            return await pending.waiter
        finally:
            timer.cancel()

    def _expire(self, pending: PendingRequest) -> None:
        if pending.waiter.done():
            return
        pending.abandoned = True
        self._on_unknown(pending)
        pending.waiter.set_exception(
            RequestTimeout(f"no reply to request {pending.id} within {self.request_timeout:g}s")
        )

    def _check_usable(self, pending: PendingRequest) -> None:
        if self._wire is None:
            raise HarnessUsageError("the client is not connected; use 'async with connect(url)'")
        if self.violation is not None or self._closed.is_set():
            self.protocol.pending.remove(pending)
            self._on_unknown(pending)
            if self.violation is not None:
                raise self.violation
            raise ConnectionLost(
                describe_close(self.close_code, self.close_reason), self.close_code
            )

    # --- transport callbacks ------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        wire, transport = self._wire, self._transport
        assert wire is not None and transport is not None
        try:
            messages = wire.receive(data)
        except ConnectionLost as exc:  # the opening handshake failed
            if self._handshake is not None and not self._handshake.done():
                self._handshake.set_exception(exc)
            return
        if wire.handshake_done and self._handshake is not None and not self._handshake.done():
            self._handshake.set_result(None)
        outgoing = wire.outgoing()  # pongs, the closing handshake
        if outgoing:
            transport.write(outgoing)
        for text in messages:
            if self.trace is not None:
                self.trace("received", text)
            try:
                event = self._on_frame(text)
            except ProtocolViolation as exc:
                self._violated(exc)
                return
            if isinstance(event, Update):
                if self._updates is not None:
                    self._updates.put_nowait(event)
            elif not event[0].waiter.done():
                event[0].waiter.set_result(event[1])
        if wire.violation is not None:  # a frame that broke R1.1, after the ones before it
            self._violated(wire.violation)
            return
        if wire.finished:
            transport.close()

    def _violated(self, violation: ProtocolViolation) -> None:
        assert self._wire is not None and self._transport is not None
        self._violation(violation)
        self._transport.write(self._wire.fail(1002, "protocol violation"))
        self._transport.close()

    def _connection_lost(self) -> None:
        assert self._wire is not None
        if not self._wire.finished:
            with contextlib.suppress(Exception):
                self._wire.receive(b"")
        self.close_code, self.close_reason = self._wire.close_code_and_reason()
        error: HarnessError = self.violation or ConnectionLost(
            describe_close(self.close_code, self.close_reason), self.close_code
        )
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(error)
        for pending in self._lost():
            if not pending.waiter.done():
                pending.waiter.set_exception(error)
                pending.waiter.exception()  # mark retrieved: nobody may be waiting any more
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


def connect(url: str, **options: object) -> StoreClient:
    """A client for ``url``; use as ``async with connect(url) as client``."""
    return StoreClient(url, **options)  # type: ignore[arg-type]
