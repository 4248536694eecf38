"""--prometheus PORT: a real Prometheus scrapes a running swarm, and bad ports fail cleanly."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_server import PrometheusServer, free_port

from harness.checker.verdict import KINDS as ANOMALY_KINDS
from harness.cli import main

#: The longest a swarm of these tests may take, start to verdict.
SWARM_TIMEOUT_S = 150


DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "store-harness.json"


def dashboard_queries() -> list[str]:
    panels = orjson.loads(DASHBOARD.read_bytes())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[PrometheusServer, int]]:
    """A real Prometheus scraping 127.0.0.1:PORT every second, and PORT."""
    port = free_port()
    try:
        server = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{port}"])
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with server:
        yield server, port


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_prometheus_scrapes_a_running_swarm_whose_notify_series_end_at_report_json(
    tmp_path: Path, prometheus: tuple[PrometheusServer, int], processes: int
) -> None:
    server, port = prometheus
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "harness", "swarm", "--users", "10", "--spawn-rate", "10",
        "--run-time", "10s", "--processes", str(processes), "--out", str(run_dir),
        "--prometheus", str(port),
    ]  # fmt: skip
    swarm = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # While the swarm runs, Prometheus already holds its notifications.
        live = None
        deadline = time.monotonic() + 60
        while swarm.poll() is None and time.monotonic() < deadline and not live:
            live = server.value('store_harness_requests_total{operation="notify"}')
            time.sleep(0.25)
        running = swarm.poll() is None
        if live:  # every query of the dashboard is PromQL this Prometheus runs
            for expr in dashboard_queries():
                server.query(expr.replace("$__rate_interval", "5s").replace("$instance", ".*"))
        output, _ = swarm.communicate(timeout=SWARM_TIMEOUT_S)
    finally:
        if swarm.poll() is None:
            swarm.kill()
            swarm.wait()
    assert swarm.returncode == 0, output[-3000:]
    assert live and running, "Prometheus saw no notification while the swarm ran"
    assert f"live metrics at http://127.0.0.1:{port}/metrics" in output

    report = orjson.loads((run_dir / "report" / "report.json").read_bytes())
    expected = report["summary"]["notifications"]
    assert expected == report["metrics"]["notify"]["count"]
    # One scrape interval's worth of notifications: the busiest second's, per second scraped.
    tolerance = max(report["timeline"]["throughput"]["notify"]) * server.scrape_interval_s
    assert 0 < tolerance < expected / 2, "the comparison would say nothing"
    # The target is gone now: its series' last values are the highest of the run.
    last = "max_over_time({}[5m])"
    for series in (
        'store_harness_requests_total{operation="notify"}',
        'store_harness_latency_seconds_count{operation="notify"}',
    ):
        final = server.value(last.format(series))
        assert final is not None and abs(final - expected) <= tolerance, (series, final, expected)

    assert server.value(last.format("store_harness_participants_connected")) == 10
    assert server.value(last.format("store_harness_users")) == 10
    assert server.value(last.format("store_harness_processes")) == processes
    p99 = server.value(
        last.format('store_harness_latency_seconds{operation="notify",quantile="0.99"}')
    )
    assert p99 is not None and 0 < p99 < 5
    assert server.value(last.format('store_harness_latency_seconds_count{operation="fanout"}'))
    # The checker ran at the end: its counts, every kind it knows, all zero for a valid run.
    anomalies = server.query(last.format("store_harness_anomalies"))
    assert {row["metric"]["kind"] for row in anomalies} == set(ANOMALY_KINDS)
    assert all(float(row["value"][1]) == 0 for row in anomalies)
    assert server.value("sum(store_harness_errors_total)") in (None, 0.0)


def _listening() -> tuple[socket.socket, int]:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken, taken.getsockname()[1]


def test_a_port_in_use_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken, port = _listening()
    with taken:
        code = main(["swarm", "--out", str(tmp_path / "run"), "--prometheus", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        f"store-harness swarm: error: --prometheus {port}: the port is in use"
    ]


@pytest.mark.parametrize("port", ["70000", "-1", "ninety"])
def test_a_bad_port_is_refused_by_the_option_parser(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["swarm", "--prometheus", port])
    assert exit.value.code == 2
    assert "--prometheus" in capsys.readouterr().err


@pytest.mark.slow
def test_locust_itself_says_a_taken_port_in_one_line(tmp_path: Path) -> None:
    # The same race-free answer when the port is taken after the check, or with `locust -f`.
    import harness.swarm

    locustfile = Path(harness.swarm.__file__).with_name("locustfile.py")
    taken, port = _listening()
    with taken:
        command = [
            sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
            "--users", "1", "--run-time", "1s", "--host", "ws://127.0.0.1:9/",
            "--run-dir", str(tmp_path / "run"), "--prometheus", str(port),
        ]  # fmt: skip
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"store-harness: --prometheus {port}: the port is in use" in done.stderr.splitlines()
