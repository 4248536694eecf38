"""Shared fixtures: a reference server on an ephemeral loopback port; the Node.js peer
server's variants; a real etcd; a coroutine runner."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from etcd_server import EtcdServer
from nats_server import NatsServer
from peer_server import PeerServer, unavailable

from harness.server.embedded import EmbeddedServer

T = TypeVar("T")

#: Set by .ci/run, which installs every real component: there, a test skipped because one
#: is missing (chromium, openssl, node...) fails the run instead of passing it silently.
REQUIRE_COMPONENTS = os.environ.get("STORE_HARNESS_REQUIRE_COMPONENTS") == "1"
_MISSING = ("is not installed", "is missing")
_missing_components: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if REQUIRE_COMPONENTS and report.skipped:
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if any(words in reason for words in _MISSING):
            _missing_components.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _missing_components:
        print("\ncomponents the suite needs are missing:", *_missing_components, sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    """A fresh reference server on 127.0.0.1, running on a background thread's loop."""
    with EmbeddedServer() as embedded:
        yield embedded


@pytest.fixture
def server_url(server: EmbeddedServer) -> str:
    return server.url


@pytest.fixture
def peer_server() -> Iterator[Callable[..., PeerServer]]:
    """Start Node.js peer servers (tests/peer_server.py), each stopped at teardown.

    Skips when node or tests/peer/node_modules is missing; `.ci/run` installs both.
    """
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    started: list[PeerServer] = []

    def start(flags: tuple[str, ...] = (), *, token_secret: str | None = None) -> PeerServer:
        peer = PeerServer(flags, token_secret=token_secret)
        started.append(peer)
        return peer.__enter__()

    yield start
    for peer in started:
        peer.__exit__(None, None, None)


@pytest.fixture(scope="session")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``etcd://127.0.0.1:PORT/harness-test``: one real etcd for the session (tests/etcd_server.py).

    Fails, never skips, when etcd is missing: `.ci/run` installs it.
    """
    try:
        etcd = EtcdServer(tmp_path_factory.mktemp("etcd") / "data")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with etcd:
        yield etcd.url()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``nats://127.0.0.1:PORT/harness-test``: one real NATS with JetStream for the session.

    Fails, never skips, when nats-server is missing (tests/nats_server.py).
    """
    try:
        nats = NatsServer(tmp_path_factory.mktemp("nats") / "store")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with nats:
        yield nats.url()


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
