"""kvws: the made-up JSON-over-WebSocket store that docs/adapters.md writes an adapter for.

Requests carry a number ``n`` and are answered in order with ``re``:
``hello`` (room, user), ``put`` (key, value or null), ``read`` (key),
``watch`` (key; the reply names the watch) and ``unwatch`` (watch). Changes come
as ``{"changed": watch, "value": ..., "by": {"id", "name"}}``. One room is one
session; the last write wins; nothing is sent for a watch after its unwatch reply.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import defaultdict
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve


class KvwsServer:
    """A kvws server on an ephemeral loopback port, in a thread of its own."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, str]] = defaultdict(dict)
        # (room, key) -> {watch id: connection}
        self.watchers: dict[tuple[str, str], dict[str, ServerConnection]] = defaultdict(dict)
        self.watch_ids = itertools.count(1)
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def __enter__(self) -> KvwsServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the kvws server did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._connection, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            self.url = f"kvws://127.0.0.1:{port}/"
            self._ready.set()
            await self._stop

    async def _connection(self, ws: ServerConnection) -> None:
        room: str | None = None
        user: dict[str, str] = {}
        mine: dict[str, tuple[str, str]] = {}  # watch id -> (room, key)
        try:
            async for frame in ws:
                request: dict[str, Any] = json.loads(frame)
                reply: dict[str, Any] = {"re": request["n"], "ok": True}
                op = request["op"]
                if op == "hello":
                    room, user = request["room"], request["user"]
                elif room is None:
                    reply = {"re": request["n"], "ok": False, "error": "say hello first"}
                elif op == "put":
                    key, value = request["key"], request["value"]
                    if value is None:
                        self.values[room].pop(key, None)
                    else:
                        self.values[room][key] = value
                    # broadcast() writes without awaiting: no other put can interleave, so
                    # every watcher sees one order of a key's changes.
                    for watch, peer in self.watchers[room, key].items():
                        change = {"changed": watch, "value": value, "by": user}
                        broadcast([peer], json.dumps(change))
                elif op == "read":
                    reply["value"] = self.values[room].get(request["key"])
                elif op == "watch":
                    watch = f"w{next(self.watch_ids)}"
                    mine[watch] = (room, request["key"])
                    self.watchers[room, request["key"]][watch] = ws
                    reply["watch"] = watch
                elif op == "unwatch":
                    place = mine.pop(request["watch"], None)
                    if place is not None:
                        self.watchers[place].pop(request["watch"], None)
                await ws.send(json.dumps(reply))
        finally:
            for watch, place in mine.items():
                self.watchers[place].pop(watch, None)
