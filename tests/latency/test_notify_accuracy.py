"""A server that holds every notification a fixed time is reported at that time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from harness.reports import build_report
from harness.run.loadgen import LoadPlan, run_load
from harness.run.pacing import OPEN, TOTAL, LoadModel
from harness.server.embedded import EmbeddedServer

DELAY_S = 0.050


def test_injected_notification_delay_is_reported_within_2ms_at_1000_per_s(tmp_path: Path) -> None:
    # 10 participants observe; 100 writes/s reach each of them: 1,000 notifications/s.
    with EmbeddedServer(notify_delay=DELAY_S) as server:
        plan = LoadPlan(
            server.url,
            participants=10,
            writers=2,
            load=LoadModel(OPEN, 100, TOTAL),
            duration_s=2.0,
        )
        result = asyncio.run(asyncio.wait_for(run_load(plan, tmp_path / "run", history=False), 60))
    assert result.notifications_received == result.notifications_expected == 2_000

    build_report(tmp_path / "run", out_dir=tmp_path / "out")
    report = orjson.loads((tmp_path / "out" / "report.json").read_bytes())
    notify = report["metrics"]["notify"]
    assert notify["count"] == 2_000
    assert abs(notify["p50"] - DELAY_S * 1e6) <= 2_000, notify
    # No notification can arrive before the server let it go.
    assert notify["min"] >= DELAY_S * 1e6 * 0.999
    assert report["summary"]["notification_clock"] == "monotonic"
