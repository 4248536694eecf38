"""The reference server: asyncio, in memory, exactly the semantics of docs/protocol.md.

    async with ReferenceServer(port=0) as server:
        print(server.url)

Each connection has an outbox drained by its own writer task, so a participant
that stops reading its socket only fills its own outbox and never delays
deliveries to the others (R4.7). Request handling never awaits, so each request
is applied atomically.

With ``token_secret`` set, every join must carry a token minted for its session and
participant (R2.4, :mod:`harness.protocol.auth`). Per-connection limits (frame size, unsent
frames, observers) close only the connection that breaks them, and a cap on
connections turns newcomers away with 1013 (docs/protocol.md, "Server limits").

Every ``handle_*`` method is a seam: the project's tests subclass this server
with one deliberate bug each to prove the conformance suite catches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from harness.protocol import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_FRAME_BYTES,
    Error,
    ErrorCode,
    Get,
    Join,
    Joined,
    Limits,
    Observe,
    Observing,
    Ok,
    Participant,
    Rejection,
    Set,
    StopObserving,
    UpdateFrames,
    Value,
    encode,
    interpret_request,
)
from harness.protocol.auth import check_secret, check_token
from harness.protocol.closes import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_MANY_OBSERVERS,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
)
from harness.server.store import Session, Store, Subscription

log = logging.getLogger(__name__)


class Connection:
    """One participant connection as the server sees it."""

    def __init__(self, websocket: ServerConnection) -> None:
        self.websocket = websocket
        self.participant: Participant | None = None
        self.session: Session | None = None
        self.observers: dict[str, Subscription] = {}
        self.outbox: deque[bytes] = deque()
        self.ready = asyncio.Event()
        self.closing = False


class ReferenceServer:
    """The store protocol's reference implementation."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        limits: Limits = DEFAULT_LIMITS,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_connections: int = 20_000,
        max_outbox_frames: int = 10_000,
        max_observers_per_connection: int = 1_000,
        token_secret: str | None = None,
        notify_delay: float = 0.0,
        compression: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.limits = limits
        self.max_frame_bytes = max_frame_bytes
        self.max_connections = max_connections
        self.max_outbox_frames = max_outbox_frames
        self.max_observers_per_connection = max_observers_per_connection
        if token_secret is not None:
            check_secret(token_secret)
        #: With a secret, joins need a token minted for their session and participant.
        self.token_secret = token_secret
        #: Test-only: hold every notification this long, to check latency reports.
        self.notify_delay = notify_delay
        self.compression = compression
        self.store = Store(limits)
        self.connections: set[Connection] = set()
        self._server: Server | None = None
        self._delayed: deque[tuple[float, list[tuple[Subscription, bytes]]]] = deque()
        self._delay_wakeup: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> ReferenceServer:
        self._server = await serve(
            self._serve_connection,
            self.host,
            self.port,
            max_size=self.max_frame_bytes,
            compression="deflate" if self.compression else None,
            ping_interval=None,
            close_timeout=2,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.notify_delay > 0:
            self._delay_wakeup = asyncio.Event()
            self._spawn(self._deliver_delayed())
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> ReferenceServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    # --- one connection ------------------------------------------------------------

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        if len(self.connections) >= self.max_connections:
            await websocket.close(CLOSE_TRY_AGAIN_LATER, "server is at its connection limit")
            return
        conn = Connection(websocket)
        self.connections.add(conn)
        writer = asyncio.get_running_loop().create_task(self._write_frames(conn))
        try:
            async for frame in websocket:
                if conn.closing:
                    break
                try:
                    self.handle_frame(conn, frame)
                except Exception:
                    # A bug met on one connection must not take the others down.
                    log.exception("internal error on a connection; closing it")
                    self.close(conn, CLOSE_INTERNAL_ERROR, "internal server error")
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(conn)
            self.disconnect(conn)
            conn.closing = True
            conn.ready.set()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer

    async def _write_frames(self, conn: Connection) -> None:
        outbox, websocket = conn.outbox, conn.websocket
        try:
            while not conn.closing or outbox:
                if not outbox:
                    conn.ready.clear()
                    await conn.ready.wait()
                    continue
                await websocket.send(outbox.popleft(), text=True)
        except ConnectionClosed:
            pass

    def send(self, conn: Connection, frame: bytes) -> None:
        """Queue one frame for ``conn``; a participant too slow to keep up is cut off."""
        if conn.closing:
            return
        if not conn.outbox and not conn.websocket.transport.get_write_buffer_size():
            # Nothing waits and the kernel took every byte so far: write now rather
            # than wake the writer task, one event-loop turn less per reply. A frame
            # the writer already popped is in the transport, so order holds.
            broadcast((conn.websocket,), frame, text=True)
            return
        if len(conn.outbox) >= self.max_outbox_frames:
            self.close(conn, CLOSE_SLOW_CONSUMER, "too slow: outgoing queue is full")
            return
        conn.outbox.append(frame)
        conn.ready.set()

    def reply(self, conn: Connection, message: object) -> None:
        self.send(conn, encode(message))  # type: ignore[arg-type]

    def close(self, conn: Connection, code: int, reason: str) -> None:
        if not conn.closing:
            conn.closing = True
            conn.ready.set()
            self._spawn(conn.websocket.close(code, reason))

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- requests ----------------------------------------------------------------------

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self.reply(conn, Error(None, ErrorCode.BAD_REQUEST, "binary frames are not allowed"))
            return
        request = interpret_request(frame, joined=conn.session is not None, limits=self.limits)
        match request:
            case Rejection():
                self.reply(conn, request.reply())
            case Join():
                self.handle_join(conn, request)
            case Set():
                self.handle_set(conn, request)
            case Get():
                self.handle_get(conn, request)
            case Observe():
                self.handle_observe(conn, request)
            case StopObserving():
                self.handle_stop_observing(conn, request)

    @property
    def access_check(self) -> bool:
        return self.token_secret is not None

    def authorize(self, join: Join) -> str | None:
        """Why this join is refused (UNAUTHORIZED), or None to admit it (R2.4)."""
        if self.token_secret is None:
            return None
        return check_token(self.token_secret, join.token, join.session, join.participant.id)

    def handle_join(self, conn: Connection, join: Join) -> None:
        refusal = self.authorize(join)
        if refusal is not None:
            self.reply(conn, Error(join.id, ErrorCode.UNAUTHORIZED, refusal))
            self.close(conn, CLOSE_UNAUTHORIZED, "unauthorized")
            return
        conn.participant = join.participant
        conn.session = self.store.enter(join.session)
        self.reply(conn, Joined(join.id, join.session, join.participant, self.limits))

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None and conn.participant is not None
        refused = self.store.write(conn.session, request.key, request.value)
        if refused is not None:
            limit = self.limits.max_keys
            self.reply(conn, Error(request.id, refused, f"the session already holds {limit} keys"))
            return
        self.reply(conn, Ok(request.id))
        self.notify(conn.session, request.key, request.value, conn.participant)

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        observers = self.store.observers_of(session, key)
        if not observers:
            return
        frames = UpdateFrames(key, value, writer)
        deliveries = [(o, frames.for_observer(o.observer_id)) for o in observers]
        if self._delay_wakeup is not None:
            due = asyncio.get_running_loop().time() + self.notify_delay
            self._delayed.append((due, deliveries))
            self._delay_wakeup.set()
            return
        for observer, frame in deliveries:
            observer.deliver(frame)

    def handle_get(self, conn: Connection, request: Get) -> None:
        assert conn.session is not None
        value = conn.session.values.get(request.key)
        self.reply(conn, Value(request.id, request.key, value))

    def handle_observe(self, conn: Connection, request: Observe) -> None:
        assert conn.session is not None
        if len(conn.observers) >= self.max_observers_per_connection:
            # Each observer costs memory and fan-out work on every write to its key;
            # one connection must not make every write in its session slower.
            limit = self.max_observers_per_connection
            self.close(conn, CLOSE_TOO_MANY_OBSERVERS, f"too many observers (limit {limit})")
            return

        def deliver(frame: bytes) -> None:
            self.send(conn, frame)

        observer = self.store.add_observer(conn.session, request.key, deliver)
        conn.observers[observer.observer_id] = observer
        self.reply(conn, Observing(request.id, observer.observer_id))

    def handle_stop_observing(self, conn: Connection, request: StopObserving) -> None:
        assert conn.session is not None
        observer = conn.observers.pop(request.observer_id, None)
        if observer is None:
            message = f"{request.observer_id!r} is not an active observer of this connection"
            self.reply(conn, Error(request.id, ErrorCode.UNKNOWN_OBSERVER, message))
            return
        self.store.remove_observer(conn.session, observer)
        self.reply(conn, Ok(request.id))

    def disconnect(self, conn: Connection) -> None:
        """The connection is gone: end its observers, keep its writes (R4.6)."""
        if conn.session is not None:
            self.store.leave(conn.session, list(conn.observers.values()))
            conn.observers.clear()

    async def _deliver_delayed(self) -> None:
        assert self._delay_wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._delayed:
                self._delay_wakeup.clear()
                await self._delay_wakeup.wait()
                continue
            due, deliveries = self._delayed[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._delayed.popleft()
            for observer, frame in deliveries:
                observer.deliver(frame)
