"""Run the fault proxy where the caller is not in asyncio: in a thread, or in a child process.

``ProxyThread`` runs :class:`FaultProxy` on its own event loop in a background
thread (the swarm command uses it: that process only waits on locust, so the
proxy has it to itself). ``ProxyProcess`` runs ``store-harness proxy`` as a
child process, for callers whose threads are gevent greenlets.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Sequence
from types import TracebackType

from harness.errors import HarnessError
from harness.faults.proxy import FaultProxy, ProxyStats
from harness.faults.spec import FaultPlan
from harness.server.embedded import ServerProcess


class ProxyThread:
    """A :class:`FaultProxy` on an ephemeral loopback port, on a background thread's loop."""

    def __init__(self, upstream: str, plan: FaultPlan | None = None, **options: object) -> None:
        self.proxy = FaultProxy(upstream, plan, **options)  # type: ignore[arg-type]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> ProxyThread:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="store-harness-proxy", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise HarnessError(f"the fault proxy did not start within {timeout}s")
        if self._error is not None:
            raise HarnessError(f"the fault proxy failed to start: {self._error}")
        return self

    def _run(self, ready: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            try:
                await self.proxy.start()
            except OSError as exc:
                self._error = exc
                ready.set()
                return
            ready.set()
            await self._stopped.wait()
            await self.proxy.stop()

        asyncio.run(main())

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def stats(self) -> ProxyStats:
        return self.proxy.stats

    def __enter__(self) -> ProxyThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ProxyProcess(ServerProcess):
    """``store-harness proxy`` in a child process on an ephemeral port.

    ``fault_specs`` are ``--fault`` values; ``url`` is the proxy's once started.
    """

    def __init__(self, upstream: str, fault_specs: Sequence[str] = ()) -> None:
        super().__init__()
        self.args = [sys.executable, "-m", "harness", "proxy", "--upstream", upstream]
        self.args += ["--port", "0"]
        for spec in fault_specs:
            self.args += ["--fault", spec]
