"""Shared fixtures: a reference server on an ephemeral loopback port; a coroutine runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from harness.server.embedded import EmbeddedServer

T = TypeVar("T")


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    """A fresh reference server on 127.0.0.1, running on a background thread's loop."""
    with EmbeddedServer() as embedded:
        yield embedded


@pytest.fixture
def server_url(server: EmbeddedServer) -> str:
    return server.url


@pytest.fixture
def run() -> Callable[[Awaitable[T]], T]:
    """Run a coroutine to completion with a 60 s guard, so no test can hang."""

    def run_coroutine(coroutine: Awaitable[T]) -> T:
        async def guarded() -> T:
            async with asyncio.timeout(60):
                return await coroutine

        return asyncio.run(guarded())

    return run_coroutine


def embedded(factory: Any = None, **options: Any) -> EmbeddedServer:
    """An EmbeddedServer for a server class other than the reference (faulty variants)."""
    return EmbeddedServer(factory, **options) if factory else EmbeddedServer(**options)
