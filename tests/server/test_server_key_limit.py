"""KEY_LIMIT_EXCEEDED (R3.6): the limit counts keys holding a value, per session."""

from __future__ import annotations

import asyncio

import pytest

from harness.client.aio import StoreClient, connect
from harness.errors import StoreError
from harness.protocol import ErrorCode


async def fill(client: StoreClient, count: int, prefix: str = "k") -> None:
    await asyncio.gather(*(client.set(f"{prefix}{n}", "v") for n in range(count)))


async def refused_code(client: StoreClient, key: str, value: str | None = "v") -> ErrorCode:
    with pytest.raises(StoreError) as refused:
        await client.set(key, value)
    return refused.value.code


def test_sequential_writes_stop_at_the_advertised_limit(server_url, run):
    async def scenario():
        async with connect(server_url) as client:
            joined = await client.join("s", "p")
            limit = joined.limits.max_keys
            for n in range(limit):
                await client.set(f"k{n}", "v")
            assert await refused_code(client, "one-too-many") is ErrorCode.KEY_LIMIT_EXCEEDED
            assert await client.get("one-too-many") is None

    run(scenario())


def test_overwrite_and_delete_at_the_limit(server_url, run):
    async def scenario():
        async with connect(server_url) as client:
            await client.join("s", "p")
            await fill(client, 100)
            await client.set("k0", "overwritten")  # not a new key: accepted
            assert await client.get("k0") == "overwritten"
            await client.delete("never-set")  # deleting an absent key is a write, not a new key
            await client.delete("k1")
            await client.set("new", "v")  # the delete freed a slot
            assert await refused_code(client, "newer") is ErrorCode.KEY_LIMIT_EXCEEDED
            # The empty string is a value (R3.2), so it needs a slot like any other.
            assert await refused_code(client, "k1", "") is ErrorCode.KEY_LIMIT_EXCEEDED
            assert await client.get("k1") is None

    run(scenario())


def test_keys_of_several_participants_count_together(server_url, run):
    async def scenario():
        async with connect(server_url) as a, connect(server_url) as b, connect(server_url) as c:
            for client, name in ((a, "alice"), (b, "bob"), (c, "carol")):
                await client.join("s", name)
            await fill(a, 60, "a")
            await fill(b, 40, "b")
            assert await refused_code(c, "c0") is ErrorCode.KEY_LIMIT_EXCEEDED
            await b.delete("b0")
            await c.set("c0", "v")

    run(scenario())


def test_each_session_has_its_own_limit(server_url, run):
    async def scenario():
        async with connect(server_url) as full, connect(server_url) as other:
            await full.join("full", "p")
            await other.join("other", "p")
            await fill(full, 100)
            await fill(other, 100)
            assert await refused_code(full, "x") is ErrorCode.KEY_LIMIT_EXCEEDED
            assert await refused_code(other, "x") is ErrorCode.KEY_LIMIT_EXCEEDED

    run(scenario())


def test_a_race_of_many_connections_admits_exactly_the_limit(server_url, run):
    connections, keys_each = 25, 8  # 200 distinct keys race for 100 slots

    async def writer(index: int, everyone_joined: asyncio.Barrier) -> list[bool]:
        async with connect(server_url) as client:
            await client.join("race", f"p{index}")
            await everyone_joined.wait()  # so the writes of all connections overlap
            outcomes = await asyncio.gather(
                *(client.set(f"p{index}-k{n}", "v") for n in range(keys_each)),
                return_exceptions=True,
            )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, StoreError), outcome
                assert outcome.code is ErrorCode.KEY_LIMIT_EXCEEDED
        return [outcome is None for outcome in outcomes]

    async def scenario():
        barrier = asyncio.Barrier(connections)
        results = await asyncio.gather(*(writer(i, barrier) for i in range(connections)))
        admitted = sum(sum(flags) for flags in results)
        assert admitted == 100
        async with connect(server_url) as reader:
            await reader.join("race", "reader")
            held = await asyncio.gather(
                *(reader.get(f"p{i}-k{n}") for i in range(connections) for n in range(keys_each))
            )
            assert sum(value is not None for value in held) == 100

    run(scenario())
