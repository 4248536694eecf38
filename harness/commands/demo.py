"""A few participants in one session exercise every operation and report what they saw.

With no --url it starts the embedded reference server first.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from harness.client.aio import StoreClient
from harness.client.base import ClientListener
from harness.errors import StoreError
from harness.protocol import PendingRequest, Reply, request_name


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="server to test (default: start the embedded reference)")
    parser.add_argument("--participants", type=int, default=5, help="participants (default 5)")
    parser.add_argument("--writes", type=int, default=20, help="writes per participant")
    parser.add_argument("--session", default=f"demo-{int(time.time())}", help="session name")


class _Latencies(ClientListener):
    def __init__(self) -> None:
        self.by_operation: dict[str, list[int]] = {}

    def request_done(
        self, client: object, pending: PendingRequest, reply: Reply | None, done_ns: int
    ) -> None:
        if reply is not None and pending.request is not None:
            name = request_name(pending.request)
            self.by_operation.setdefault(name, []).append(done_ns - pending.sent_ns)


async def _demo(url: str, participants: int, writes: int, session: str) -> int:
    latencies = _Latencies()
    clients = [StoreClient(url, listeners=[latencies]) for _ in range(participants)]
    received: dict[int, list[str | None]] = {i: [] for i in range(participants)}
    for i, client in enumerate(clients):
        await client.open()
        await client.join(session, f"p{i}", f"Participant {i}")
        await client.observe("notes", lambda value, by, i=i: received[i].append(value))
    moderator = clients[0]
    flag_seen = asyncio.Event()
    observer = await clients[-1].observe("BLOCK_CHAT", lambda value, by: flag_seen.set())
    await moderator.set("BLOCK_CHAT", "true")
    await asyncio.wait_for(flag_seen.wait(), 5)
    await clients[-1].stop_observing(observer)

    async def write(i: int) -> None:
        for n in range(writes):
            await clients[i].set("notes", f"p{i}#{n}")

    await asyncio.gather(*(write(i) for i in range(participants)))
    final = [await client.get("notes") for client in clients]
    await moderator.delete("BLOCK_CHAT")
    errors = 0
    try:
        await moderator.set("", "x")
    except StoreError as exc:
        errors += 1
        print(f"  an empty key is refused as expected: {exc.code}")
    await asyncio.sleep(0.2)  # let the last updates arrive before counting
    for client in clients:
        await client.close()

    expected = participants * writes
    converged = len(set(final)) == 1 and all(seq[-1] == final[0] for seq in received.values())
    complete = all(len(seq) == expected for seq in received.values())
    print(f"session {session!r} at {url}: {participants} participants, {expected} writes")
    for name, values in sorted(latencies.by_operation.items()):
        ms = sorted(v / 1e6 for v in values)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"  {name:<14} n={len(ms):<5} p50={statistics.median(ms):.3f}ms p99={p99:.3f}ms")
    print(f"  every observer got every write: {'yes' if complete else 'NO'}")
    print(
        f"  all participants read the same last value {final[0]!r}: {'yes' if converged else 'NO'}"
    )
    return 0 if complete and converged and errors == 1 else 1


def run(args: argparse.Namespace) -> int:
    async def main() -> int:
        if args.url:
            return await _demo(args.url, args.participants, args.writes, args.session)
        from harness.server.aio import ReferenceServer

        async with ReferenceServer(port=0) as server:
            return await _demo(server.url, args.participants, args.writes, args.session)

    return asyncio.run(main())
