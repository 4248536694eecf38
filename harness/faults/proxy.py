"""A TCP fault proxy between participants and a store server.

    async with FaultProxy("ws://127.0.0.1:8765/", parse_faults(["latency=20ms"])) as proxy:
        connect(proxy.url)   # participants use proxy.url instead of the server's

It forwards bytes and never parses them, so it works in front of any server
and keeps WebSocket framing (and TLS) intact. Per connection and direction it
adds latency and jitter without reordering bytes, caps bandwidth, and cuts
connections at random (``drop``, ``lifetime``). A timed partition cuts off a
fraction of the open connections (or stalls them both ways) and, while it
lasts, refuses that fraction of new connections; then it heals.

A TCP proxy cannot tell participants apart (every connection is a new source
port), so the cut-off side is a fraction of connections, not of participants:
a participant whose reconnect is refused may get through on a later attempt,
as one that moved to another network would.

Buffers are bounded: each direction holds at most ``QUEUE_CHUNKS`` reads of at
most ``CHUNK_BYTES``; beyond that the proxy stops reading, and TCP's own flow
control pushes back on the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import socket
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from harness.errors import HarnessUsageError
from harness.faults.spec import DROP, FaultPlan, Partition

CHUNK_BYTES = 16 * 1024
QUEUE_CHUNKS = 32
#: Bandwidth pacing granularity: a direction writes at most rate/PACING_STEPS bytes at once.
PACING_STEPS = 20
UP, DOWN = "up", "down"


@dataclass
class ProxyStats:
    """What the proxy did; ``cut`` counts connections it cut, by reason."""

    accepted: int = 0
    refused: int = 0
    upstream_failed: int = 0
    stalled: int = 0
    cut: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    partitions_run: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "upstream_failed": self.upstream_failed,
            "stalled": self.stalled,
            "cut": dict(self.cut),
            "bytes_up": self.bytes[UP],
            "bytes_down": self.bytes[DOWN],
            "partitions_run": self.partitions_run,
        }


def parse_upstream(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a store's URL: ws://, wss:// or an adapter's.

    The proxy forwards bytes, so any TCP store will do; only the store protocol's
    schemes have a default port.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise HarnessUsageError(f"--upstream {url!r} is not a URL like ws://HOST:PORT/")
    try:
        port = parts.port or {"ws": 80, "wss": 443}.get(parts.scheme)
    except ValueError:
        raise HarnessUsageError(f"--upstream {url!r} has an invalid port") from None
    if port is None:
        raise HarnessUsageError(f"--upstream {url!r} needs a port")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


class FaultProxy:
    """Listens on ``host:port`` (0: ephemeral) and forwards to ``upstream`` with faults."""

    def __init__(
        self,
        upstream: str,
        plan: FaultPlan | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        connect_timeout: float = 5.0,
        hold_schedule: bool = False,
    ) -> None:
        self.scheme, self.upstream_host, self.upstream_port, self.path = parse_upstream(upstream)
        self.plan = plan or FaultPlan()
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.stats = ProxyStats()
        self.random = random.Random(self.plan.seed)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._active: list[Partition] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: With hold_schedule, the partitions wait for begin_schedule(): a swarm counts
        #: their times from when its load starts, not from when the proxy came up.
        self.hold_schedule = hold_schedule
        self._scheduled = False
        self._started_at = 0.0

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if not self.hold_schedule:
            self.begin_schedule()
        return self

    def begin_schedule(self) -> None:
        """Start the clock the partitions' times count from (once; later calls do nothing)."""
        if self._scheduled:
            return
        self._scheduled = True
        self._started_at = asyncio.get_running_loop().time()
        for partition in self.plan.partitions:
            self._spawn(self._run_partition(partition))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for link in list(self._links):
            link.cut("proxy stopped")
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
        # Let the cut links' handlers run their cleanup before the loop goes away.
        for _ in range(10):
            if not self._links:
                break
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- connections ---------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A partition refuses its share of new connections before any byte moves.
        if any(self.random.random() < p.fraction for p in self._active):
            self.stats.refused += 1
            writer.transport.abort()
            return
        try:
            async with asyncio.timeout(self.connect_timeout):
                upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except (OSError, TimeoutError):
            # The client sees its connection close: the server is unreachable through us.
            self.stats.upstream_failed += 1
            writer.transport.abort()
            return
        self.stats.accepted += 1
        link = _Link(self, (reader, writer), upstream)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)

    def _lifetime(self) -> tuple[float, str] | None:
        """How long a new connection lives before the proxy cuts it, and why; or None."""
        lifetimes = []
        if self.plan.drop > 0:
            # Cut with probability p in any one second: an exponential lifetime.
            lifetimes.append((self.random.expovariate(-math.log1p(-self.plan.drop)), "drop"))
        if self.plan.lifetime_s is not None:
            lifetimes.append((self.random.uniform(*self.plan.lifetime_s), "lifetime"))
        return min(lifetimes) if lifetimes else None

    async def _run_partition(self, partition: Partition) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self._started_at + partition.start_s - loop.time()))
        self._active.append(partition)
        self.stats.partitions_run += 1
        links = sorted(self._links, key=lambda link: link.number)
        cut_off = self.random.sample(links, round(partition.fraction * len(links)))
        for link in cut_off:
            if partition.mode == DROP:
                link.cut("partition")
            else:
                link.stall(partition)
        try:
            await asyncio.sleep(partition.duration_s)
        finally:
            self._active.remove(partition)
            for link in cut_off:
                link.release(partition)


