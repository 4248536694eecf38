"""Every series the live exporter serves, declared once, and Prometheus's text format.

:data:`SERIES` is the table of what ``/metrics`` can hold: the exporter fills it
(:mod:`harness.metrics.collect`), :func:`render` writes it in the text exposition
format 0.0.4, and the Grafana dashboard's test checks every query against it. The
format is small enough to write here (no client library: ours are snapshot values
computed at scrape time, and client_python's summaries carry no quantiles).

Latencies are in seconds, Prometheus's base unit. Operations are named as the latency
report names them (``notify``, ``fanout``, ``set``... :data:`harness.latency.histograms.METRICS`),
plus ``connect`` (connect and join, as locust's CONNECT row) in the request counters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "summary"]
#: One sample: its label values and its value.
Sample = tuple[Mapping[str, str], float]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The quantiles of the latency summaries (HDR histograms: within 0.1% of the true value).
QUANTILES = (0.5, 0.9, 0.99, 0.999)
#: Seconds of the most recent interval histograms the quantiles and maxima cover.
WINDOW_S = 10


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()

    def sample_names(self) -> tuple[str, ...]:
        """The sample names of this family in the text format (a summary has three)."""
        if self.kind == "summary":
            return (self.name, f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


REQUESTS = Series(
    "store_harness_requests_total",
    "counter",
    "Requests completed (replied or not), notifications received and connects, by operation",
    ("operation",),
)
ERRORS = Series(
    "store_harness_errors_total",
    "counter",
    "Failed requests by operation and error code (NO_REPLY: timed out or connection lost)",
    ("operation", "code"),
)
VIOLATIONS = Series(
    "store_harness_protocol_violations_total",
    "counter",
    "Protocol violations participants saw, by the requirement broken",
    ("requirement",),
)
LATENCY = Series(
    "store_harness_latency_seconds",
    "summary",
    f"Latency by operation: quantiles over the last {WINDOW_S} s (HDR histograms), "
    "count and sum over the run",
    ("operation", "quantile"),
)
LATENCY_MAX = Series(
    "store_harness_latency_max_seconds",
    "gauge",
    f"Highest latency by operation over the last {WINDOW_S} s",
    ("operation",),
)
USERS = Series("store_harness_users", "gauge", "Locust users (participants) running")
CONNECTED = Series(
    "store_harness_participants_connected", "gauge", "Participants connected and joined"
)
PROCESSES = Series(
    "store_harness_processes", "gauge", "Locust processes whose figures the exporter holds"
)
RECORDING = Series(
    "store_harness_history_recording",
    "gauge",
    "Processes still recording the history the consistency check reads (--history-seconds)",
)
PAUSED = Series(
    "store_harness_history_checkpoint_paused",
    "gauge",
    "Processes paused at the history checkpoint",
)
EPOCH = Series("store_harness_server_epoch", "gauge", "Server epoch: restarts of the server so far")
RESTARTING = Series(
    "store_harness_server_restarting", "gauge", "1 while a server restart is under way"
)
ANOMALIES = Series(
    "store_harness_anomalies",
    "gauge",
    "Anomalies the consistency checker found, by kind; absent until it has run",
    ("kind",),
)

SERIES: tuple[Series, ...] = (
    REQUESTS,
    ERRORS,
    VIOLATIONS,
    LATENCY,
    LATENCY_MAX,
    USERS,
    CONNECTED,
    PROCESSES,
    RECORDING,
    PAUSED,
    EPOCH,
    RESTARTING,
    ANOMALIES,
)
BY_SAMPLE_NAME: dict[str, Series] = {
    name: series for series in SERIES for name in series.sample_names()
}


def render(samples: Mapping[str, Iterable[Sample]]) -> str:
    """The text format of ``samples`` (sample name -> samples), families in table order.

    A family with no sample is left out entirely, so a figure nobody knows yet (the
    anomalies before the check) is absent rather than a made-up zero.
    """
    unknown = set(samples) - set(BY_SAMPLE_NAME)
    if unknown:
        raise ValueError(f"not declared in SERIES: {', '.join(sorted(unknown))}")
    lines: list[str] = []
    for series in SERIES:
        body = [
            _line(name, labels, value)
            for name in series.sample_names()
            for labels, value in samples.get(name, ())
        ]
        if body:
            lines.append(f"# HELP {series.name} {_escape_help(series.help)}")
            lines.append(f"# TYPE {series.name} {series.kind}")
            lines.extend(body)
    return "\n".join(lines) + "\n" if lines else ""


def _line(name: str, labels: Mapping[str, str], value: float) -> str:
    if not labels:
        return f"{name} {format_value(value)}"
    pairs = ",".join(f'{key}="{_escape_label(str(text))}"' for key, text in labels.items())
    return f"{name}{{{pairs}}} {format_value(value)}"


def format_value(value: float) -> str:
    """A sample value as the format spells it: integers without a point, NaN, +Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
