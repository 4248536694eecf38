"""A bare WebSocket server on 127.0.0.1 that behaves as a test scripts it, on its own thread.

    with raw_server(handler) as url:
        ...

For clients facing servers that break the spec on purpose: nothing of the harness's
own server is in the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.contextmanager
def raw_server(handler: Handler, **options: Any) -> Iterator[str]:
    """Serve ``handler`` (with websockets' ``serve`` ``options``) until the block ends."""
    ready = threading.Event()
    urls: list[str] = []
    stop: list[asyncio.Event] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        async with serve(handler, "127.0.0.1", 0, **options) as server:
            urls.append(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
            ready.set()
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the scripted server did not start"
    try:
        yield urls[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
