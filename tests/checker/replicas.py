"""A two-replica store with no ordering between replicas: the checker's live target.

Each connection is served by one of two replicas (alternating by join). A write
is applied to its own replica at once and to the other one a few milliseconds
later, so two concurrent writes land in different orders on the two replicas:
their observers see different orders (R4.3) and the replicas end up holding
different last values (R3.9), as an eventually-replicated store without a
total order would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.protocol import Join, Joined, Participant, Set
from harness.server.aio import Connection, ReferenceServer
from harness.server.store import Session, Store


class TwoReplicaServer(ReferenceServer):
    replication_lag = 0.01

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.replicas = [self.store, Store(self.limits)]
        self._joins = 0
        self._replica_of: dict[Connection, Store] = {}

    def handle_join(self, conn: Connection, join: Join) -> None:
        replica = self.replicas[self._joins % 2]
        self._joins += 1
        self._replica_of[conn] = replica
        conn.participant = join.participant
        conn.session = replica.enter(join.session)
        self.reply(conn, Joined(join.id, join.session, join.participant, self.limits))

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None and conn.participant is not None
        super().handle_set(conn, request)
        if conn.session.values.get(request.key) != request.value:
            return  # refused: nothing to replicate
        other = next(r for r in self.replicas if r is not self._replica_of[conn])
        asyncio.get_running_loop().call_later(
            self.replication_lag,
            self._apply_remote,
            other,
            conn.session.name,
            request.key,
            request.value,
            conn.participant,
        )

    def _apply_remote(
        self, store: Store, name: str, key: str, value: str | None, writer: Participant
    ) -> None:
        session = store.sessions.setdefault(name, Session(name))
        if store.write(session, key, value) is None:
            self.notify(session, key, value, writer)

    def disconnect(self, conn: Connection) -> None:
        replica = self._replica_of.pop(conn, self.store)
        if conn.session is not None:
            replica.leave(conn.session, list(conn.observers.values()))
            conn.observers.clear()
