"""report.html renders in headless Chromium with its charts drawn and no script errors."""

from __future__ import annotations

import re
from pathlib import Path

from browser import chromium, needs_chromium

from harness.reports import build_report, render_sweep


def _rendered(page: Path, tmp_path: Path) -> tuple[int, str]:
    """(charts the page's self-check found drawn, script errors) after Chromium ran the page."""
    dom = chromium(page, tmp_path / "profile-dom", "--dump-dom", "--virtual-time-budget=2000")
    drawn = re.search(r'data-charts-drawn="(\d+)"', dom.stdout)
    errors = re.search(r'data-script-errors="([^"]*)"', dom.stdout)
    assert drawn is not None and errors is not None, "the page's self-check did not run"
    return int(drawn.group(1)), errors.group(1)


@needs_chromium
def test_the_report_renders_with_every_chart_drawn(runs: tuple[Path, Path], tmp_path: Path) -> None:
    current, baseline = runs
    out = tmp_path / "report"
    build_report(current, out_dir=out, baseline_dir=baseline)
    page = out / "report.html"
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html  # works offline: nothing to fetch
    charts = html.count('<svg class="chart"')
    # 7 percentile charts (notify, fanout, 5 operations) + latency, throughput, errors over time.
    assert charts == 10
    drawn, errors = _rendered(page, tmp_path)
    assert errors == ""
    assert drawn == charts
    shot = tmp_path / "report.png"
    chromium(page, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a drawn page, not a blank one


@needs_chromium
def test_the_sweep_page_renders_its_charts(runs: tuple[Path, Path], tmp_path: Path) -> None:
    page = render_sweep(list(runs), tmp_path / "sweep")
    drawn, errors = _rendered(page, tmp_path)
    assert (drawn, errors) == (2, "")
