from __future__ import annotations

import asyncio

import pytest

from harness.client.aio import StoreClient, connect
from harness.errors import ConnectionLost, StoreError
from harness.protocol import ErrorCode, Participant


def test_set_get_observe_round_trip(server_url, run):
    async def scenario():
        async with connect(server_url) as alice, connect(server_url) as bob:
            joined = await alice.join("s1", "alice", "Alice")
            await bob.join("s1", "bob", "Bob")
            assert joined.limits.max_keys == 100 and joined.limits.max_value_bytes == 1024
            seen: list[tuple[str | None, Participant]] = []
            got = asyncio.Event()

            def on_update(value, by):
                seen.append((value, by))
                got.set()

            await bob.observe("BLOCK_CHAT", on_update)
            await alice.set("BLOCK_CHAT", "true")
            await asyncio.wait_for(got.wait(), 5)
            assert seen == [("true", Participant("alice", "Alice"))]
            assert await bob.get("BLOCK_CHAT") == "true"
            assert await bob.get("absent") is None

    run(scenario())


def test_store_error_carries_code(server_url, run):
    async def scenario():
        async with connect(server_url) as client:
            with pytest.raises(StoreError) as caught:
                await client.get("k")
            assert caught.value.code is ErrorCode.NOT_JOINED

    run(scenario())


def test_unreachable_server_fails_fast(run):
    async def scenario():
        with pytest.raises(ConnectionLost, match="could not connect"):
            await StoreClient("ws://127.0.0.1:9/", connect_timeout=2).open()

    run(scenario())
