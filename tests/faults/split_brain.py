"""A two-replica store that splits its brain when a network partition cuts connections.

Built on the checker tests' :class:`TwoReplicaServer` (tests/checker/replicas.py).
While healthy it replicates every write to the other replica in the same atomic
step, so both replicas apply writes in one order and a swarm finds it VALID.
When a connection ends without a close frame (the network cut it, as the
fault proxy's partition does), its replica believes it is partitioned from the
other and, for ``isolation_s`` seconds, stops replicating both ways and never
reconciles afterwards: observers on the other replica miss writes (R4.1) and the
replicas keep different values (R3.9).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

from harness.protocol import Set
from harness.server.aio import Connection, ReferenceServer

#: websockets' close code for a connection that ended without a close frame.
ABNORMAL_CLOSURE = 1006


def _two_replica_server() -> type:
    module = sys.modules.get("replicas")
    if module is None:
        path = Path(__file__).parents[1] / "checker" / "replicas.py"
        spec = importlib.util.spec_from_file_location("replicas", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["replicas"] = module
        spec.loader.exec_module(module)
    return module.TwoReplicaServer


TwoReplicaServer: Any = _two_replica_server()


class SplitBrainServer(TwoReplicaServer):  # type: ignore[misc]
    isolation_s = 3.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.isolated_until = 0.0
        self.splits = 0

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None and conn.participant is not None
        # The reference handling, on this connection's replica (its session object).
        ReferenceServer.handle_set(self, conn, request)
        if asyncio.get_running_loop().time() < self.isolated_until:
            return  # split brain: this replica alone took the write, for good
        if conn.session.values.get(request.key) != request.value:
            return  # refused: nothing to replicate
        # Healthy: the other replica applies it in the same step, so both share one order.
        other = next(r for r in self.replicas if r is not self._replica_of[conn])
        self._apply_remote(other, conn.session.name, request.key, request.value, conn.participant)

    def disconnect(self, conn: Connection) -> None:
        if conn.websocket.close_code == ABNORMAL_CLOSURE:
            self.isolated_until = asyncio.get_running_loop().time() + self.isolation_s
            self.splits += 1
        super().disconnect(conn)
