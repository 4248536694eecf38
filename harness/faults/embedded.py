"""Run the fault proxy where the caller is not in asyncio: in a thread, or in a child process.

``ProxyThread`` runs :class:`FaultProxy` on its own event loop in a background
thread (the swarm command uses it: that process only waits on locust, so the
proxy has it to itself). ``ProxyProcess`` runs ``store-harness proxy`` as a
child process, for callers whose threads are gevent greenlets.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from harness.faults.proxy import FaultProxy, ProxyStats
from harness.faults.spec import FaultPlan
from harness.server.embedded import InBackground, ServerProcess


class ProxyThread(InBackground[FaultProxy]):
    """A :class:`FaultProxy` on an ephemeral loopback port, on a background thread's loop."""

    def __init__(self, upstream: str, plan: FaultPlan | None = None, **options: object) -> None:
        super().__init__(lambda: FaultProxy(upstream, plan, **options), "the fault proxy")  # type: ignore[arg-type]

    @property
    def proxy(self) -> FaultProxy:
        assert self.service is not None, "the proxy is not started"
        return self.service

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def stats(self) -> ProxyStats:
        return self.proxy.stats

    def begin_schedule(self) -> None:
        self.call(self.proxy.begin_schedule)


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
