"""dashboards/store-harness.json is a Grafana dashboard that asks only for what the exporter serves.

Every PromQL expression is read for the series it names, the labels it matches or
groups by, and the label values it matches; each must be one the exporter declares
(:data:`harness.metrics.exposition.SERIES`) and can produce.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.latency.histograms import METRICS
from harness.metrics import exposition as ex
from harness.metrics.collect import OPERATION

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "store-harness.json"
#: The labels Prometheus itself puts on every series it scrapes.
TARGET_LABELS = {"instance", "job"}
#: The PromQL functions, aggregations and keywords the dashboard may use.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "by", "without",
    "max_over_time", "min_over_time", "last_over_time", "clamp_min", "and", "or", "unless",
}  # fmt: skip
#: The values the exporter gives its labels, where it can know them all.
LABEL_VALUES = {
    "operation": {*METRICS, *OPERATION.values()},
    "quantile": {str(q) for q in ex.QUANTILES},
}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):  # label_values(SERIES, label): the series is PromQL
            found = re.fullmatch(r"label_values\((\w+), *(\w+)\)", query["query"])
            assert found, query
            exprs.append(f"count by ({found[2]}) ({found[1]})")
    return exprs


def problems(expr: str) -> tuple[set[str], list[str]]:
    """The exporter series ``expr`` names, and what in it the exporter cannot serve."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    found: list[str] = []
    names: set[str] = set()
    # name{matchers}: the labels and values must be the series'
    for name, matchers in re.findall(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}", expr):
        series = ex.BY_SAMPLE_NAME.get(name)
        for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
            if series is not None and label not in (*series.labels, *TARGET_LABELS):
                found.append(f"{name} has no label {label!r}")
            known = LABEL_VALUES.get(label)
            values = value.split("|") if "~" in op else [value]
            if known is not None and not set(values) <= known:
                found.append(f"{label} is never {sorted(set(values) - known)}")
    bare = re.sub(r'"[^"]*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    grouped = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", bare)
    bare = re.sub(r"\b(by|without)\s*\([^)]*\)", " ", bare)
    for word in re.findall(r"[a-zA-Z_:][\w:]*", bare):
        if word in ex.BY_SAMPLE_NAME:
            names.add(word)
        elif word not in PROMQL_WORDS:
            found.append(f"{word!r} is neither a series of the exporter nor PromQL")
    labels = {label for s in names for label in ex.BY_SAMPLE_NAME[s].labels} | TARGET_LABELS
    for group in grouped:
        for label in re.findall(r"\w+", group):
            if label not in labels:
                found.append(f"grouped by {label!r}, a label none of {sorted(names)} has")
    if not names:
        found.append("names no series of the exporter")
    return names, found


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = load()
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    every = panels(dashboard)
    assert len({p["id"] for p in every}) == len(every), "panel ids are unique"
    for panel in every:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"stat", "timeseries"}, panel["type"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"


def test_every_query_names_only_what_the_exporter_serves() -> None:
    served: set[str] = set()
    for expr in expressions(load()):
        names, found = problems(expr)
        assert not found, (expr, found)
        served |= {ex.BY_SAMPLE_NAME[name].name for name in names}
    # And the dashboard shows every family the exporter has: the two tables stay one.
    assert served == {series.name for series in ex.SERIES}


@pytest.mark.parametrize(
    "expr, complaint",
    [
        ("rate(store_harness_request_total[1m])", "neither a series"),
        ('store_harness_latency_seconds{quantile="0.95"}', "quantile is never"),
        ('store_harness_users{operation="set"}', "has no label"),
        ("sum by (code) (store_harness_requests_total)", "grouped by 'code'"),
        ("vector(1)", "names no series"),
    ],
)
def test_the_reader_catches_what_the_exporter_does_not_serve(expr: str, complaint: str) -> None:
    # Guards the test above against passing vacuously.
    assert any(complaint in problem for problem in problems(expr)[1])
