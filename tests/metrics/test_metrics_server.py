"""/metrics over real HTTP on gevent's server, and the port check the swarm runs first."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import gevent
import pytest

from harness.metrics.exposition import CONTENT_TYPE
from harness.metrics.server import MetricsServer, port_problem


def _fetch(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _in_a_thread(call: Callable[[], object]) -> object:
    """``call()`` in an OS thread while this one runs gevent's hub (the server's greenlet)."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        gevent.sleep(0.01)
    thread.join(1)
    assert result, "the request did not finish"
    return result[0]


def test_metrics_are_served_with_the_format_s_content_type() -> None:
    renders: list[int] = []

    def render() -> str:
        renders.append(1)
        return "store_harness_users 3\n"

    server = MetricsServer(0, render, host="127.0.0.1").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert _in_a_thread(lambda: _fetch(f"{base}/metrics")) == (
            200,
            CONTENT_TYPE,
            "store_harness_users 3\n",
        )
        status, _, body = _in_a_thread(lambda: _fetch(f"{base}/other"))  # type: ignore[misc]
        assert status == 404 and "/metrics" in body
        assert len(renders) == 1 and len(server.scrapes) == 1
    finally:
        server.stop()


def test_the_end_waits_for_one_more_scrape_only_when_someone_scrapes() -> None:
    server = MetricsServer(0, lambda: "", host="127.0.0.1").start()
    try:
        started = time.monotonic()
        assert server.last_scrape(after=time.monotonic()) is False  # nobody scraped: no wait
        assert time.monotonic() - started < 1
        url = f"http://127.0.0.1:{server.port}/metrics"

        def scrape_every_200_ms() -> None:
            for _ in range(8):
                _fetch(url)
                time.sleep(0.2)

        thread = threading.Thread(target=scrape_every_200_ms)
        thread.start()
        while len(server.scrapes) < 2:
            gevent.sleep(0.01)
        final = time.monotonic()
        assert server.last_scrape(after=final) is True
        assert server.scrapes[-1] >= final
        while thread.is_alive():
            gevent.sleep(0.01)
    finally:
        server.stop()


def test_a_taken_port_is_named_before_anything_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_problem(port) == f"--prometheus {port}: the port is in use"
        with pytest.raises(OSError):
            MetricsServer(port, lambda: "").start()
    assert port_problem(port) is None  # free again once closed
    assert port_problem(0) is None
