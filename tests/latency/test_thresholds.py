"""Thresholds: parsing, evaluation, and the report command's exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessUsageError
from harness.latency.histograms import new_histogram
from harness.latency.log import LatencyLog
from harness.latency.thresholds import (
    evaluate,
    gather,
    load_slo_file,
    parse_threshold,
    threshold_from_entry,
)
from harness.run.directory import write_run_json


@pytest.mark.parametrize(
    ("text", "metric", "stat", "inclusive", "limit"),
    [
        ("notify.p99<50ms", "notify", "p99", False, 50_000),
        ("fanout.p99.9<=1.5s", "fanout", "p99.9", True, 1_500_000),
        ("stopObserving.max<800us", "stopObserving", "max", False, 800),
        (" set.mean <= 2 ms ", "set", "mean", True, 2_000),
        ("errors<0.1%", "errors", "rate", False, 0.001),
    ],
)
def test_expressions_parse(
    text: str, metric: str, stat: str, inclusive: bool, limit: float
) -> None:
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.stat, threshold.inclusive) == (metric, stat, inclusive)
    assert threshold.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("notify.p99>50ms", "not of the form"),
        ("latency.p99<50ms", "unknown metric 'latency'"),
        ("notify.p95<50ms", "unknown statistic 'p95'"),
        ("notify.p99<50", "needs a unit"),
        ("notify.p99<50%", "needs a unit"),
        ("errors<0.1", "needs '%'"),
        ("errors.p99<1%", "no statistic"),
        ("", "not of the form"),
    ],
)
def test_bad_expressions_name_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(HarnessUsageError, match=complaint):
        parse_threshold(text)


def test_evaluation_passes_breaches_and_treats_missing_data_as_breached() -> None:
    figures = {"notify": {"p99": 40_000.0}, "set": {"max": 2_000.0}}
    outcomes = evaluate(
        gather(["notify.p99<50ms", "set.max<2ms", "set.max<=2ms", "fanout.p99<1s", "errors<1%"]),
        figures,
        error_rate=0.02,
    )
    assert [o.passed for o in outcomes] == [True, False, True, False, False]
    assert outcomes[3].describe() == "fanout.p99<1s: BREACHED (measured no data)"
    assert outcomes[4].describe() == "errors<1%: BREACHED (measured 2%)"


def test_toml_files_list_expressions(tmp_path: Path) -> None:
    good = tmp_path / "slo.toml"
    good.write_text('thresholds = ["notify.p99<50ms", "errors<0.5%"]\n')
    assert [t.text for t in load_slo_file(good)] == ["notify.p99<50ms", "errors<0.5%"]
    bad = tmp_path / "bad.toml"
    bad.write_text("thresholds = 3\n")
    with pytest.raises(HarnessUsageError, match="needs a list of strings"):
        load_slo_file(bad)
    with pytest.raises(HarnessUsageError, match="cannot read SLO file"):
        load_slo_file(tmp_path / "missing.toml")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished run whose notifications took 10..20 ms and whose sets 1 ms."""
    directory = tmp_path / "run"
    notify, sets = new_histogram(), new_histogram()
    for us in range(10_000, 20_000, 10):
        notify.record_value(us)
    for _ in range(100):
        sets.record_value(1_000)
    with LatencyLog(directory / "latency" / "p.jsonl") as log:
        log.write_interval(1_800_000_000, {"notify": notify, "set": sets}, {})
    write_run_json(
        directory, {"participants": 10, "complete": True, "started": 1.8e9, "ended": 1.8e9 + 1}
    )
    return directory


def test_a_breached_threshold_makes_the_report_exit_1(
    run_dir: Path, tmp_path: Path, capsys
) -> None:
    out = str(tmp_path / "out")
    assert main(["report", str(run_dir), "--out", out, "--slo", "notify.p99<30ms"]) == 0
    assert main(["report", str(run_dir), "--out", out, "--slo", "notify.p99<15ms"]) == 1
    printed = capsys.readouterr().out
    assert "notify.p99<15ms: BREACHED" in printed
    assert "BREACHED" in (tmp_path / "out" / "report.md").read_text()


def test_a_bad_threshold_is_a_usage_error_exit_2(run_dir: Path, tmp_path: Path, capsys) -> None:
    assert (
        main(["report", str(run_dir), "--out", str(tmp_path / "o"), "--slo", "notify.p99<fast"])
        == 2
    )
    assert "notify.p99<fast" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_missing_run_directory_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "limit", "lower", "stage"),
    [
        ("notify.rate>1000/s", 1000, True, None),
        ("set.rate<=50/s", 50, False, None),
        ("notify.p99<50ms@storm", 50_000, False, "storm"),
        ("fanout.p99.9<1s @bursts.burst-1", 1_000_000, False, "bursts.burst-1"),
    ],
)
def test_rates_and_stage_scopes_parse(text: str, limit: float, lower: bool, stage: str) -> None:
    threshold = parse_threshold(text)
    assert (threshold.limit, threshold.lower_bound, threshold.stage) == (limit, lower, stage)


def test_a_rate_floor_holds_above_it_and_a_stage_covers_its_preset_parts() -> None:
    floor = parse_threshold("notify.rate>1000/s@bursts")
    assert floor.holds(1001) and not floor.holds(1000)
    assert floor.covers("bursts") and floor.covers("bursts.burst-2")
    assert not floor.covers("burstsier")
    assert "measured 12/s" in evaluate([floor], {}, None, {"notify": 12.0})[0].describe()


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"threshold": "notify.rate>5ms"}, "a rate is per second"),
        ({"threshold": "notify.p99<5ms", "abort_on_fail": "yes"}, "true or false"),
        ({"threshold": "notify.p99<5ms", "window": "0s"}, "window of"),
        ({"threshold": "notify.p99<5ms", "delay": "later"}, "delay of"),
        ({"threshold": "notify.p99<5ms", "abort": True}, "unknown key 'abort'"),
        ({"threshold": "notify.p99<5ms@a", "stage": "b"}, "names stage 'a'"),
        ({"abort_on_fail": True}, "needs threshold"),
    ],
)
def test_bad_threshold_tables(entry: dict, complaint: str) -> None:
    with pytest.raises(HarnessUsageError, match=complaint):
        threshold_from_entry(entry)


def test_a_table_entry_carries_its_live_options(tmp_path: Path) -> None:
    slo = tmp_path / "slo.toml"
    slo.write_text('thresholds = ["errors<1%"]\n[[more]]\nx = 1\n')
    assert [t.text for t in load_slo_file(slo)] == ["errors<1%"]
    table = threshold_from_entry(
        {"threshold": "notify.p99<50ms", "abort_on_fail": True, "delay": "5s", "window": 20,
         "stage": "storm"}
    )  # fmt: skip
    assert (table.abort_on_fail, table.delay_s, table.window_s) == (True, 5, 20)
    assert table.text == "notify.p99<50ms@storm" and table.stage == "storm"
