"""Raw WebSocket access to the reference server, for frames no client would send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from harness.protocol.schema import schema_problems

#: How long a test waits for one frame before it fails rather than hangs.
FRAME_WAIT = 5.0


class Wire:
    """One raw connection: send any frame, read replies as JSON objects.

    Every frame read is checked against the published schema, so each test
    also checks R1.4 for the replies it provokes.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = iter(range(1000, 1_000_000))

    def next_id(self) -> int:
        return next(self._ids)

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, dict):
            frame = orjson.dumps(frame).decode()
        await self.ws.send(frame)

    async def receive(self) -> dict[str, Any]:
        async with asyncio.timeout(FRAME_WAIT):
            frame = await self.ws.recv()
        assert isinstance(frame, str), f"the server sent a binary frame: {frame!r}"
        assert schema_problems(frame) == [], frame
        return orjson.loads(frame)

    async def request(self, frame: dict[str, Any] | str | bytes) -> dict[str, Any]:
        await self.send(frame)
        return await self.receive()

    async def join(self, session: str = "s", participant: str = "p", name: str = "") -> None:
        reply = await self.request(
            {
                "type": "join",
                "id": self.next_id(),
                "session": session,
                "participant": {"id": participant, "name": name},
            }
        )
        assert reply["type"] == "joined", reply

    async def set(self, key: str, value: str | None) -> dict[str, Any]:
        return await self.request({"type": "set", "id": self.next_id(), "key": key, "value": value})

    async def get(self, key: str) -> str | None:
        reply = await self.request({"type": "get", "id": self.next_id(), "key": key})
        assert reply["type"] == "value", reply
        return reply["value"]

    async def observe(self, key: str) -> str:
        reply = await self.request({"type": "observe", "id": self.next_id(), "key": key})
        assert reply["type"] == "observing", reply
        return reply["observerId"]

    async def refused(
        self, frame: dict[str, Any] | str | bytes, code: str, request_id: int | None
    ) -> dict[str, Any]:
        """Send ``frame`` and check it earns error ``code`` carrying ``request_id`` (R5.1)."""
        reply = await self.request(frame)
        assert reply["type"] == "error", reply
        assert (reply["code"], reply["id"]) == (code, request_id), reply
        return reply

    async def close_code(self) -> int | None:
        """Wait for the server to close this connection; its close code."""
        async with asyncio.timeout(FRAME_WAIT):
            await self.ws.wait_closed()
        return self.ws.close_code


OpenWire = Callable[..., contextlib.AbstractAsyncContextManager[Wire]]


@pytest.fixture
def wire(server_url: str) -> OpenWire:
    """``async with wire() as w``: a raw connection to the test's server (or to ``url``)."""

    @contextlib.asynccontextmanager
    async def open_wire(url: str = server_url) -> AsyncIterator[Wire]:
        async with connect(url, ping_interval=None, max_size=None, close_timeout=1) as ws:
            yield Wire(ws)

    return open_wire
