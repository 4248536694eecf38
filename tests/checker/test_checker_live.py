"""Live runs: heavy concurrency on the reference server is never flagged; faulty servers are."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from faulty_servers import (
    DroppedNotificationServer,
    DuplicateNotificationServer,
    FailedSetNotifiesServer,
    GlobalKeyLimitServer,
    KeyLimitRaceServer,
    OffByOneKeyLimitServer,
    ReorderingServer,
    StaleReadServer,
)
from replicas import TwoReplicaServer
from workload import fill_keys, record_workload

from harness.checker import check
from harness.server.aio import ReferenceServer

Run = Callable[[Awaitable[Any]], Any]


def test_heavy_concurrency_on_the_reference_server_is_valid(run: Run) -> None:
    recorder = run(record_workload(clients=20, keys=3, rounds=25, pipeline=4, churn=True))
    verdict = check(recorder.history())
    assert verdict.result == "valid", verdict.to_text()
    assert verdict.stats["deliveries_checked"] > 1000
    # Every final read is quiescent; a late read of the workload itself may be too.
    assert verdict.stats["quiescent_gets"] >= 20 * 3


def test_key_limit_on_the_reference_server_is_valid(run: Run) -> None:
    verdict = check(run(fill_keys(ReferenceServer, sessions=2, keys=104)).history())
    assert verdict.result == "valid", verdict.to_text()
    assert verdict.stats["refusals_judged"] == 2 * 4


@pytest.mark.parametrize(
    ("server_class", "kinds"),
    [
        (ReorderingServer, {"order_divergence"}),
        (TwoReplicaServer, {"order_divergence", "convergence"}),
        (DuplicateNotificationServer, {"duplicate_update"}),
        (DroppedNotificationServer, {"gap", "lost_update"}),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_faulty_servers_are_flagged(
    run: Run, server_class: type[ReferenceServer], kinds: set[str]
) -> None:
    verdict = check(run(record_workload(server_class, clients=6, rounds=8)).history())
    assert verdict.result == "invalid"
    assert kinds & set(verdict.counts), verdict.to_text()


def test_stale_reads_are_flagged(run: Run) -> None:
    # Two writes then a read of the same key, quickly: the lagging replica answers.
    verdict = check(run(record_workload(StaleReadServer, clients=4, keys=1, rounds=8)).history())
    assert "stale_read" in verdict.counts, verdict.to_text()
    assert verdict.examples["stale_read"].events


@pytest.mark.parametrize(
    ("server_class", "sessions", "kind"),
    [
        (OffByOneKeyLimitServer, 1, "key_limit_breach"),
        (GlobalKeyLimitServer, 2, "key_limit_refusal"),
    ],
    ids=["off-by-one", "global-limit"],
)
def test_key_limit_faults_are_flagged(
    run: Run, server_class: type[ReferenceServer], sessions: int, kind: str
) -> None:
    verdict = check(run(fill_keys(server_class, sessions=sessions, keys=102)).history())
    assert kind in verdict.counts, verdict.to_text()


def test_failed_writes_seen_by_observers_are_flagged(run: Run) -> None:
    async def scenario() -> Any:
        from harness.client.aio import connect
        from harness.errors import StoreError
        from harness.history.recorder import HistoryRecorder

        recorder = HistoryRecorder()
        async with FailedSetNotifiesServer(port=0) as server:  # noqa: SIM117 (the url comes from the server)
            async with connect(server.url, listeners=[recorder]) as client:
                await client.join("s", "p")
                await client.observe("extra")
                for index in range(101):
                    with contextlib.suppress(StoreError):
                        await client.set("extra" if index == 100 else f"k{index}", f"v{index}")
                await client.get("k0")
        return recorder

    verdict = check(run(scenario()).history())
    assert "failed_write_visible" in verdict.counts, verdict.to_text()


def test_key_limit_race_is_flagged(run: Run) -> None:
    async def scenario() -> Any:
        import asyncio

        from harness.client.aio import connect
        from harness.history.recorder import HistoryRecorder

        recorder = HistoryRecorder()
        async with KeyLimitRaceServer(port=0) as server:
            clients = [connect(server.url, listeners=[recorder]) for _ in range(4)]
            for index, client in enumerate(clients):
                await client.open()
                await client.join("s", f"p{index}")
            for index in range(98):
                await clients[0].set(f"base{index}", f"v{index}")
            # Four creators pass the check at 98 keys at once: the session reaches 102.
            await asyncio.gather(
                *(c.set(f"new{i}", f"n{i}") for i, c in enumerate(clients)),
                return_exceptions=True,
            )
            for client in clients:
                await client.close()
        return recorder

    verdict = check(run(scenario()).history())
    assert "key_limit_breach" in verdict.counts, verdict.to_text()
