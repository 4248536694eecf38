"""A scripted store that answers joins and keeps each opening handshake's request headers.

recording = Recording()
with raw_server(recording, subprotocols=["store.v1"]) as url:
    ...
recording.requests[0]["Authorization"]
"""

from __future__ import annotations

import orjson
from websockets.asyncio.server import ServerConnection


class Recording:
    """A scripted store that answers joins and keeps each handshake's request headers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.subprotocols: list[str | None] = []

    async def __call__(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.requests.append(dict(ws.request.headers.raw_items()))
        self.subprotocols.append(ws.subprotocol)
        async for frame in ws:
            request = orjson.loads(frame)
            if request["type"] == "join":
                reply = {"type": "joined", "id": request["id"], "session": request["session"],
                         "participant": request["participant"],
                         "limits": {"maxKeys": 100, "maxValueBytes": 1024}}  # fmt: skip
                await ws.send(orjson.dumps(reply).decode())
