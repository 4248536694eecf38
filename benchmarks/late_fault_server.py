"""The long run's hidden fault: a reference server that loses 1% of updates from a set time.

    python benchmarks/late_fault_server.py serve   --port P --fault-at UNIX_TIME --pidfile F
    python benchmarks/late_fault_server.py restart --port P --fault-at UNIX_TIME --pidfile F

``serve`` runs the test suite's ``LateDroppedUpdatesServer`` (tests/faulty_servers.py) on
loopback port P. It is correct until wall time ``--fault-at``, and after that one write
in a hundred reaches no observer. Because the fault time is a wall-clock instant rather
than a delay, a restarted server keeps the schedule. ``restart`` is the swarm's
``--restart-cmd``: it stops the server named by the pidfile, starts a new one on the same
port in a session of its own, and returns once that one accepts connections.
bench_long_run.py runs both when given ``--late-fault-after``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

#: Bounds on stopping the old server and on the new one coming up.
STOP_S, START_S = 10.0, 20.0


def serve(port: int, fault_at: float, pidfile: Path) -> None:
    from faulty_servers import LateDroppedUpdatesServer

    server_class = LateDroppedUpdatesServer.after(max(0.0, fault_at - time.time()))

    async def main() -> None:
        server = await server_class(port=port).start()
        pidfile.write_text(str(os.getpid()))
        await server.serve_forever()

    asyncio.run(main())


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def start(port: int, fault_at: float, pidfile: Path) -> subprocess.Popen[bytes]:
    """A new server, in a session of its own; returns once it accepts connections."""
    command = [sys.executable, __file__, "serve", "--port", str(port)]
    command += ["--fault-at", repr(fault_at), "--pidfile", str(pidfile)]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + START_S
    while not accepts(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the late-fault server did not come up on port {port}")
        time.sleep(0.05)
    return process


def stop(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + STOP_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("serve", "restart"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fault-at", type=float, required=True, help="unix time")
    parser.add_argument("--pidfile", type=Path, required=True)
    args = parser.parse_args()
    if args.action == "serve":
        serve(args.port, args.fault_at, args.pidfile)
    else:
        stop(args.pidfile)
        start(args.port, args.fault_at, args.pidfile)


if __name__ == "__main__":
    main()
