"""Latency in HDR histograms: percentiles, formatting, merging.

This module owns every percentile the harness prints. Values are recorded in
microseconds from 1 µs to 60 s at 3 significant digits, so any reported figure
is within 0.1% of the true value, and histograms merge by addition: merging
the histograms of many processes or runs equals recording everything in one.
The client listener that fills them is :mod:`harness.latency.recorder`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping

from hdrh.histogram import HdrHistogram

from harness.protocol.kinds import KINDS

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3

#: One latency metric per request kind (harness.protocol.kinds), in the spec's order.
OPERATIONS = tuple(kind.metric for kind in KINDS)
NOTIFY, FANOUT = "notify", "fanout"
NOTIFICATIONS = (NOTIFY, FANOUT)
METRICS = (NOTIFY, FANOUT, *OPERATIONS)
#: The statistics thresholds and reports speak of, in the order reports list them.
STATS = ("p50", "p90", "p99", "p99.9", "max", "mean")
#: The error code under which requests that got no reply (timeout, lost connection) count.
NO_REPLY = "NO_REPLY"

#: How notification latency was timed: on this process's monotonic clock (writer
#: and observer share it), or from the wall-clock stamp in the value (another process).
CLOCK_MONOTONIC, CLOCK_WALL = "monotonic", "wall"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def encode_histogram(histogram: HdrHistogram) -> str:
    """The histogram in HdrHistogram's compressed V2 encoding, base64 text (lossless)."""
    return histogram.encode().decode("ascii")


def decode_histogram(text: str) -> HdrHistogram:
    histogram = HdrHistogram.decode(text.encode("ascii"))
    if histogram.get_highest_equivalent_value(HIGHEST_US) < HIGHEST_US:
        raise ValueError("histogram range is narrower than 1 µs..60 s")
    return histogram


def merge(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    """One histogram holding every value of ``histograms``."""
    total = new_histogram()
    for histogram in histograms:
        total.add(histogram)
    return total


def stat_us(histogram: HdrHistogram, stat: str) -> float:
    """One statistic of ``histogram`` in microseconds; ``stat`` is one of :data:`STATS`."""
    return stats_us(histogram, [stat])[stat]


def stats_us(histogram: HdrHistogram, stats: Iterable[str]) -> dict[str, float]:
    """Several statistics of ``histogram`` in microseconds, the percentiles in one pass
    over its counts (hdrh walks them in Python: a pass per percentile is what a report
    over thousands of seconds cannot afford)."""
    out: dict[str, float] = {}
    percentiles: dict[str, float] = {}
    for stat in stats:
        if stat == "max":
            out[stat] = float(histogram.get_highest_equivalent_value(histogram.get_max_value()))
        elif stat == "min":
            out[stat] = float(histogram.get_min_value())
        elif stat == "mean":
            out[stat] = float(histogram.get_mean_value())
        elif stat.startswith("p"):
            percentiles[stat] = float(stat[1:])
        else:
            raise ValueError(f"unknown statistic {stat!r}; use one of {', '.join(STATS)}")
    if percentiles:
        found = histogram.get_percentile_to_value_dict(list(percentiles.values()))
        out.update((stat, float(found[level])) for stat, level in percentiles.items())
    return out


def summarize(histogram: HdrHistogram) -> dict[str, float]:
    """Count, min and every statistic of :data:`STATS`, in microseconds."""
    figures: dict[str, float] = {"count": float(histogram.get_total_count())}
    if histogram.get_total_count():
        figures["min"] = float(histogram.get_min_value())
        figures.update(stats_us(histogram, STATS))
    return figures


def percentile_curve(histogram: HdrHistogram, ticks_per_half: int = 5) -> list[tuple[float, float]]:
    """(percentile, value µs) points of the distribution, as HdrHistogram's plotter draws it."""
    points: list[tuple[float, float]] = []
    if not histogram.get_total_count():
        return points
    for item in histogram.get_percentile_iterator(ticks_per_half):
        value = histogram.get_highest_equivalent_value(item.value_iterated_to)
        points.append((item.percentile_level_iterated_to, float(value)))
    return points


def format_us(us: float) -> str:
    """A latency for people: ``850 µs``, ``12.3 ms``, ``1.50 s``."""
    if math.isnan(us):
        return "n/a"
    if us < 1_000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        ms = us / 1_000
        return f"{ms:.3g} ms" if ms < 100 else f"{ms:.0f} ms"
    return f"{us / 1_000_000:.3g} s"


def hgrm_text(histogram: HdrHistogram, ticks_per_half: int = 5, unit_ratio: float = 1000.0) -> str:
    """The percentile distribution as HdrHistogram prints it (values in ms by default)."""
    out = io.StringIO()
    out.write(f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}\n\n")
    total = histogram.get_total_count()
    if total:
        for item in histogram.get_percentile_iterator(ticks_per_half):
            value = histogram.get_highest_equivalent_value(item.value_iterated_to) / unit_ratio
            fraction = item.percentile_level_iterated_to / 100
            count = item.total_count_to_this_value
            if fraction < 1:
                out.write(
                    f"{value:12.3f} {fraction:14.12f} {count:10d} {1 / (1 - fraction):14.2f}\n"
                )
            else:
                out.write(f"{value:12.3f} {fraction:14.12f} {count:10d}\n")
    mean = histogram.get_mean_value() / unit_ratio if total else 0.0
    stddev = histogram.get_stddev() / unit_ratio if total else 0.0
    peak = histogram.get_highest_equivalent_value(histogram.get_max_value()) / unit_ratio
    out.write(f"#[Mean    = {mean:12.3f}, StdDeviation   = {stddev:12.3f}]\n")
    out.write(f"#[Max     = {peak:12.3f}, Total count    = {total:12d}]\n")
    buckets, sub_buckets = histogram.bucket_count, histogram.sub_bucket_count
    out.write(f"#[Buckets = {buckets:12d}, SubBuckets     = {sub_buckets:12d}]\n")
    return out.getvalue()


def clock_name(counts: Mapping[str, int]) -> str:
    """``monotonic``, ``wall``, ``mixed`` or ``none``: how a run's notifications were timed."""
    used = [clock for clock in (CLOCK_MONOTONIC, CLOCK_WALL) if counts.get(clock)]
    return used[0] if len(used) == 1 else ("mixed" if used else "none")


def clamp_us(us: int) -> int:
    """``us`` within what the histograms hold."""
    return LOWEST_US if us < LOWEST_US else (HIGHEST_US if us > HIGHEST_US else us)
