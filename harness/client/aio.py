"""The asyncio participant client, on ``websockets``.

    async with connect("ws://127.0.0.1:8765/") as client:
        await client.join("meeting-1", "alice", "Alice")
        observer_id = await client.observe("BLOCK_CHAT", lambda value, by: print(value, by.id))
        await client.set("BLOCK_CHAT", "true")
        assert await client.get("BLOCK_CHAT") == "true"

Requests may be issued concurrently from several tasks (pipelining); replies
are matched in request order by the protocol core.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from time import monotonic_ns
from types import TracebackType

from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from harness.client.base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    ClientBase,
    ClientListener,
    UpdateCallback,
    describe_close,
)
from harness.errors import (
    ConnectionLost,
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
        super().__init__(url, request_timeout=request_timeout, listeners=listeners)
        self.connect_timeout = connect_timeout
        self.compression = compression
        self.max_frame_bytes = max_frame_bytes
        self.trace = trace
        self.violation: ProtocolViolation | None = None
        self._ws: WebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._updates: asyncio.Queue[Update | None] | None = None
        self._closed = asyncio.Event()

    async def open(self) -> StoreClient:
        try:
            self._ws = await ws_connect(
                self.url,
                # Off by default: deflate costs about 4x the memory per connection.
                compression="deflate" if self.compression else None,
                max_size=self.max_frame_bytes,
                open_timeout=self.connect_timeout,
                # A load generator adds no keepalive traffic of its own.
                ping_interval=None,
                close_timeout=2,
            )
        except InvalidURI as exc:
            raise HarnessUsageError(f"not a WebSocket URL: {self.url!r} ({exc})") from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ConnectionLost(f"could not connect to {self.url}: {reason}") from None
        self._reader = asyncio.get_running_loop().create_task(self._read_frames())
        return self

    async def __aenter__(self) -> StoreClient:
        return self if self._ws is not None else await self.open()

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
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

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
        data = frame if binary else pending.frame
        return await self._send_and_wait(pending, data, text=not binary)

    # --- plumbing ----------------------------------------------------------------

    async def _request(self, request: Request) -> object:
        waiter = asyncio.get_running_loop().create_future()
        pending = self._begin(request, waiter)
        reply = await self._send_and_wait(pending, pending.frame, text=True)
        return self._result(reply)

    async def _send_and_wait(
        self, pending: PendingRequest, data: str | bytes, *, text: bool
    ) -> Reply:
        self._check_usable(pending)
        if self.trace is not None:
            self.trace("sent", data)
        # On a closed connection the reader fails the waiter with the close reason.
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(data, text=text)
        try:
            async with asyncio.timeout(self.request_timeout):
                return await asyncio.shield(pending.waiter)
        except TimeoutError:
            pending.abandoned = True
            self._on_unknown(pending)
            raise RequestTimeout(
                f"no reply to request {pending.id} within {self.request_timeout:g}s"
            ) from None

    def _check_usable(self, pending: PendingRequest) -> None:
        if self._ws is None:
            raise HarnessUsageError("the client is not connected; use 'async with connect(url)'")
        if self.violation is not None or self._closed.is_set():
            self.protocol.pending.remove(pending)
            self._on_unknown(pending)
            if self.violation is not None:
                raise self.violation
            raise ConnectionLost(
                describe_close(self.close_code, self.close_reason), self.close_code
            )

    async def _read_frames(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if self.trace is not None:
                    self.trace("received", frame)
                if isinstance(frame, bytes):
                    raise ProtocolViolation("the server sent a binary frame (R1.1)", frame)
                event = self._on_frame(frame)
                if isinstance(event, Update):
                    if self._updates is not None:
                        self._updates.put_nowait(event)
                elif not event[0].waiter.done():
                    event[0].waiter.set_result(event[1])
        except ProtocolViolation as exc:
            self.violation = exc
            await self._ws.close(1002, "protocol violation")
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason or ""
            error = self.violation or ConnectionLost(
                describe_close(self.close_code, self.close_reason), self.close_code
            )
            for pending in self._lost():
                if not pending.waiter.done():
                    pending.waiter.set_exception(error)
                    pending.waiter.exception()  # mark retrieved: nobody may be waiting any more
            self._closed.set()
            if self._updates is not None:
                self._updates.put_nowait(None)

    @staticmethod
    async def _iterate_updates(queue: asyncio.Queue[Update | None]) -> AsyncIterator[Update]:
        while (update := await queue.get()) is not None:
            yield update


def connect(url: str, **options: object) -> StoreClient:
    """A client for ``url``; use as ``async with connect(url) as client``."""
    return StoreClient(url, **options)  # type: ignore[arg-type]
