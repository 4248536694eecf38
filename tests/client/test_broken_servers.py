"""The clients against servers that break in the ways real ones do: every wait is bounded,
every failure names what happened, and the offending frame is quoted."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from raw_server import raw_server
from websockets.asyncio.server import ServerConnection

from harness.adapters.preflight import preflight_join
from harness.client import aio, sync
from harness.errors import ConnectionLost, PreflightFailed, ProtocolViolation, RequestTimeout


async def silent(ws: ServerConnection) -> None:
    async for _ in ws:
        pass


async def garbage(ws: ServerConnection) -> None:
    async for _ in ws:
        await ws.send("<html>502 Bad Gateway</html>")


async def closes_mid_request(ws: ServerConnection) -> None:
    async for frame in ws:
        request = orjson.loads(frame)
        if request["type"] == "join":
            await ws.send(joined(request["id"]))
        else:
            await ws.close(1011, "crashed")


async def floods_updates(ws: ServerConnection) -> None:
    async for frame in ws:
        request = orjson.loads(frame)
        if request["type"] == "join":
            await ws.send(joined(request["id"]))
        elif request["type"] == "observe":
            await ws.send(
                orjson.dumps(
                    {"type": "observing", "id": request["id"], "observerId": "o1"}
                ).decode()
            )
            for n in range(20_000):
                await ws.send(update("o1", request["key"], str(n)))
        else:
            await ws.send(
                orjson.dumps(
                    {"type": "value", "id": request["id"], "key": request["key"], "value": "19999"}
                ).decode()
            )


def joined(request_id: int) -> str:
    return orjson.dumps(
        {"type": "joined", "id": request_id, "session": "s",
         "participant": {"id": "p", "name": ""},
         "limits": {"maxKeys": 100, "maxValueBytes": 1024}}
    ).decode()  # fmt: skip


def update(observer_id: str, key: str, value: str) -> str:
    return orjson.dumps(
        {"type": "update", "observerId": observer_id, "key": key, "value": value,
         "updatedBy": {"id": "q", "name": ""}}
    ).decode()  # fmt: skip


def test_a_silent_server_times_out_each_request_and_fails_preflight(run):
    with raw_server(silent) as url:
        with pytest.raises(PreflightFailed, match="did not answer a join within 1s"):
            run(preflight_join(url, timeout=1))
        with sync.connect(url, request_timeout=0.5) as client, pytest.raises(RequestTimeout):
            client.join("s", "p")


@pytest.mark.parametrize("front_end", ["aio", "sync"])
def test_garbage_is_a_protocol_violation_quoting_the_frame(run, front_end):
    with raw_server(garbage) as url:
        if front_end == "sync":
            with (
                sync.connect(url, request_timeout=5) as client,
                pytest.raises(ProtocolViolation, match="502 Bad Gateway"),
            ):
                client.join("s", "p")
            return

        async def scenario() -> None:
            async with aio.connect(url, request_timeout=5) as client:
                with pytest.raises(ProtocolViolation, match="502 Bad Gateway"):
                    await client.join("s", "p")

        run(scenario())


def test_a_close_mid_request_fails_the_request_with_the_close_code():
    with raw_server(closes_mid_request) as url, sync.connect(url, request_timeout=5) as client:
        client.join("s", "p")
        with pytest.raises(ConnectionLost, match="1011"):
            client.get("k")


def test_a_flood_of_updates_does_not_starve_replies(run):
    with raw_server(floods_updates) as url:

        async def scenario() -> int:
            received = 0

            def count(value: str | None, by: object) -> None:
                nonlocal received
                received += 1

            async with aio.connect(url, request_timeout=30) as client:
                await client.join("s", "p")
                await client.observe("k", count)
                assert await client.get("k") == "19999"
            return received

        assert run(scenario()) == 20_000


def test_swarm_against_a_silent_server_ends_quickly_with_a_reason(tmp_path):
    with raw_server(silent) as url:
        done = subprocess.run(
            [sys.executable, "-m", "harness", "swarm", "--url", url, "--out", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert "did not answer a join" in done.stderr and "Traceback" not in done.stderr
