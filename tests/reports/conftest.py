"""Two real runs (a baseline and a slower current one) for the report tests to share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.protocol import Error, ErrorCode, Set
from harness.run.loadgen import LoadPlan, run_load
from harness.run.pacing import OPEN, TOTAL, LoadModel
from harness.server.aio import Connection, ReferenceServer
from harness.server.embedded import EmbeddedServer


class RefusingServer(ReferenceServer):
    """Refuses every 10th write, so reports have errors by code to show."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.sets = 0

    def handle_set(self, conn: Connection, request: Set) -> None:
        self.sets += 1
        if self.sets % 10 == 0:
            self.reply(conn, Error(request.id, ErrorCode.VALUE_TOO_LARGE, "refused by the test"))
            return
        super().handle_set(conn, request)


def _record(run_dir: Path, notify_delay: float) -> Path:
    with EmbeddedServer(RefusingServer, notify_delay=notify_delay) as server:
        plan = LoadPlan(
            server.url, participants=6, writers=2, load=LoadModel(OPEN, 60, TOTAL), duration_s=2.0
        )
        asyncio.run(asyncio.wait_for(run_load(plan, run_dir), 60))
    return run_dir


@pytest.fixture(scope="package")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(current, baseline): the current run's notifications are held 20 ms longer."""
    base = tmp_path_factory.mktemp("runs")
    yield _record(base / "current", 0.030), _record(base / "baseline", 0.010)
