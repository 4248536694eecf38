"""The harness's transport beside bare ``websockets``, in one run.

    python benchmarks/bench_transport.py [--seconds 2] [--observers 100,1000]

Two servers run in child processes on 127.0.0.1 ephemeral ports: the reference
server (``store-harness serve``) and a bare ``websockets`` server (an echo
endpoint and a broadcast endpoint that relays each frame to every observer
with ``websockets.broadcast``). Clients run in this process, one measurement at
a time, each bounded in time and in count. Both servers offer
permessage-deflate so the memory rows can compare it; the other rows' clients
do not ask for it, so it stays off there.

The broadcast rows keep a window of writes in flight, so the receiving process
is always busy and the figure is its delivery rate. (With one write at a time
the figure swings by 2x from run to run, in both columns: it depends on how
many frames each socket read happens to find waiting.)

Rows are data (:func:`rows` returns a list of :class:`Row`): a label, a unit,
the bare baseline and the harness subject, each a function of the server URLs
and :class:`Settings` returning one figure. To add a client (the blocking one,
say), append rows; the ratio column is subject / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without `pip install -e`
    sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))

from websockets.asyncio.client import ClientConnection  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, broadcast, serve  # noqa: E402

from harness.client.aio import StoreClient  # noqa: E402
from harness.client.aio import connect as store_connect  # noqa: E402
from harness.server.embedded import ServerProcess  # noqa: E402

#: What one set request looks like on the wire, so bare frames are the same size.
SET_FRAME = '{"type":"set","id":1,"key":"k","value":"v"}'
UPDATE_FRAME = (
    '{"type":"update","observerId":"o1","key":"k","value":"v1",'
    '"updatedBy":{"id":"writer","name":""}}'
)
WARMUP = 200
PIPELINE_WINDOW = 500
#: Writes in flight in the broadcast rows: enough to keep the receiving process busy,
#: so the figure is its delivery rate rather than the writer's round-trip time.
WRITE_WINDOW = 50


@dataclass(frozen=True)
class Urls:
    bare: str  # ws://host:port/ ; endpoints /echo, /observe, /write
    harness: str


@dataclass(frozen=True)
class Settings:
    seconds: float = 2.0
    max_ops: int = 200_000
    broadcast_notifications: int = 100_000
    idle_connections: int = 200


Measure = Callable[[Urls, Settings], float]


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    baseline: Measure | None
    subject: Measure
    higher_is_better: bool = True


# --- bounded loops -------------------------------------------------------------------


async def rate(
    operation: Callable[[], Awaitable[object]], settings: Settings, per_op: int = 1
) -> float:
    """Operations per second of ``operation`` over at most ``settings.seconds``."""
    for _ in range(max(1, WARMUP // per_op)):
        await operation()
    done, start = 0, time.perf_counter()
    deadline = start + settings.seconds
    while done < settings.max_ops and time.perf_counter() < deadline:
        await operation()
        done += per_op
    return done / (time.perf_counter() - start)


def run_async(measure: Callable[[Urls, Settings], Awaitable[float]]) -> Measure:
    return lambda urls, settings: asyncio.run(measure(urls, settings))


# --- bare websockets -------------------------------------------------------------------


async def bare_sequential(urls: Urls, settings: Settings) -> float:
    async with ws_connect(urls.bare + "echo", ping_interval=None, compression=None) as ws:

        async def round_trip() -> None:
            await ws.send(SET_FRAME)
            await ws.recv()

        return await rate(round_trip, settings)


async def bare_pipelined(urls: Urls, settings: Settings) -> float:
    async with ws_connect(urls.bare + "echo", ping_interval=None, compression=None) as ws:

        async def window() -> None:
            for _ in range(PIPELINE_WINDOW):
                await ws.send(SET_FRAME)
            for _ in range(PIPELINE_WINDOW):
                await ws.recv()

        return await rate(window, settings, per_op=PIPELINE_WINDOW)


async def bare_broadcast(urls: Urls, settings: Settings, observers: int) -> float:
    writes = max(10, settings.broadcast_notifications // observers)
    expected = writes * observers
    received = 0
    all_in = asyncio.Event()

    async def observe(ws: ClientConnection) -> None:
        nonlocal received
        async for _ in ws:
            received += 1
            if received == expected:
                all_in.set()

    sockets = [
        await ws_connect(urls.bare + "observe", ping_interval=None, compression=None)
        for _ in range(observers)
    ]
    readers = [asyncio.create_task(observe(ws)) for ws in sockets]
    try:
        async with ws_connect(urls.bare + "write", ping_interval=None, compression=None) as writer:
            for _ in range(100):  # the server registers observers as their handlers start
                await writer.send("count")
                if int(await writer.recv()) == observers:
                    break
                await asyncio.sleep(0.05)
            start = time.perf_counter()
            for first in range(0, writes, WRITE_WINDOW):
                batch = min(WRITE_WINDOW, writes - first)
                for _ in range(batch):
                    await writer.send(UPDATE_FRAME)
                for _ in range(batch):
                    await writer.recv()
            async with asyncio.timeout(60):
                await all_in.wait()
            return expected / (time.perf_counter() - start)
    finally:
        for ws in sockets:
            await ws.close()
        for reader in readers:
            reader.cancel()


# --- the harness ----------------------------------------------------------------------


async def joined_client(url: str, participant: str, **options: object) -> StoreClient:
    client = await store_connect(url, **options).open()
    await client.join("bench", participant)
    return client


async def harness_sequential_set(urls: Urls, settings: Settings) -> float:
    client = await joined_client(urls.harness, "setter")
    try:
        return await rate(lambda: client.set("k", "v"), settings)
    finally:
        await client.close()


async def harness_sequential_get(urls: Urls, settings: Settings) -> float:
    client = await joined_client(urls.harness, "getter")
    try:
        await client.set("k", "v")
        return await rate(lambda: client.get("k"), settings)
    finally:
        await client.close()


async def harness_pipelined_set(urls: Urls, settings: Settings) -> float:
    client = await joined_client(urls.harness, "pipeliner")
    try:

        async def window() -> None:
            await asyncio.gather(*(client.set("k", "v") for _ in range(PIPELINE_WINDOW)))

        return await rate(window, settings, per_op=PIPELINE_WINDOW)
    finally:
        await client.close()


async def harness_broadcast(urls: Urls, settings: Settings, observers: int) -> float:
    writes = max(10, settings.broadcast_notifications // observers)
    expected = writes * observers
    received = 0
    all_in = asyncio.Event()

    def on_update(value: str | None, by: object) -> None:
        nonlocal received
        received += 1
        if received == expected:
            all_in.set()

    clients = [await joined_client(urls.harness, f"o{n}") for n in range(observers)]
    try:
        for client in clients:
            await client.observe("k", on_update)
        writer = await joined_client(urls.harness, "writer")
        clients.append(writer)
        start = time.perf_counter()
        for first in range(0, writes, WRITE_WINDOW):
            batch = range(first, min(first + WRITE_WINDOW, writes))
            await asyncio.gather(*(writer.set("k", f"v{n}") for n in batch))
        async with asyncio.timeout(60):
            await all_in.wait()
        return expected / (time.perf_counter() - start)
    finally:
        await asyncio.gather(*(client.close() for client in clients))


# --- memory per idle connection, measured in a fresh child process ---------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def idle_connections(kind: str, url: str, count: int, compression: bool) -> float:
    """Bytes of RSS each idle connection costs this (client) process."""

    async def open_one(n: int) -> object:
        if kind == "harness":
            return await joined_client(url, f"idle{n}", compression=compression)
        ws = await ws_connect(
            url + "echo", ping_interval=None, compression="deflate" if compression else None
        )
        await ws.send(SET_FRAME)  # one exchange each way, as the join is for the harness
        await ws.recv()
        return ws

    # One connection first, so imports and first-use allocations are not counted.
    held = [await open_one(0)]
    gc.collect()
    before = rss_bytes()
    held.extend([await open_one(n) for n in range(1, count + 1)])
    gc.collect()
    return (rss_bytes() - before) / count


def memory_row(kind: str, compression: bool) -> Measure:
    def measure(urls: Urls, settings: Settings) -> float:
        url = urls.bare if kind == "bare" else urls.harness
        argv = [sys.executable, __file__, "--memory", kind, url, str(settings.idle_connections)]
        result = subprocess.run(
            [*argv, "1" if compression else "0"], capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-2000:])
        return float(result.stdout.strip()) / 1024

    return measure


# --- the bare server (child process) -------------------------------------------------


async def bare_server() -> None:
    observers: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/"
        if path == "/observe":
            observers.add(ws)
            try:
                await ws.wait_closed()
            finally:
                observers.discard(ws)
        elif path == "/write":
            async for frame in ws:
                if frame == "count":
                    await ws.send(str(len(observers)))
                    continue
                broadcast(observers, frame)
                await ws.send("ack")
        else:
            async for frame in ws:
                await ws.send(frame)

    async with serve(
        handler, "127.0.0.1", 0, ping_interval=None, max_size=64 * 1024, compression="deflate"
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"bare websockets server listening on ws://127.0.0.1:{port}/", flush=True)
        await server.serve_forever()


def bare_server_process() -> ServerProcess:
    process = ServerProcess()
    process.args = [sys.executable, __file__, "--bare-server"]
    return process


# --- the table ----------------------------------------------------------------------------


def rows(observer_counts: list[int]) -> list[Row]:
    table = [
        Row(
            "set round trips, sequential",
            "ops/s",
            run_async(bare_sequential),
            run_async(harness_sequential_set),
        ),
        Row(
            "get round trips, sequential",
            "ops/s",
            run_async(bare_sequential),
            run_async(harness_sequential_get),
        ),
        Row(
            "sets pipelined (window 500)",
            "ops/s",
            run_async(bare_pipelined),
            run_async(harness_pipelined_set),
        ),
    ]
    for n in observer_counts:
        table.append(
            Row(
                f"notifications, 1 writer, {n} observers",
                "msg/s",
                run_async(lambda u, s, n=n: bare_broadcast(u, s, n)),
                run_async(lambda u, s, n=n: harness_broadcast(u, s, n)),
            )
        )
    for compression in (False, True):
        label = f"memory per idle connection, deflate {'on' if compression else 'off'}"
        bare, harness = memory_row("bare", compression), memory_row("harness", compression)
        table.append(Row(label, "KiB", bare, harness, higher_is_better=False))
    return table


def best_of(row: Row, urls: Urls, settings: Settings, repeat: int) -> tuple[float | None, float]:
    """The best of ``repeat`` alternating runs of each side.

    Other work on the machine only ever makes a run worse, so the best run is the
    closest to what the code itself can do.
    """
    best = max if row.higher_is_better else min
    baselines, subjects = [], []
    for _ in range(repeat):
        if row.baseline is not None:
            baselines.append(row.baseline(urls, settings))
        subjects.append(row.subject(urls, settings))
    return (best(baselines) if baselines else None), best(subjects)


def print_table(results: list[tuple[Row, float | None, float]]) -> None:
    print(f"{'measurement':<46} {'bare':>10} {'harness':>10} {'unit':>6} {'harness/bare':>13}")
    for row, bare, subject in results:
        bare_text = "-" if bare is None else f"{bare:,.0f}"
        ratio = "-" if not bare else f"{subject / bare:.2f}x"
        print(f"{row.label:<46} {bare_text:>10} {subject:>10,.0f} {row.unit:>6} {ratio:>13}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time bound per measurement")
    parser.add_argument("--observers", default="100,1000", help="observer counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each row; the best counts")
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        asyncio.run(bare_server())
        return 0
    if args.memory:
        kind, url, count, compression = args.memory
        print(asyncio.run(idle_connections(kind, url, int(count), compression == "1")))
        return 0

    settings = Settings(seconds=args.seconds)
    observer_counts = [int(n) for n in args.observers.split(",") if n]
    with ServerProcess(["--compression"]) as harness, bare_server_process() as bare:
        urls = Urls(bare=bare.url, harness=harness.url)
        results = []
        for row in rows(observer_counts):
            try:
                results.append((row, *best_of(row, urls, settings, args.repeat)))
            except Exception:
                codes = harness.process.poll(), bare.process.poll()  # type: ignore[union-attr]
                print(f"  {row.label} failed; server exit codes {codes}", file=sys.stderr)
                raise
            print(f"  measured: {row.label}", file=sys.stderr, flush=True)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
