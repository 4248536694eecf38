"""An adapter client under asyncio: each blocking call runs on a worker thread.

The conformance suite is asyncio; adapters block (see :mod:`harness.adapters.base`).
:class:`AsyncAdapterClient` gives an :class:`~harness.adapters.bridge.AdapterClient`
the asyncio client's coroutine API, and hands observer callbacks back to the
event loop, so a case's callbacks never run on another thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.adapters.bridge import AdapterClient
from harness.client.core import UpdateCallback
from harness.protocol import Joined, Participant


class AsyncAdapterClient:
    """The asyncio client's API over an adapter; attributes read through to the client."""

    def __init__(self, client: AdapterClient) -> None:
        self.client = client
        # Requests overlapped on one connection reach the adapter in the order they were
        # made, as pipelined requests reach a server (asyncio.Lock wakes waiters FIFO).
        self._order = asyncio.Lock()

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._order:
            return await asyncio.to_thread(function, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def open(self) -> AsyncAdapterClient:
        await asyncio.to_thread(self.client.open)
        return self

    async def __aenter__(self) -> AsyncAdapterClient:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)

    async def join(
        self, session: str, participant_id: str, name: str = "", *, token: str | None = None
    ) -> Joined:
        return await self._call(self.client.join, session, participant_id, name, token=token)

    async def set(self, key: str, value: str | None) -> None:
        await self._call(self.client.set, key, value)

    async def delete(self, key: str) -> None:
        await self._call(self.client.set, key, None)

    async def get(self, key: str) -> str | None:
        return await self._call(self.client.get, key)

    async def observe(self, key: str, callback: UpdateCallback | None = None) -> str:
        on_loop = None
        if callback is not None:
            loop = asyncio.get_running_loop()
            wrapped = callback

            def on_loop(value: str | None, updated_by: Participant) -> None:
                loop.call_soon_threadsafe(wrapped, value, updated_by)

        return await self._call(self.client.observe, key, on_loop)

    async def stop_observing(self, observer_id: str) -> None:
        await self._call(self.client.stop_observing, observer_id)


__all__ = ["AsyncAdapterClient"]