class _Link:
    """One client connection and its upstream connection, with two directions of bytes."""

    numbers = itertools.count(1)

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.number = next(self.numbers)
        self.client = client
        self.upstream = upstream
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.stalled_by: set[Partition] = set()
        self.done = asyncio.Event()
        self.reason: str | None = None
        for _, writer in (client, upstream):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def run(self) -> None:
        plan = self.proxy.plan
        pumps = [
            asyncio.ensure_future(
                self._pump(self.client[0], self.upstream[1], plan.latency_up_s, UP)
            ),
            asyncio.ensure_future(
                self._pump(self.upstream[0], self.client[1], plan.latency_down_s, DOWN)
            ),
        ]
        lifetime, reason = self.proxy._lifetime() or (None, "")
        ender = asyncio.ensure_future(self.done.wait())
        try:
            finished, _ = await asyncio.wait(
                [ender, asyncio.gather(*pumps, return_exceptions=True)],
                timeout=lifetime,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not finished:
                self.cut(reason)
        finally:
            for task in [*pumps, ender]:
                task.cancel()
            await asyncio.gather(*pumps, ender, return_exceptions=True)
            self._close(abort=self.reason is not None)

    def cut(self, reason: str) -> None:
        """Cut both sides now (a reset, not a clean close): the network failed."""
        if self.reason is None and not self.done.is_set():
            self.reason = reason
            self.proxy.stats.cut[reason] += 1
            self._close(abort=True)
            self.done.set()

    def stall(self, partition: Partition) -> None:
        if not self.stalled_by:
            self.proxy.stats.stalled += 1
        self.stalled_by.add(partition)
        self.flowing.clear()

    def release(self, partition: Partition) -> None:
        self.stalled_by.discard(partition)
        if not self.stalled_by:
            self.flowing.set()

    def _close(self, *, abort: bool) -> None:
        for _, writer in (self.client, self.upstream):
            if abort:
                writer.transport.abort()
            else:
                writer.close()

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        latency: float,
        direction: str,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUE_CHUNKS)
        writer = asyncio.ensure_future(self._deliver(queue, sink, direction))
        try:
            await self._receive(source, queue, latency)
            await writer
        finally:
            writer.cancel()

    async def _receive(
        self,
        source: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        latency: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        jitter, rand = self.proxy.plan.jitter_s, self.proxy.random
        last_due = 0.0
        while True:
            try:
                data = await source.read(CHUNK_BYTES)
            except OSError:
                data = b""
            if not data:
                await queue.put(None)
                return
            # Delivery times never decrease, so jitter delays bytes but never reorders them.
            due = loop.time() + latency + (rand.uniform(0, jitter) if jitter else 0.0)
            last_due = max(last_due, due)
            await queue.put((last_due, data))  # blocks when full: TCP backpressure

    async def _deliver(
        self,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        sink: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        rate = self.proxy.plan.bandwidth
        step = max(256, rate // PACING_STEPS) if rate else CHUNK_BYTES
        next_free = loop.time()
        while True:
            item = await queue.get()
            if item is None:
                # The sender closed its side: pass the half-close on (TCP semantics).
                await self.flowing.wait()
                with contextlib.suppress(OSError, RuntimeError):
                    if sink.can_write_eof():
                        sink.write_eof()
                return
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            for start in range(0, len(data), step):
                await self.flowing.wait()
                piece = data[start : start + step]
                if rate:
                    # Each piece waits its turn: n bytes written by time t imply
                    # t >= first write + (n - last piece) / rate.
                    wait = next_free - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    next_free = max(next_free, loop.time()) + len(piece) / rate
                sink.write(piece)
                try:
                    await sink.drain()
                except OSError:
                    return
                self.proxy.stats.bytes[direction] += len(piece)
