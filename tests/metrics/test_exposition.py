"""The text format the exporter writes, checked by hand and by Prometheus's own promtool."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness.latency.histograms import new_histogram
from harness.metrics import exposition as ex
from harness.metrics.collect import ProcessMetrics, ProcessState, RunMetrics


def test_a_family_is_its_help_type_and_samples_in_table_order() -> None:
    text = ex.render(
        {
            "store_harness_users": [({}, 10)],
            "store_harness_requests_total": [
                ({"operation": "set"}, 3),
                ({"operation": "notify"}, 12),
            ],
        }
    )
    assert text == (
        "# HELP store_harness_requests_total Requests completed (replied or not), notifications "
        "received and connects, by operation\n"
        "# TYPE store_harness_requests_total counter\n"
        'store_harness_requests_total{operation="set"} 3\n'
        'store_harness_requests_total{operation="notify"} 12\n'
        "# HELP store_harness_users Locust users (participants) running\n"
        "# TYPE store_harness_users gauge\n"
        "store_harness_users 10\n"
    )


def test_a_summary_writes_its_quantiles_count_and_sum_under_one_family() -> None:
    label = {"operation": "notify"}
    text = ex.render(
        {
            "store_harness_latency_seconds": [({**label, "quantile": "0.99"}, 0.0042)],
            "store_harness_latency_seconds_count": [(label, 7)],
            "store_harness_latency_seconds_sum": [(label, 0.0125)],
        }
    )
    lines = text.splitlines()
    assert lines[1] == "# TYPE store_harness_latency_seconds summary"
    assert lines[2:] == [
        'store_harness_latency_seconds{operation="notify",quantile="0.99"} 0.0042',
        'store_harness_latency_seconds_count{operation="notify"} 7',
        'store_harness_latency_seconds_sum{operation="notify"} 0.0125',
    ]


def test_values_and_labels_are_spelled_as_the_format_wants() -> None:
    assert [ex.format_value(v) for v in (3.0, 0.5, float("nan"), float("inf"), -float("inf"))] == [
        "3",
        "0.5",
        "NaN",
        "+Inf",
        "-Inf",
    ]
    text = ex.render({"store_harness_anomalies": [({"kind": 'a"b\\c\nd'}, 1)]})
    assert 'store_harness_anomalies{kind="a\\"b\\\\c\\nd"} 1' in text.splitlines()


def test_nothing_known_is_nothing_written_and_an_undeclared_series_is_refused() -> None:
    assert ex.render({"store_harness_anomalies": []}) == ""
    with pytest.raises(ValueError, match="store_harness_made_up"):
        ex.render({"store_harness_made_up": [({}, 1)]})


def test_every_series_is_named_and_labelled_as_prometheus_allows() -> None:
    for series in ex.SERIES:
        assert series.name.startswith("store_harness_")
        assert series.kind != "counter" or series.name.endswith("_total")
        assert all(label.isidentifier() and not label.startswith("__") for label in series.labels)
    assert len(ex.BY_SAMPLE_NAME) == sum(len(s.sample_names()) for s in ex.SERIES)


def test_promtool_accepts_what_a_run_serves() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus (.ci/run installs it)")
    process = ProcessMetrics("p1")
    for request_type in ("SET", "GET", "NOTIFY", "CONNECT"):
        process.on_request(request_type=request_type, exception=None)
    histogram = new_histogram()
    histogram.record_value(1500, 10)
    run = RunMetrics(clock=lambda: 1000.5)
    snapshot = process.snapshot(ProcessState(connected=3, recording=True))
    snapshot.intervals = [(1000, "notify", histogram)]
    snapshot.latency = {"notify": (10, 15000.0), "set": (1, 900.0)}
    run.update(snapshot)
    run.report_anomalies({"lost_update": 0})
    text = ex.render(run.samples(users=3))
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == ""  # no lint warning either
