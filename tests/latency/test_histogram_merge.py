"""Histograms merge across processes and runs without losing precision."""

from __future__ import annotations

import random
from pathlib import Path

from harness.latency.histograms import (
    HIGHEST_US,
    STATS,
    decode_histogram,
    encode_histogram,
    hgrm_text,
    merge,
    new_histogram,
    stat_us,
    summarize,
)
from harness.latency.log import LatencyLog, read_latency


def _values(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    # Log-uniform from 1 µs to 60 s, so every bucket range is exercised.
    return [int(10 ** rng.uniform(0, 7.77)) for _ in range(count)]


def _same(a, b) -> None:
    assert a.get_total_count() == b.get_total_count()
    assert a.get_min_value() == b.get_min_value()
    assert a.get_max_value() == b.get_max_value()
    for stat in STATS:
        assert stat_us(a, stat) == stat_us(b, stat), stat
    for value in sorted({v for v in _values(7, 500)}):
        assert a.get_count_at_value(value) == b.get_count_at_value(value)


def test_encoding_round_trips_exactly() -> None:
    histogram = new_histogram()
    for value in _values(1, 5_000):
        histogram.record_value(min(value, HIGHEST_US))
    _same(decode_histogram(encode_histogram(histogram)), histogram)


def test_merging_process_files_equals_recording_in_one_histogram(tmp_path: Path) -> None:
    everything = new_histogram()
    for process in range(3):
        with LatencyLog(tmp_path / f"p{process}.jsonl", f"p{process}") as log:
            for second in range(5):
                interval = new_histogram()
                for value in _values(process * 100 + second, 2_000):
                    interval.record_value(min(value, HIGHEST_US))
                    everything.record_value(min(value, HIGHEST_US))
                log.write_interval(1_800_000_000 + second, {"notify": interval}, {})
    data = read_latency(tmp_path)
    assert sorted(data.processes) == ["p0", "p1", "p2"]
    assert data.seconds == [1_800_000_000 + s for s in range(5)]
    _same(data.total("notify"), everything)


def test_merging_runs_equals_recording_in_one_histogram() -> None:
    runs = [new_histogram() for _ in range(4)]
    everything = new_histogram()
    for n, run in enumerate(runs):
        for value in _values(50 + n, 3_000):
            run.record_value(min(value, HIGHEST_US))
            everything.record_value(min(value, HIGHEST_US))
    shipped = [decode_histogram(encode_histogram(run)) for run in runs]
    _same(merge(shipped), everything)


def test_a_torn_last_line_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    histogram = new_histogram()
    histogram.record_value(1234)
    log = LatencyLog(tmp_path / "killed.jsonl")
    log.write_interval(1_800_000_000, {"set": histogram}, {"INVALID_KEY": 2})
    assert log._file is not None
    log._file.write(b'{"kind": "interval", "t": 1800000001, "metric": "set", "hist": "HISTF')
    log._file.flush()  # never closed: the process was killed
    data = read_latency(tmp_path)
    assert data.total("set").get_total_count() == 1
    assert data.error_totals() == {"INVALID_KEY": 2}
    assert data.skipped_lines == 1
    assert data.unfinished == ["killed.jsonl"]


def test_hgrm_lists_the_distribution_as_hdrhistogram_prints_it() -> None:
    histogram = new_histogram()
    for value in range(1, 10_001):
        histogram.record_value(value)
    text = hgrm_text(histogram)
    header, blank, *rows = text.splitlines()
    assert header.split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    assert blank == ""
    data = [row.split() for row in rows if not row.startswith("#")]
    assert float(data[-1][1]) == 1.0 and int(data[-1][2]) == 10_000
    percentiles = [float(row[1]) for row in data]
    assert percentiles == sorted(percentiles)
    # Values are in ms; the median of 1..10,000 µs is 5 ms.
    median = next(float(row[0]) for row in data if float(row[1]) >= 0.5)
    assert 5.0 <= median < 5.5
    for value, _percentile, count, *_ in data[:-1]:
        # Each row's count is how many values lie at or below its value.
        assert int(count) == min(10_000, int(float(value) * 1000))
    assert "Total count    =        10000" in text
    assert summarize(histogram)["p50"] == stat_us(histogram, "p50")
