"""Cases with many participants at once: ordering (R4.3), the key-limit race (R3.6),
a participant that stops reading (R4.7), and notification latency (informational).

They use tens of connections, not thousands: enough to interleave writes on a
server's event loop or threads, and quick enough to keep the suite under a minute.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from harness.conformance.case import case
from harness.conformance.context import CaseContext, Observed, RawConnection
from harness.conformance.judge import checker_problems, judge_one_key
from harness.errors import HarnessError, StoreError
from harness.history.recorder import HistoryRecorder
from harness.protocol import ErrorCode


async def wait_all(observers: Iterable[Observed], count: int, timeout: float) -> None:
    """Wait, under one deadline, until every observer has ``count`` updates."""
    await asyncio.gather(*(one.wait_for(count, timeout) for one in observers))


WRITERS, WRITES_EACH, WATCHERS = 4, 25, 3


@case(
    "R4.3-concurrent-writers-one-order", "observers see concurrent writes in one order", slow=True
)
async def concurrent_writers(ctx: CaseContext) -> None:
    session = ctx.session()
    recorder = HistoryRecorder(process=f"conformance-{ctx.case_id}")
    history = [recorder]
    writers = [await ctx.joined(f"writer{i}", session, listeners=history) for i in range(WRITERS)]
    watchers = [
        await ctx.joined(f"watcher{i}", session, listeners=history) for i in range(WATCHERS)
    ]
    observed: dict[str, Observed] = {}
    for label, client in [
        *((f"writer{i}", c) for i, c in enumerate(writers)),
        *((f"watcher{i}", c) for i, c in enumerate(watchers)),
    ]:
        observed[label] = await ctx.observe(client, "k")
    # A second observer on one connection must see the same order too (R4.4).
    observed["watcher0-second"] = await ctx.observe(watchers[0], "k")

    async def write_all(index: int) -> None:
        writes = [writers[index].set("k", f"w{index}-{n}") for n in range(WRITES_EACH)]
        await asyncio.gather(*writes)

    await asyncio.gather(*(write_all(i) for i in range(WRITERS)))
    acknowledged = {f"w{i}-{n}" for i in range(WRITERS) for n in range(WRITES_EACH)}
    total = len(acknowledged)
    await wait_all(observed.values(), total, ctx.options.request_timeout)
    await ctx.settle()
    clients = {
        **{f"writer{i}": c for i, c in enumerate(writers)},
        **{f"watcher{i}": c for i, c in enumerate(watchers)},
    }
    finals = dict(
        zip(clients, await asyncio.gather(*(c.get("k") for c in clients.values())), strict=True)
    )
    sequences = {label: one.values for label, one in observed.items()}
    problems = judge_one_key(acknowledged, sequences, finals)
    result, anomalies = checker_problems(recorder)
    ctx.measure("checker", result)
    problems += [f"consistency checker: {anomaly}" for anomaly in anomalies]
    if problems:
        ctx.fail(
            f"{len(problems)} problem(s) with {total} concurrent writes to one key: {problems[0]}",
            expected=f"{len(observed)} observers each see the same {total} updates once, in one "
            "order, and every final get returns the last",
            got="\n".join(problems[:10]),
        )


PARTICIPANTS, KEYS_EACH = 24, 4


@case(
    "R3.6-concurrent-race-admits-exactly-the-limit",
    "24 participants racing to create the last keys get exactly maxKeys admitted",
    slow=True,
)
async def key_limit_race(ctx: CaseContext) -> None:
    # The race is run near the limit, where check-then-write bugs show: a session
    # filled to a few keys short, then many participants creating keys at once.
    session = ctx.session()
    limit = ctx.limits.max_keys
    clients = [await ctx.joined(f"p{i}", session) for i in range(PARTICIPANTS)]
    prefilled = max(0, limit - PARTICIPANTS // 2)
    for start in range(0, prefilled, 25):
        batch = range(start, min(start + 25, prefilled))
        await asyncio.gather(*(clients[0].set(f"fill-{n}", "v") for n in batch))
    outcomes: dict[str, bool] = {}

    async def create(index: int, n: int) -> None:
        key = f"p{index}-key{n}"
        try:
            await clients[index].set(key, "v")
            outcomes[key] = True
        except StoreError as exc:
            if exc.code != ErrorCode.KEY_LIMIT_EXCEEDED:
                raise
            outcomes[key] = False

    await asyncio.gather(*(create(i, n) for i in range(PARTICIPANTS) for n in range(KEYS_EACH)))
    admitted = sorted(k for k, ok in outcomes.items() if ok)
    held = []
    keys = sorted(outcomes)
    for start in range(0, len(keys), 50):
        batch = keys[start : start + 50]
        values = await asyncio.gather(*(clients[-1].get(k) for k in batch))
        held += [k for k, v in zip(batch, values, strict=True) if v is not None]
    ctx.measure("prefilled", prefilled)
    ctx.measure("attempted", len(outcomes))
    ctx.measure("admitted", len(admitted))
    ctx.check_equal(
        prefilled + len(admitted), limit, f"keys held after {len(outcomes)} concurrent creates"
    )
    ctx.check_equal(held, admitted, "the raced keys the session holds afterwards")


SLOW_OBSERVERS, FLOOD_WRITES, FLOOD_VALUE_BYTES = 20, 300, 900


async def _stalled_reader(ctx: CaseContext, session: str) -> RawConnection:
    """A participant that observes a key many times over, then never reads again."""
    parts = urlsplit(ctx.url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # A small receive window makes the server's socket back up quickly.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    raw = await ctx.raw("slow-reader", sock=sock, max_queue=1)
    await raw.request(ctx.join_message(1, session, "slow-reader"), "joined")
    for i in range(SLOW_OBSERVERS):
        await raw.request({"type": "observe", "id": 2 + i, "key": "k"}, "observing")
    ctx.note(f"slow-reader holds {SLOW_OBSERVERS} observers of 'k' and stops reading")
    return raw


@case(
    "R4.7-stalled-reader-does-not-delay-others",
    "a participant that stops reading does not hold up the others' updates",
    slow=True,
)
async def stalled_reader(ctx: CaseContext) -> None:
    session = ctx.session()
    stalled = await _stalled_reader(ctx, session)
    try:
        await _flood_past(ctx, session)
    finally:
        # A closing handshake would wait behind the backlog the case built up.
        stalled.abort()


async def _flood_past(ctx: CaseContext, session: str) -> None:
    watcher = await ctx.joined("watcher", session)
    observed = await ctx.observe(watcher, "k")
    writer = await ctx.joined("writer", session)
    padding = "x" * FLOOD_VALUE_BYTES
    budget = min(ctx.options.request_timeout, 5.0)
    started = time.monotonic()
    try:
        async with asyncio.timeout(budget):
            for start in range(0, FLOOD_WRITES, 50):
                await asyncio.gather(
                    *(writer.set("k", f"{n}:{padding}") for n in range(start, start + 50))
                )
    except (TimeoutError, HarnessError) as exc:
        ctx.fail(
            "the writer's own requests stalled while another participant did not read",
            expected=f"{FLOOD_WRITES} acknowledged writes",
            got=str(exc) or "timeout",
        )
    remaining = max(0.1, budget - (time.monotonic() - started))
    await observed.wait_for(FLOOD_WRITES, remaining)
    ctx.measure("seconds", round(time.monotonic() - started, 3))
    ctx.check(
        len(observed.updates) == FLOOD_WRITES,
        "the watcher's updates were held up behind the participant that stopped reading",
        expected=f"{FLOOD_WRITES} updates within {budget:g}s",
        got=f"{len(observed.updates)} updates",
    )


@case(
    "R4.1-notification-latency",
    "time from a write's send to its update at an observer",
    informational=True,
)
async def notification_latency(ctx: CaseContext) -> None:
    session = ctx.session()
    writer = await ctx.joined("writer", session)
    observed = await ctx.observe(await ctx.joined("watcher", session), "k")
    latencies = []
    for n in range(50):
        sent = time.perf_counter()
        await writer.set("k", str(n))
        if not await observed.wait_for(n + 1, ctx.options.request_timeout):
            ctx.fail(f"the update of write #{n} never came", expected=str(n), got=observed.values)
        latencies.append((time.perf_counter() - sent) * 1000)
    latencies.sort()
    ctx.measure("writes", len(latencies))
    ctx.measure("p50_ms", round(latencies[len(latencies) // 2], 3))
    ctx.measure("p99_ms", round(latencies[int(len(latencies) * 0.99) - 1], 3))
    ctx.measure("max_ms", round(latencies[-1], 3))
