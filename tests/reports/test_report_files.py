"""report.json, report.md and .hgrm files say the same thing as the histograms."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harness.cli import main
from harness.latency.histograms import STATS, stat_us
from harness.latency.log import read_latency
from harness.latency.thresholds import gather
from harness.reports import build_report, render_sweep


def test_report_json_holds_every_figure(runs: tuple[Path, Path], tmp_path: Path) -> None:
    current, _ = runs
    result = build_report(current, out_dir=tmp_path, thresholds=gather(["notify.p50<1s"]))
    names = sorted(p.name for p in result.files)
    assert {"report.html", "report.json", "report.md", "notify.hgrm", "set.hgrm"} <= set(names)
    report = orjson.loads((tmp_path / "report.json").read_bytes())
    latency = read_latency(current / "latency")
    for metric in ("notify", "fanout", "set", "join"):
        for stat in STATS:
            assert report["metrics"][metric][stat] == stat_us(latency.total(metric), stat)
    sets = latency.total("set").get_total_count()
    assert report["errors"] == {"VALUE_TOO_LARGE": sets // 10}
    assert report["summary"]["load_model"] == "open"
    assert report["summary"]["participants"] == 6
    assert report["consistency"]["result"] == "valid"
    assert report["verdict"] == "passed" and report["partial"] is False
    timeline = report["timeline"]
    assert sum(timeline["throughput"]["notify"]) == report["metrics"]["notify"]["count"]
    assert sum(sum(v) for v in timeline["errors"].values()) == sets // 10
    markdown = (tmp_path / "report.md").read_text()
    assert "PASSED" in markdown and "notify.p50<1s: passed" in markdown


def test_a_comparison_lists_deltas_and_fails_on_regression(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    current, baseline = runs
    result = build_report(
        current, out_dir=tmp_path, baseline_dir=baseline, max_regression=0.10, at=["p50"]
    )
    comparison = result.figures["comparison"]
    notify = comparison["metrics"]["notify"]["p50"]
    # 30 ms against 10 ms of injected delay: about three times slower.
    assert notify["delta"] > 1.0
    assert {"metric": "notify", "stat": "p50", "delta": notify["delta"], "passed": False} in (
        comparison["regressions"]
    )
    assert result.failed
    assert "Against the baseline" in (tmp_path / "report.md").read_text()
    # The other way round the current run is the faster one: no notification regression.
    reverse = build_report(
        baseline, out_dir=tmp_path / "r", baseline_dir=current, max_regression=0.1, at=["p50"]
    )
    notify_checks = [
        r for r in reverse.figures["comparison"]["regressions"] if r["metric"] == "notify"
    ]
    assert notify_checks and all(r["passed"] for r in notify_checks)


def test_the_command_exits_1_on_regression_and_2_on_bad_options(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current, baseline = runs
    args = ["report", str(current), "--out", str(tmp_path), "--compare", str(baseline)]
    assert main([*args, "--max-regression", "10%", "--at", "p50"]) == 1
    assert "notify.p50" in capsys.readouterr().out
    assert main([*args, "--max-regression", "ten"]) == 2
    assert "--max-regression 'ten'" in capsys.readouterr().err
    assert main([*args, "--max-regression", "10%", "--at", "p95"]) == 2
    assert "p95" in capsys.readouterr().err


def test_the_sweep_report_charts_latency_and_throughput_against_participants(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    current, baseline = runs
    page = render_sweep([current, baseline], tmp_path)
    rows = orjson.loads((tmp_path / "sweep.json").read_bytes())
    assert [r["participants"] for r in rows] == [6, 6]
    assert all(r["notify_p99"] >= r["notify_p50"] > 0 for r in rows)
    html = page.read_text()
    assert html.count('<svg class="chart"') == 2 and "notify p99" in html
