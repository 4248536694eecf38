"""``/metrics`` over HTTP, on gevent's WSGI server, inside a locust process.

gevent's server is a greenlet on locust's hub, so a scrape reads the figures between
two events and needs no lock. It listens on every interface, as exporters do: the
Prometheus that scrapes it usually runs on another machine.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from harness.metrics.exposition import CONTENT_TYPE

#: The longest the end of a run waits for a last scrape (see :meth:`MetricsServer.last_scrape`).
FINAL_SCRAPE_WAIT_S = 30.0


def port_problem(port: int, host: str = "") -> str | None:
    """Why ``port`` cannot serve metrics (in use, not allowed), or None.

    The swarm asks before it starts any load, so a taken port is a one-line usage
    error rather than a locust process that dies at start.
    """
    if port == 0:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As gevent's listener does: a port in TIME_WAIT is free to bind.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"--prometheus {port}: the port is in use"
            return f"--prometheus {port}: cannot listen there ({exc.strerror})"
    return None


class MetricsServer:
    """Serves ``render()``'s text at ``/metrics`` and remembers when it was scraped."""

    def __init__(self, port: int, render: Callable[[], str], host: str = "") -> None:
        from gevent.pywsgi import WSGIServer

        self.render = render
        #: monotonic times of the last two scrapes
        self.scrapes: list[float] = []
        self._server = WSGIServer((host, port), self._app, log=None, error_log=None)

    def start(self) -> MetricsServer:
        """Listen; an OSError says why it cannot (the port is in use...)."""
        self._server.start()
        return self

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def last_scrape(self, after: float) -> bool:
        """Wait until a scrape served the figures of ``after`` (monotonic) or later; bounded.

        The wait lasts one and a half of the scrape interval seen so far (at most
        :data:`FINAL_SCRAPE_WAIT_S`), so a run's last figures reach Prometheus before
        the process exits; with fewer than two scrapes seen, nobody is scraping and it
        does not wait. True when such a scrape came.
        """
        import gevent

        if len(self.scrapes) < 2:
            return False
        interval = self.scrapes[-1] - self.scrapes[-2]
        deadline = time.monotonic() + min(1.5 * interval + 0.5, FINAL_SCRAPE_WAIT_S)
        while self.scrapes[-1] < after and time.monotonic() < deadline:
            gevent.sleep(0.05)
        return self.scrapes[-1] >= after

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b""]
        if path == "/metrics":
            started = time.monotonic()
            body = self.render().encode()
            self.scrapes = [*self.scrapes[-1:], started]
            start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
            return [body]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"store-harness swarm: metrics at /metrics\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: metrics are at /metrics\n"]
