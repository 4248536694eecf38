"""The semantic points of docs/protocol.md sections 2 to 4, over real sockets.

"Nothing else arrived" is checked without timing: after the writes under test,
a sentinel write is made that the observer must see next, and since a server
delivers each connection's frames in order, anything wrongly delivered would
have come first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from harness.client.aio import StoreClient, connect
from harness.errors import StoreError
from harness.protocol import ErrorCode, Participant, Update

WAIT = 10.0


async def take(updates: AsyncIterator[Update], count: int) -> list[Update]:
    got: list[Update] = []
    async with asyncio.timeout(WAIT):
        async for update in updates:
            got.append(update)
            if len(got) == count:
                break
    return got


async def joined(url: str, session: str, participant: str, name: str = "") -> StoreClient:
    client = await connect(url).open()
    await client.join(session, participant, name)
    return client


def test_sessions_are_isolated(server_url, run):
    async def scenario():
        a = await joined(server_url, "s1", "alice")
        b = await joined(server_url, "s2", "bob")
        try:
            b_updates = b.updates()
            await b.observe("k")
            await a.set("k", "from-s1")
            assert await b.get("k") is None
            await b.set("k", "sentinel")
            [update] = await take(b_updates, 1)
            assert update.value == "sentinel"
            assert await a.get("k") == "from-s1"
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_empty_string_is_a_value_and_deleting_an_absent_key_notifies(server_url, run):
    async def scenario():
        async with connect(server_url) as writer, connect(server_url) as observer:
            await writer.join("s", "alice", "Alice")
            await observer.join("s", "bob")
            updates = observer.updates()
            observer_id = await observer.observe("k")
            await writer.set("k", "")
            assert await observer.get("k") == ""
            await writer.delete("k")
            assert await observer.get("k") is None
            await writer.delete("k")  # already absent: still a write (R3.2)
            alice = Participant("alice", "Alice")
            assert await take(updates, 3) == [
                Update(observer_id, "k", "", alice),
                Update(observer_id, "k", None, alice),
                Update(observer_id, "k", None, alice),
            ]

    run(scenario())


def test_exactly_once_to_every_observer_including_the_writers_own(server_url, run):
    values = [f"v{n}" for n in range(30)]

    async def scenario():
        async with connect(server_url) as writer, connect(server_url) as other:
            await writer.join("s", "alice")
            await other.join("s", "bob")
            writer_updates, other_updates = writer.updates(), other.updates()
            own = await writer.observe("k")
            theirs = [await other.observe("k"), await other.observe("k")]
            elsewhere = await other.observe("unrelated")
            for value in values:
                await writer.set("k", value)
            await writer.set("k", "sentinel")
            expected = [*values, "sentinel"]
            got_own = await take(writer_updates, len(expected))
            assert [(u.observer_id, u.value) for u in got_own] == [(own, v) for v in expected]
            got_other = await take(other_updates, 2 * len(expected))
            for observer_id in theirs:
                mine = [u.value for u in got_other if u.observer_id == observer_id]
                assert mine == expected
            assert all(u.observer_id != elsewhere for u in got_other)

    run(scenario())


def test_all_observers_see_concurrent_writes_in_one_order(server_url, run):
    writers, writes_each, observers = 4, 25, 3
    total = writers * writes_each

    async def write_all(index: int) -> None:
        async with connect(server_url) as client:
            await client.join("s", f"w{index}")
            await asyncio.gather(*(client.set("k", f"w{index}#{n}") for n in range(writes_each)))

    async def scenario():
        watchers = [await joined(server_url, "s", f"o{i}") for i in range(observers)]
        try:
            streams = [w.updates() for w in watchers]
            for watcher in watchers:
                await watcher.observe("k")
            await asyncio.gather(*(write_all(i) for i in range(writers)))
            seen = [[u.value for u in await take(s, total)] for s in streams]
            assert seen[0] == seen[1] == seen[2]
            order = seen[0]
            assert sorted(order) == sorted(
                f"w{i}#{n}" for i in range(writers) for n in range(writes_each)
            )
            for index in range(writers):  # one connection's writes apply in order (R1.3)
                own = [v for v in order if v.startswith(f"w{index}#")]
                assert own == [f"w{index}#{n}" for n in range(writes_each)]
            assert await watchers[0].get("k") == order[-1]  # last write wins (R3.9)
        finally:
            for watcher in watchers:
                await watcher.close()

    run(scenario())


def test_one_connection_several_observers_same_and_other_keys(server_url, run):
    async def scenario():
        async with connect(server_url) as client:
            await client.join("s", "p")
            calls: dict[str, list[str | None]] = {"a1": [], "a2": [], "b": []}
            a1 = await client.observe("a", lambda v, by: calls["a1"].append(v))
            a2 = await client.observe("a", lambda v, by: calls["a2"].append(v))
            b = await client.observe("b", lambda v, by: calls["b"].append(v))
            assert len({a1, a2, b}) == 3
            updates = client.updates()
            await client.set("a", "1")
            await client.set("b", "2")
            await take(updates, 3)
            assert calls == {"a1": ["1"], "a2": ["1"], "b": ["2"]}

    run(scenario())


def test_one_participant_on_two_connections(server_url, run):
    async def scenario():
        phone = await joined(server_url, "s", "alice", "Alice")
        laptop = await joined(server_url, "s", "alice", "Alice")
        try:
            phone_updates, laptop_updates = phone.updates(), laptop.updates()
            on_phone = await phone.observe("k")
            on_laptop = await laptop.observe("k")
            with pytest.raises(StoreError) as refused:
                await laptop.stop_observing(on_phone)
            assert refused.value.code is ErrorCode.UNKNOWN_OBSERVER
            await phone.set("k", "v")
            [to_phone] = await take(phone_updates, 1)
            [to_laptop] = await take(laptop_updates, 1)
            assert (to_phone.observer_id, to_laptop.observer_id) == (on_phone, on_laptop)
            assert to_phone.updated_by == to_laptop.updated_by == Participant("alice", "Alice")
        finally:
            await phone.close()
            await laptop.close()

    run(scenario())


def test_no_update_follows_stop_observing(server_url, run):
    async def scenario():
        async with connect(server_url) as writer, connect(server_url) as observer:
            await writer.join("s", "w")
            await observer.join("s", "o")
            updates = observer.updates()
            stopped = await observer.observe("k")
            kept = await observer.observe("k")
            await observer.stop_observing(stopped)
            await writer.set("k", "1")
            await writer.set("k", "sentinel")
            got = await take(updates, 2)
            assert [(u.observer_id, u.value) for u in got] == [(kept, "1"), (kept, "sentinel")]

    run(scenario())


def test_disconnect_ends_observers_and_keeps_writes(server, server_url, run):
    def observers_of_k() -> int:
        session = server.server.store.sessions.get("s")
        return 0 if session is None else len(session.observers.get("k", {}))

    async def scenario():
        async with connect(server_url) as stays:
            await stays.join("s", "stays")
            async with connect(server_url) as leaves:
                await leaves.join("s", "leaves")
                await leaves.observe("k")
                await leaves.set("kept", "written before leaving")
                assert server.call(observers_of_k) == 1
            for _ in range(100):  # the server notices the close asynchronously
                if server.call(observers_of_k) == 0:
                    break
                await asyncio.sleep(0.05)
            assert server.call(observers_of_k) == 0
            assert await stays.get("kept") == "written before leaving"
            await stays.set("k", "nobody is listening")

    run(scenario())


def test_a_read_sent_after_the_ack_sees_the_write(server_url, run):
    async def scenario():
        async with connect(server_url) as writer, connect(server_url) as reader:
            await writer.join("s", "w")
            await reader.join("s", "r")
            for n in range(50):
                await writer.set("k", f"v{n}")
                assert await reader.get("k") == f"v{n}"

    run(scenario())


def test_pipelined_replies_come_in_request_order(wire, run):
    async def scenario():
        async with wire() as w:
            await w.join()
            frames: list[dict[str, object]] = []
            for n in range(300):
                match n % 4:
                    case 0:
                        frames.append({"type": "set", "id": n, "key": f"k{n % 7}", "value": str(n)})
                    case 1:
                        frames.append({"type": "get", "id": n, "key": f"k{n % 7}"})
                    case 2:
                        frames.append({"type": "get", "id": n, "key": ""})  # an error reply
                    case _:
                        frames.append({"type": "observe", "id": n, "key": "k"})
            for frame in frames:
                await w.send(frame)
            replies = [await w.receive() for _ in frames]
            assert [r["id"] for r in replies] == list(range(300))
            expected = {0: "ok", 1: "value", 2: "error", 3: "observing"}
            assert [r["type"] for r in replies] == [expected[n % 4] for n in range(300)]

    run(scenario())
