from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from harness.client.aio import WRITE_EVERY, StoreClient, connect
from harness.client.core import ClientListener
from harness.errors import ConnectionLost, ProtocolViolation, RequestTimeout, StoreError
from harness.protocol import Error, ErrorCode, Participant, Update, Value


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


# --- against servers that misbehave on purpose ---------------------------------

JOINED = (
    '{"type":"joined","id":%d,"session":"s","participant":{"id":"p","name":""},'
    '"limits":{"maxKeys":100,"maxValueBytes":1024}}'
)
Script = Callable[[ServerConnection, dict[str, Any]], Awaitable[None]]


@contextlib.asynccontextmanager
async def scripted_server(script: Script) -> AsyncIterator[str]:
    """A tiny server that answers join properly and hands every other request to ``script``."""

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                request = orjson.loads(frame)
                if request["type"] == "join":
                    await ws.send(JOINED % request["id"])
                else:
                    await script(ws, request)

    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


class Recorder(ClientListener):
    """Every hook call, in order, with its time."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int | None, object, int]] = []

    def request_sent(self, client, pending):
        self.events.append(("sent", pending.id, pending.request, pending.sent_ns))

    def request_done(self, client, pending, reply, done_ns):
        self.events.append(("done", pending.id, reply, done_ns))

    def update_received(self, client, update, received_ns):
        self.events.append(("update", None, update, received_ns))


def test_request_timeout_completes_as_unknown_and_ignores_the_late_reply(run):
    held: list[dict[str, Any]] = []

    async def hold_first_get(ws: ServerConnection, request: dict[str, Any]) -> None:
        # The first get is answered only when the next request arrives: late, but in order.
        if not held:
            held.append(request)
            return
        for r in (held.pop(), request):
            reply = {"type": "value", "id": r["id"], "key": r["key"], "value": "v"}
            await ws.send(orjson.dumps(reply).decode())

    async def scenario():
        recorder = Recorder()
        async with (
            scripted_server(hold_first_get) as url,
            connect(url, request_timeout=0.2, listeners=[recorder]) as client,
        ):
            await client.join("s", "p")
            with pytest.raises(RequestTimeout):
                await client.get("held")
            assert recorder.events[-1][:3] == ("done", 2, None)
            client.options = replace(client.options, request_timeout=10)
            assert await client.get("next") == "v"
        done = [(e[1], e[2]) for e in recorder.events if e[0] == "done"]
        assert [request_id for request_id, _ in done] == [1, 2, 3]  # request 2 reported once
        assert done[1][1] is None and isinstance(done[2][1], Value)

    run(scenario())


def test_a_dropped_connection_fails_every_pending_request(run):
    received: list[int] = []

    async def drop_after_three(ws: ServerConnection, request: dict[str, Any]) -> None:
        received.append(request["id"])
        if len(received) == 3:
            await ws.close(1011, "going away mid-flight")

    async def scenario():
        recorder = Recorder()
        async with (
            scripted_server(drop_after_three) as url,
            connect(url, request_timeout=30, listeners=[recorder]) as client,
        ):
            await client.join("s", "p")
            outcomes = await asyncio.gather(
                *(client.get(f"k{n}") for n in range(3)), return_exceptions=True
            )
            assert all(isinstance(o, ConnectionLost) for o in outcomes), outcomes
            assert {o.close_code for o in outcomes} == {1011}
            with pytest.raises(ConnectionLost):
                await client.get("after")
        unknown = [e[1] for e in recorder.events if e[0] == "done" and e[2] is None]
        assert sorted(unknown) == [2, 3, 4, 5]

    run(scenario())


MALFORMED_REPLIES = {
    "id not an integer": lambda r: orjson.dumps({"type": "ok", "id": str(r["id"])}),
    "unknown type": lambda r: orjson.dumps({"type": "okay", "id": r["id"]}),
    "wrong reply type": lambda r: orjson.dumps(
        {"type": "observing", "id": r["id"], "observerId": "o"}
    ),
    "unknown id": lambda r: orjson.dumps({"type": "ok", "id": r["id"] + 100}),
    "update for no observer": lambda r: orjson.dumps(
        {
            "type": "update",
            "observerId": "o9",
            "key": "k",
            "value": "v",
            "updatedBy": {"id": "x", "name": ""},
        }
    ),
    "not JSON": lambda r: b'{"type": "ok", ',
    "binary frame": lambda r: b"\x00\x01",
}


@pytest.mark.parametrize("make_frame", MALFORMED_REPLIES.values(), ids=MALFORMED_REPLIES.keys())
def test_a_malformed_frame_raises_protocol_violation_quoting_it(run, make_frame):
    sent: list[bytes] = []

    async def misbehave(ws: ServerConnection, request: dict[str, Any]) -> None:
        frame = make_frame(request)
        sent.append(frame)
        binary = frame.startswith(b"\x00")
        await ws.send(frame if binary else frame.decode())

    async def scenario():
        async with scripted_server(misbehave) as url, connect(url, request_timeout=30) as client:
            await client.join("s", "p")
            with pytest.raises(ProtocolViolation) as violation:
                await client.set("k", "v")
            quoted = violation.value.frame
            assert (quoted if isinstance(quoted, bytes) else quoted.encode()) == sent[0]
            assert repr(quoted) in str(violation.value)
            with pytest.raises(ProtocolViolation):
                await client.get("k")  # the client stays failed, with the same cause

    run(scenario())


def test_updates_iterator_yields_in_order_and_ends_on_close(server_url, run):
    async def scenario():
        async with connect(server_url) as writer:
            await writer.join("s", "w", "W")
            reader = await connect(server_url).open()
            await reader.join("s", "r")
            stream = reader.updates()
            observer_id = await reader.observe("k")
            for n in range(5):
                await writer.set("k", str(n))
            got = []
            async with asyncio.timeout(10):
                async for update in stream:
                    got.append(update)
                    if len(got) == 5:
                        await reader.close()
            assert got == [
                Update(observer_id, "k", str(n), Participant("w", "W")) for n in range(5)
            ]

    run(scenario())


def test_listener_hooks_see_requests_and_updates_in_order(server_url, run):
    async def scenario():
        recorder = Recorder()
        async with connect(server_url, listeners=[recorder]) as client:
            await client.join("s", "p")
            await client.observe("k")
            await client.set("k", "v")
            await client.get("k")
            with pytest.raises(StoreError):
                await client.get("")
        kinds = [(kind, request_id) for kind, request_id, _, _ in recorder.events]
        # The update for our own write is sent before the ok is handled, or after: both legal.
        without_update = [k for k in kinds if k[0] != "update"]
        assert without_update == [
            ("sent", 1),
            ("done", 1),
            ("sent", 2),
            ("done", 2),
            ("sent", 3),
            ("done", 3),
            ("sent", 4),
            ("done", 4),
            ("sent", 5),
            ("done", 5),
        ]
        assert kinds.count(("update", None)) == 1
        assert kinds.index(("update", None)) > kinds.index(("sent", 3))
        times = [event[3] for event in recorder.events]
        assert times == sorted(times)  # monotonic_ns, taken as events happen
        last = recorder.events[-1]
        assert isinstance(last[2], Error) and last[2].code is ErrorCode.INVALID_KEY

    run(scenario())


def test_a_request_is_framed_when_called_and_its_reply_resolves_the_returned_future(
    server_url, run
):
    async def scenario():
        recorder = Recorder()
        async with connect(server_url, listeners=[recorder]) as client:
            await client.join("s", "p")
            reply = client.set("k", "v")
            # Sent already, before any await: the send time is when it was framed.
            assert recorder.events[-1][:2] == ("sent", 2)
            assert isinstance(reply, asyncio.Future)
            assert await reply is None
            assert recorder.events[-1][:2] == ("done", 2)

    run(scenario())


def test_a_pipeline_longer_than_one_write_is_answered_in_request_order(server_url, run):
    async def scenario():
        async with connect(server_url) as client:
            await client.join("s", "p")
            count = 3 * WRITE_EVERY + 1  # written in several chunks within one loop turn
            requests = []
            for n in range(count):
                requests += [client.set(f"k{n % 7}", str(n)), client.get(f"k{n % 7}")]
            results = await asyncio.gather(*requests)
            assert results == [r for n in range(count) for r in (None, str(n))]

    run(scenario())


def test_a_request_on_a_closed_client_fails_when_awaited(server_url, run):
    async def scenario():
        client = await connect(server_url).open()
        await client.close()
        reply = client.get("k")  # no exception yet: the caller's await raises it
        with pytest.raises(ConnectionLost):
            await reply

    run(scenario())
