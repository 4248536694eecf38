"""The Node.js peer server (tests/peer/server.js) in a subprocess on an ephemeral port.

    with PeerServer(VARIANTS["per-key-queues"]) as peer:
        print(peer.url)

The peer is an independent implementation of docs/protocol.md on another runtime (the
`ws` package and JSON.parse); each variant behaves legally but unusually, so anything
the harness flags on one is a false alarm to fix in the harness (issue 11).
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

PEER_DIR = Path(__file__).resolve().parent / "peer"
SERVER_JS = PEER_DIR / "server.js"
#: At least 32 bytes, as RFC 7518 section 3.2 asks of an HS256 secret (R2.4).
TOKEN_SECRET = "peer-test-secret-0123456789abcdef"

#: Command-line flags of each legal variant; the names are test ids.
VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "observer-ids-per-connection": ("--observer-ids", "per-connection"),
    "extra-fields": ("--extra-fields",),
    # Short enough to keep the suite quick, long enough that a write's update often
    # arrives before its ok and pipelined replies pile up (R1.3 still holds).
    "delayed-replies": ("--delay-replies", "5"),
    "per-key-queues": ("--per-key-queues",),
    "alt-error-texts": ("--error-texts", "alt"),
}

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
_LISTENING = re.compile(r"^listening (ws://\S+)$")


def unavailable() -> str | None:
    """Why the peer cannot run here (a skip reason), or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed, so the Node.js peer server cannot run"
    if not (PEER_DIR / "node_modules" / "ws").is_dir():
        return "tests/peer/node_modules is missing: run `npm ci --prefix tests/peer`"
    return None


class PeerServer:
    """One peer server process; ``url`` is set once it prints its listening line."""

    def __init__(self, flags: tuple[str, ...] = (), *, token_secret: str | None = None) -> None:
        self.flags = flags
        self.token_secret = token_secret
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        # A file, not a pipe: a chatty server must never block on a full pipe.
        # Closed by __exit__: it outlives start() so a failure can quote it.
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115

    def start(self) -> PeerServer:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        command = ["node", str(SERVER_JS), "--port", "0", *self.flags]
        if self.token_secret is not None:
            command += ["--token-secret", self.token_secret]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.url = self._read_url()
        return self

    def _read_url(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + START_TIMEOUT_S
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    continue
                line = self._process.stdout.readline()
                if not line:
                    break
                if match := _LISTENING.match(line.strip()):
                    return match.group(1)
        self.stop()
        raise RuntimeError(
            f"the peer server {' '.join(self.flags) or '(default)'} did not print its "
            f"listening line within {START_TIMEOUT_S:g}s; stderr: {self.stderr_tail()}"
        )

    def stop(self) -> int | None:
        """SIGTERM, then a kill if it lingers; the exit code (None if never started)."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stderr_tail(self, lines: int = 20) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().splitlines()[-lines:]
        self._stderr.seek(0, os.SEEK_END)
        return "\n".join(text) or "(empty)"

    def __enter__(self) -> PeerServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._stderr.close()
