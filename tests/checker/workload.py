"""A concurrent workload recorded into a history, for the checker's live tests."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from harness.client.aio import StoreClient, connect
from harness.errors import StoreError
from harness.history.recorder import HistoryRecorder
from harness.run.values import make_value
from harness.server.aio import ReferenceServer


async def record_workload(
    server_class: type[ReferenceServer] = ReferenceServer,
    *,
    clients: int = 8,
    keys: int = 3,
    rounds: int = 10,
    pipeline: int = 3,
    churn: bool = False,
    seed: int = 1,
    **server_options: Any,
) -> HistoryRecorder:
    """Participants observe every key, then write and read them concurrently, pipelined.

    After a short settle every participant reads every key (the quiescent reads the
    convergence check judges) and closes. With ``churn`` some observers stop and
    start again mid-run.
    """
    rng = random.Random(seed)
    recorder = HistoryRecorder()
    names = [f"k{i}" for i in range(keys)]
    async with server_class(port=0, **server_options) as server:
        participants: list[StoreClient] = []
        for index in range(clients):
            client = await connect(server.url, listeners=[recorder]).open()
            await client.join("live", f"p{index}")
            for key in names:
                await client.observe(key)
            participants.append(client)

        async def work(index: int, client: StoreClient) -> None:
            sequence = 0
            for _ in range(rounds):
                batch = []
                for _ in range(pipeline):
                    key = rng.choice(names)
                    if rng.random() < 0.7:
                        sequence += 1
                        batch.append(client.set(key, make_value(f"p{index}", sequence)))
                    else:
                        batch.append(client.get(key))
                await asyncio.gather(*batch)
                if churn and rng.random() < 0.2:
                    observer = next(iter(client.observers))
                    key = client.observers[observer].key
                    await client.stop_observing(observer)
                    await client.observe(key)

        await asyncio.gather(*(work(i, c) for i, c in enumerate(participants)))
        await asyncio.sleep(0.2)  # let in-flight updates land before the final reads
        for client in participants:
            for key in names:
                await client.get(key)
        for client in participants:
            await client.close()
    return recorder


async def fill_keys(
    server_class: type[ReferenceServer], *, sessions: int, keys: int
) -> HistoryRecorder:
    """One participant per session creates ``keys`` keys, one after another."""
    recorder = HistoryRecorder()
    async with server_class(port=0) as server:
        for session in range(sessions):
            async with connect(server.url, listeners=[recorder]) as client:
                await client.join(f"s{session}", f"p{session}")
                for index in range(keys):
                    with contextlib.suppress(StoreError):
                        await client.set(f"k{index}", make_value(f"p{session}", index))
    return recorder
