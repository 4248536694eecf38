"""The reference server's own limits (docs/protocol.md, "Server limits" next to R1.6):
each ends only the connection that reaches it, and nothing grows across churn."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from harness.cli import build_parser
from harness.client.aio import StoreClient, connect
from harness.errors import ConnectionLost
from harness.protocol import Join
from harness.server.aio import Connection, ReferenceServer
from harness.server.embedded import LISTENING_LINE, EmbeddedServer, ServerProcess

#: Polls of server state, each after a short sleep: a bound on waiting, not a timing claim.
POLLS = 500


async def until(server: EmbeddedServer, condition: Callable[[ReferenceServer], bool]) -> None:
    """Wait (boundedly) until ``condition`` holds of the server's state, read on its loop."""
    for _ in range(POLLS):
        if server.call(lambda: condition(server.server)):  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the server never reached the expected state")


def join_frame(participant: str, session: str = "s") -> str:
    participant_json = {"id": participant, "name": ""}
    frame = {"type": "join", "id": 1, "session": session, "participant": participant_json}
    return orjson.dumps(frame).decode()


# --- unsent frames: a client that pipelines requests and never reads replies ----------


class PipelineWatchServer(ReferenceServer):
    """Records the deepest outbox and every close; shrinks each joined socket's send buffer
    so the kernel cannot absorb megabytes for a peer that does not read (it autotunes to 4 MB).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.deepest_outbox = 0
        self.closes: list[tuple[int, str]] = []

    def handle_join(self, conn: Connection, join: Join) -> None:
        sock = conn.websocket.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        super().handle_join(conn, join)

    def send(self, conn: Connection, frame: bytes) -> None:
        super().send(conn, frame)
        self.deepest_outbox = max(self.deepest_outbox, len(conn.outbox))

    def close(self, conn: Connection, code: int, reason: str) -> None:
        if not conn.closing:
            self.closes.append((code, reason))
        super().close(conn, code, reason)


def test_a_client_pipelining_without_reading_is_cut_off_at_the_outbox_bound(run):
    bound, requests = 50, 2000  # 2000 replies of 1 KB: far beyond every buffer on the way

    async def scenario(server: EmbeddedServer) -> None:
        watch: PipelineWatchServer = server.server  # type: ignore[assignment]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", watch.port))
        # max_queue=1: the client stops reading its socket once one frame waits unread.
        ws = await ws_connect(server.url, sock=sock, max_queue=1, ping_interval=None)
        try:
            await ws.send(join_frame("pipeliner"))
            await ws.recv()
            big = {"type": "set", "id": 2, "key": "k", "value": "x" * 1000}
            await ws.send(orjson.dumps(big).decode())
            assert orjson.loads(await ws.recv())["type"] == "ok"
            sent = 0
            with contextlib.suppress(ConnectionClosed):  # the cut-off may come mid-pipeline
                for n in range(requests):
                    await ws.send(orjson.dumps({"type": "get", "id": n + 3, "key": "k"}).decode())
                    sent += 1
            await until(server, lambda s: not s.connections)
        finally:
            ws.transport.abort()
        assert watch.closes == [(1008, "too slow: outgoing queue is full")]
        assert watch.deepest_outbox <= bound
        assert sent > bound  # it really did pipeline past the bound

    with EmbeddedServer(PipelineWatchServer, max_outbox_frames=bound) as server:
        run(scenario(server))


# --- observers per connection ----------------------------------------------------------


def test_one_observer_too_many_closes_only_that_connection_with_1008(wire, run):
    async def scenario(server: EmbeddedServer) -> None:
        async with wire(server.url) as greedy, wire(server.url) as bystander:
            await greedy.join("s", "greedy")
            await bystander.join("s", "bystander")
            await bystander.observe("k")
            first = [await greedy.observe("k") for _ in range(3)]
            # The limit counts active observers: one stopped frees its place.
            stop = {"type": "stopObserving", "id": 90, "observerId": first[0]}
            assert (await greedy.request(stop))["type"] == "ok"
            await greedy.observe("k")
            await greedy.send({"type": "observe", "id": 91, "key": "k"})
            assert await greedy.close_code() == 1008
            assert "too many observers" in (greedy.ws.close_reason or "")
            await until(server, lambda s: len(s.connections) == 1)
            # The bystander's observer works; the greedy connection's observers are gone.
            assert (await bystander.set("k", "v"))["type"] == "ok"
            assert (await bystander.receive())["value"] == "v"
            session = server.call(lambda: server.server.store.sessions["s"])
            assert {key: len(by_id) for key, by_id in session.observers.items()} == {"k": 1}

    with EmbeddedServer(max_observers_per_connection=3) as server:
        run(scenario(server))


# --- connections -------------------------------------------------------------------------


def test_a_connection_beyond_the_cap_is_closed_with_1013(wire, run):
    async def scenario(server: EmbeddedServer) -> None:
        async with wire(server.url) as first:
            await first.join("s", "first")
            async with wire(server.url) as second:
                await second.join("s", "second")
                async with wire(server.url) as third:
                    assert await third.close_code() == 1013
                    assert "connection limit" in (third.ws.close_reason or "")
                # The two within the cap carry on.
                assert (await second.set("k", "v"))["type"] == "ok"
            await until(server, lambda s: len(s.connections) == 1)
            # A place freed is a place a newcomer gets.
            async with wire(server.url) as newcomer:
                await newcomer.join("s", "newcomer")
                assert await newcomer.get("k") == "v"

    with EmbeddedServer(max_connections=2) as server:
        run(scenario(server))


# --- churn -------------------------------------------------------------------------------


def test_sessions_and_observers_are_freed_across_churn(run):
    cycles, at_once = 200, 10

    async def cycle(url: str, n: int) -> None:
        client = await StoreClient(url).open()
        await client.join(f"churn-{n % 7}", f"p{n}")
        await client.observe("k", lambda value, by: None)
        await client.observe(f"k{n}", lambda value, by: None)
        # A write and its delete: the session ends up holding no key, so it may be forgotten.
        await client.set(f"mine-{n}", "v")
        await client.set(f"mine-{n}", None)
        if n % 5 == 0:
            client._transport.abort()  # an abrupt disconnect must free all a clean close does
        else:
            await client.close()

    async def scenario(server: EmbeddedServer) -> None:
        for start in range(0, cycles, at_once):
            await asyncio.gather(*(cycle(server.url, n) for n in range(start, start + at_once)))
        await until(server, lambda s: not s.connections)
        assert server.call(lambda: dict(server.server.store.sessions)) == {}

    with EmbeddedServer() as server:
        run(scenario(server))


# --- serve: options and the default bind ------------------------------------------------


def test_serve_binds_to_loopback_by_default() -> None:
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    assert ReferenceServer().host == "127.0.0.1"
    # And the running command says so, with no --host given.
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.terminate()
        process.wait(10)
    match = LISTENING_LINE.search(line)
    assert match, line
    assert match.group(1).startswith("ws://127.0.0.1:")
    assert "(access check: off)" in line


def test_serve_exposes_the_limits_as_options(run):
    async def scenario(url: str) -> None:
        async with connect(url) as client:
            await client.join("s", "p")
            async with ws_connect(url, ping_interval=None) as refused:
                with pytest.raises(ConnectionClosed) as closed:
                    await refused.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            await client.observe("a", lambda value, by: None)
            await client.observe("b", lambda value, by: None)
            with pytest.raises(ConnectionLost):
                await client.observe("c", lambda value, by: None)
            await client.wait_closed()
            assert client.close_code == 1008

    options = ["--max-connections", "1", "--max-observers-per-connection", "2"]
    with ServerProcess([*options, "--max-outbox-frames", "100"]) as process:
        run(scenario(process.url))


@pytest.mark.parametrize(
    "option", ["--max-connections", "--max-outbox-frames", "--max-observers-per-connection"]
)
def test_serve_refuses_a_limit_below_one(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["serve", "--port", "0", option, "0"]) == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("command", ["serve", "proxy"])
@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_bad_port_is_one_error_line_not_a_traceback(command: str, port: str) -> None:
    args = [sys.executable, "-m", "harness", command, "--port", port]
    if command == "proxy":
        args += ["--upstream", "ws://127.0.0.1:1/"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"store-harness {command}: error: argument --port: " in done.stderr.splitlines()[-1]
