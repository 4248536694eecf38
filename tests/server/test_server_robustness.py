"""What one misbehaving connection may do to the others: nothing (R1.6, R4.7)."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from harness.client.aio import connect
from harness.errors import ConnectionLost
from harness.protocol import Set
from harness.server.aio import Connection, ReferenceServer
from harness.server.embedded import EmbeddedServer, ServerProcess

WAIT = 10.0


def test_an_oversized_frame_closes_only_that_connection(wire, run):
    async def scenario():
        async with wire() as big, wire() as other:
            await big.join()
            await other.join()
            await other.observe("k")
            head = '{"type":"set","id":1,"key":"k","value":"'
            padding = 64 * 1024 - len(head) - 2
            at_limit = head + "x" * padding + '"}'
            assert len(at_limit.encode()) == 64 * 1024
            await big.refused(at_limit, "VALUE_TOO_LARGE", 1)  # the limit itself is allowed
            await big.send(head + "x" * (padding + 1) + '"}')
            assert await big.close_code() == 1009
            assert (await other.set("k", "still here"))["type"] == "ok"
            assert (await other.receive())["value"] == "still here"

    run(scenario())


class ExplodingServer(ReferenceServer):
    """A server with a bug that only writes to the key 'boom' meet."""

    def handle_set(self, conn: Connection, request: Set) -> None:
        if request.key == "boom":
            raise RuntimeError("deliberate bug for the test")
        super().handle_set(conn, request)


def test_an_internal_error_on_one_connection_spares_the_others(run):
    async def scenario(url: str):
        async with connect(url) as victim, connect(url) as bystander:
            await victim.join("s", "victim")
            await bystander.join("s", "bystander")
            updates = bystander.updates()
            await bystander.observe("k")
            with pytest.raises(ConnectionLost) as lost:
                await victim.set("boom", "v")
            assert lost.value.close_code == 1011
            await bystander.set("k", "fine")
            assert await bystander.get("k") == "fine"
            async with asyncio.timeout(WAIT):
                update = await anext(updates)
            assert update.value == "fine"

    with EmbeddedServer(ExplodingServer) as server:
        run(scenario(server.url))


async def stalled_observer(url: str, port: int) -> ClientConnection:
    """Join as 'slow', observe 'k', then never read again.

    A tiny receive buffer and a one-frame client queue make the server's
    writes to this connection back up after a few kilobytes.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    ws = await ws_connect(url, sock=sock, max_queue=1, ping_interval=None, close_timeout=0.5)
    await ws.send(orjson.dumps(join_frame("slow")).decode())
    await ws.recv()
    await ws.send('{"type":"observe","id":2,"key":"k"}')
    await ws.recv()
    return ws


def join_frame(participant: str) -> dict[str, object]:
    return {"type": "join", "id": 1, "session": "s", "participant": {"id": participant, "name": ""}}


def slow_connection(server: EmbeddedServer) -> Connection:
    def find() -> Connection:
        [conn] = [
            c for c in server.server.connections if c.participant and c.participant.id == "slow"
        ]
        return conn

    return server.call(find)


def shrink_send_buffer(server: EmbeddedServer) -> None:
    """Stop the kernel absorbing megabytes for the stalled peer (send buffers autotune to 4 MB)."""
    conn = slow_connection(server)
    sock = conn.websocket.transport.get_extra_info("socket")
    server.call(lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096))


@pytest.mark.parametrize("max_outbox_frames", [10_000, 50], ids=["queued", "cut-off"])
def test_a_participant_that_stops_reading_delays_nobody(run, max_outbox_frames):
    writes, value = 1000, "x" * 1000  # about 1 MB, far beyond what the stalled socket absorbs

    async def scenario(server: EmbeddedServer):
        url = server.url
        slow = await stalled_observer(url, server.server.port)
        shrink_send_buffer(server)
        try:
            async with connect(url) as writer, connect(url) as observer:
                await writer.join("s", "writer")
                await observer.join("s", "observer")
                seen: list[str | None] = []
                done = asyncio.Event()

                def on_update(v: str | None, by: object) -> None:
                    seen.append(v)
                    if len(seen) == writes:
                        done.set()

                await observer.observe("k", on_update)
                for n in range(writes):
                    await writer.set("k", f"{n}:{value}")
                async with asyncio.timeout(WAIT):
                    await done.wait()
                assert [v.partition(":")[0] for v in seen] == [str(n) for n in range(writes)]
                # The stalled participant really was stalled, or this proved nothing.
                conn = slow_connection(server)
                if max_outbox_frames < writes:
                    assert conn.closing  # the server cut it off (R4.7 allows it)
                else:
                    assert len(conn.outbox) > 0
        finally:
            slow.transport.abort()

    with EmbeddedServer(max_outbox_frames=max_outbox_frames) as server:
        run(scenario(server))


def test_the_serve_command_starts_and_answers(run):
    async def scenario(url: str):
        async with connect(url) as client:
            joined = await client.join("s", "p")
            assert joined.limits.max_keys == 7
            await client.set("k", "v")
            assert await client.get("k") == "v"

    with ServerProcess(["--max-keys", "7"]) as process:
        assert process.url.startswith("ws://127.0.0.1:")
        run(scenario(process.url))
