"""A real etcd (Debian's etcd-server) on free loopback ports, for the etcd adapter's tests.

`.ci/run` installs it; a missing binary fails the tests that need it rather than
skipping them, so the suite never passes without having judged etcd.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/health")
        return b'"health":"true"' in connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()


class EtcdServer:
    """``with EtcdServer(data_dir) as etcd: etcd.url(prefix)``; stopped on exit."""

    def __init__(
        self, data_dir: Path, port: int | None = None, peer_port: int | None = None
    ) -> None:
        self.binary = shutil.which("etcd")
        if self.binary is None:
            raise RuntimeError("etcd is not installed: apt-get install etcd-server (.ci/run does)")
        self.data_dir = data_dir
        # Given ports restart an etcd where it was (the restart tests do).
        self.port = port or _free_port()
        self.peer_port = peer_port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, prefix: str = "harness-test") -> str:
        return f"etcd://127.0.0.1:{self.port}/{prefix}"

    def __enter__(self) -> EtcdServer:
        client = f"http://127.0.0.1:{self.port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.log = open(self.data_dir.with_suffix(".log"), "wb")
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "--name=harness",
                f"--data-dir={self.data_dir}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=harness={peer}",
                "--log-level=error",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                log = self.data_dir.with_suffix(".log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"etcd did not become healthy on port {self.port}:\n{log}")
            time.sleep(0.1)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self.log.close()
