"""Run a server where the caller is not in asyncio: in a thread, or in a child process.

``EmbeddedServer`` runs any :class:`ReferenceServer` (or a subclass) on its own
event loop in a background thread; blocking tests and commands use it.
``ServerProcess`` runs ``store-harness serve`` as a child process, for callers
whose own threads are gevent greenlets (locust) where an asyncio loop in a
thread would stall the gevent hub.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from harness.errors import HarnessError
from harness.server.aio import ReferenceServer

LISTENING_LINE = re.compile(r"listening on (ws://\S+)")


class _Service(Protocol):
    async def start(self) -> object: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=_Service)


class InBackground(Generic[S]):
    """Any service with ``async start()`` and ``async stop()`` on its own event loop,
    in a background thread; ``service`` is the running object."""

    def __init__(self, make: Callable[[], S], name: str) -> None:
        self._make = make
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._startup_error: BaseException | None = None
        self.service: S | None = None

    def start(self, timeout: float = 10.0) -> Self:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"store-harness {self._name}", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise HarnessError(f"{self._name} did not start within {timeout}s")
        if self._startup_error is not None:
            raise HarnessError(f"{self._name} failed to start: {self._startup_error}")
        return self

    def _run(self, ready: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            try:
                service = self._make()
                await service.start()
            except BaseException as exc:
                self._startup_error = exc
                ready.set()
                return
            self.service = service
            ready.set()
            await self._stopped.wait()
            await service.stop()

        asyncio.run(main())

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)

    def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` on the service's loop (its state is not thread-safe)."""
        assert self._loop is not None
        done = asyncio.run_coroutine_threadsafe(_call(function), self._loop)
        return done.result(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedServer(InBackground[ReferenceServer]):
    """A server on an ephemeral loopback port, on a background thread's event loop."""

    def __init__(
        self, factory: Callable[..., ReferenceServer] = ReferenceServer, **options: Any
    ) -> None:
        options.setdefault("port", 0)
        super().__init__(lambda: factory(**options), "the embedded server")

    @property
    def server(self) -> ReferenceServer:
        assert self.service is not None, "the server is not started"
        return self.service

    @property
    def url(self) -> str:
        return self.server.url


async def _call(function: Callable[[], Any]) -> Any:
    return function()


class ServerProcess:
    """``store-harness serve`` in a child process on an ephemeral port."""

    def __init__(self, extra_args: Sequence[str] = (), *, host: str = "127.0.0.1") -> None:
        self.args = [
            sys.executable,
            "-m",
            "harness",
            "serve",
            "--host",
            host,
            "--port",
            "0",
            *extra_args,
        ]
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 20.0) -> ServerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        found = threading.Event()
        seen: list[str] = []

        def read_until_listening() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                seen.append(line)
                match = LISTENING_LINE.search(line)
                if match:
                    self.url = match.group(1)
                    found.set()
                    break
            # Keep draining so the child never blocks on a full pipe.
            for _ in self.process.stdout:
                pass

        threading.Thread(target=read_until_listening, daemon=True).start()
        if not found.wait(timeout):
            self.stop()
            raise HarnessError(
                f"the reference server did not start within {timeout}s: {''.join(seen)[-500:]}"
            )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
