"""Soak: a long swarm with participant churn; does anything grow that should not?

    python benchmarks/soak.py [--minutes 10] [--users 500] [--churn 5] [--history-seconds 60]

Starts the reference server in a child process, measures its memory and open
files, runs ``store-harness swarm`` against it with participants leaving and
rejoining all along (``--churn`` per second), samples the server and the locust
process every ``--every`` seconds, and measures the server again once the swarm
has ended and its participants have left. Not run in CI: it takes as long as
``--minutes`` says.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psutil

from harness.server.embedded import ServerProcess


def usage(process: psutil.Process) -> tuple[float, int]:
    """Resident memory in MiB and open file descriptors."""
    return process.memory_info().rss / 2**20, process.num_fds()


def locust_process(swarm: psutil.Process) -> psutil.Process | None:
    for child in swarm.children(recursive=True):
        if "locust" in " ".join(child.cmdline()):
            return child
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--churn", type=float, default=5.0, help="leave+rejoin per second")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument(
        "--history-seconds", type=float, default=60.0, help="recorded for the checker"
    )
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="soak-")) / "run"
    seconds = int(args.minutes * 60)
    command = [
        sys.executable, "-m", "harness", "swarm",
        "--users", str(args.users), "--spawn-rate", str(max(25, args.users // 10)),
        "--run-time", f"{seconds}s", "--churn", str(args.churn), "--out", str(run_dir),
        "--history-seconds", str(args.history_seconds),
    ]  # fmt: skip
    with ServerProcess() as server:
        assert server.process is not None
        serving = psutil.Process(server.process.pid)
        time.sleep(1)
        before = usage(serving)
        print(f"server before: {before[0]:.1f} MiB, {before[1]} open files")
        swarm_cmd = [*command, "--url", server.url]
        print("$", " ".join(swarm_cmd[1:]), flush=True)
        started = time.monotonic()
        swarm = subprocess.Popen(swarm_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        swarm_process = psutil.Process(swarm.pid)
        print(f"{'t':>6} {'server MiB':>11} {'server fds':>11} {'locust MiB':>11}")
        try:
            while swarm.poll() is None:
                time.sleep(args.every)
                if swarm.poll() is not None:
                    break
                locust = locust_process(swarm_process)
                locust_mib = f"{usage(locust)[0]:.1f}" if locust else "-"
                memory, fds = usage(serving)
                elapsed = time.monotonic() - started
                print(f"{elapsed:6.0f} {memory:11.1f} {fds:11d} {locust_mib:>11}", flush=True)
            swarm.wait(timeout=seconds + 300)
        finally:
            if swarm.poll() is None:
                swarm.kill()
        time.sleep(2)  # the last participants' connections close
        after = usage(serving)
    info = orjson.loads((run_dir / "run.json").read_bytes())
    connects = sum(p.get("connects", {}).get("ok", 0) for p in info.get("processes", []))
    print(f"server after:  {after[0]:.1f} MiB, {after[1]} open files")
    print(
        f"swarm exit {swarm.returncode}, verdict {info.get('verdict')}, "
        f"{connects} joins over {seconds} s, run directory {run_dir}"
    )


if __name__ == "__main__":
    main()
