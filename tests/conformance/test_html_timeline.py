"""conformance.html draws a failed case's frames on lanes per connection (in Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import CHROMIUM
from devtools import Browser
from faulty_servers import StopIgnoredServer
from suite_runs import run_against

from harness.conformance.reports import write_reports


def test_conformance_html_draws_failed_cases_on_lanes(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (.ci/run installs it)")
    result = run_against(StopIgnoredServer, patterns=["R4.5-stop-ends-*", "R4.5-never-*"])
    write_reports(result, tmp_path)
    page = tmp_path / "conformance.html"
    with Browser(tmp_path / "chromium") as browser:
        visit = browser.open(
            page,
            """(() => ({
              axis: document.querySelectorAll('svg.tl .axis text').length,
              bars: [...document.querySelectorAll('svg.tl rect.bar')].map(b => b.getBBox().width),
              failed: [...document.querySelectorAll('details.case.failed svg.tl')].length,
              passed: [...document.querySelectorAll('details.case.passed svg.tl')].length,
              outlined: [...document.querySelectorAll('svg.tl .cx')].map(el => el.dataset.ev),
            }))()""",
        )
    assert visit.fetched == [page.resolve().as_uri()] and visit.errors == []
    assert visit.value["failed"] == 1 and visit.value["passed"] == 0
    # The script drew the axis, and every request bar has an extent.
    assert visit.value["axis"] > 0 and visit.value["bars"] and min(visit.value["bars"]) > 0
    assert len(visit.value["outlined"]) == 1  # the update after stopObserving's ok
