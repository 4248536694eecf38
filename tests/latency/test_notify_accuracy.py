"""A server that holds every notification a fixed time is reported at that time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from harness.reports import build_report
from harness.run.loadgen import LoadPlan, run_load
from harness.run.pacing import OPEN, TOTAL, LoadModel
from harness.server.embedded import EmbeddedServer

DELAY_S = 0.050


def notify_figures(tmp_path: Path, notify_delay: float) -> dict[str, Any]:
    # 10 participants observe; 100 writes/s reach each of them: 1,000 notifications/s.
    run_dir = tmp_path / f"run-{notify_delay}"
    with EmbeddedServer(notify_delay=notify_delay) as server:
        plan = LoadPlan(
            server.url,
            participants=10,
            writers=2,
            load=LoadModel(OPEN, 100, TOTAL),
            duration_s=2.0,
        )
        result = asyncio.run(asyncio.wait_for(run_load(plan, run_dir, history=False), 60))
    assert result.notifications_received == result.notifications_expected == 2_000

    build_report(run_dir, out_dir=run_dir / "out")
    report = orjson.loads((run_dir / "out" / "report.json").read_bytes())
    assert report["summary"]["notification_clock"] == "monotonic"
    notify: dict[str, Any] = report["metrics"]["notify"]
    assert notify["count"] == 2_000
    return notify


def test_injected_notification_delay_is_reported_within_2ms_at_1000_per_s(tmp_path: Path) -> None:
    # The same load without the delay is the control: what the host itself adds (scheduling,
    # loopback, a busy CI machine) shifts both runs alike, so the difference is the delay.
    control = notify_figures(tmp_path, 0.0)
    delayed = notify_figures(tmp_path, DELAY_S)
    assert abs((delayed["p50"] - control["p50"]) - DELAY_S * 1e6) <= 2_000, (control, delayed)
    # No notification can arrive before the server let it go.
    assert delayed["min"] >= DELAY_S * 1e6 * 0.999
