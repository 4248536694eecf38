"""Run a headless locust swarm of meeting participants and judge the server at the end.

With no --url it starts the embedded reference server first. With no options it
runs a short demo: 50 participants for 15 seconds in one session. The run
directory (default runs/<UTC time>/) receives the histories, latency histograms,
locust's CSV and HTML, the checker's verdict and the latency report.

Exit codes: 0 the verdict is valid and every threshold held; 1 a consistency
anomaly, a protocol violation any participant saw (each is counted in locust's
PROTOCOL row and quoted in run.json and the verdict) or a breached threshold;
2 the swarm could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from harness import access
from harness.errors import HarnessUsageError, ProtocolViolation
from harness.protocol.auth import SECRET_ENV
from harness.swarm import config
from harness.swarm.scenarios import SCENARIOS

if TYPE_CHECKING:
    from harness.faults.restart import RestartableServer


#: What a refused preflight join suggests (R2.4).
TOKEN_HINT = " (pass --token-secret, --token, --token-file or --token-cmd)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=50, help="participants (default 50)")
    configure_common(parser)
    configure_faults(parser)


def configure_common(parser: argparse.ArgumentParser) -> None:
    """Every swarm option but --users (the sweep takes a list of counts instead)."""
    parser.add_argument("--url", help="server to load (default: start the embedded reference)")
    parser.add_argument("--spawn-rate", type=float, default=25.0, help="participants/s joining")
    parser.add_argument("--run-time", default="15s", help="how long, e.g. 30s, 5m (default 15s)")
    parser.add_argument("--processes", type=int, default=1, help="locust worker processes")
    parser.add_argument("--out", help="run directory (default runs/<UTC time>)")
    # The swarm's own options are declared once, in harness.swarm.config.
    config.add_cli_options(parser, "main")
    group = parser.add_argument_group("scenario knobs (default: the scenario's own)")
    config.add_cli_options(group, "knob")
    access.add_options(parser)


#: Fault options and their defaults, for callers (the sweep) that do not offer them.
FAULT_DEFAULTS: dict[str, object] = {
    "fault": [], "churn": None, "restart_every": None, "restart_cmd": None,
    "restart_timeout": 30.0,
}  # fmt: skip


def configure_faults(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("fault injection (harness/faults)")
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="run a fault proxy before the server, e.g. "
        "'latency=20ms,jitter=5ms,bandwidth=64KiB,drop=0.05,partition=30%%@5s+3s'",
    )
    config.add_cli_options(faults, "fault")
    faults.add_argument(
        "--restart-every", type=float, default=None, metavar="SECONDS", help="restart the server"
    )
    faults.add_argument(
        "--restart-cmd", default=None, metavar="CMD", help="how to restart a --url server"
    )
    faults.add_argument(
        "--restart-timeout", type=float, default=30.0, metavar="SECONDS", help="per restart"
    )


def run(args: argparse.Namespace) -> int:
    from harness.faults.restart import RestartableServer
    from harness.latency import thresholds

    _validate(args)
    thresholds.gather(args.slo, args.slo_file)  # bad thresholds are a usage error before any load
    run_dir = Path(args.out or Path("runs") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.url:
        return _swarm(args, args.url, run_dir, None)
    # With --token-secret the embedded server checks tokens with it; it reads the secret
    # from its environment, so no process listing shows it (nor do its restarts').
    with environment(SECRET_ENV, access.from_args(args).token_secret):
        server = RestartableServer().start()
        try:
            print(f"store-harness: started the reference server at {server.url}", flush=True)
            return _swarm(args, server.url, run_dir, server)
        finally:
            server.stop()


@contextlib.contextmanager
def environment(name: str, value: str | None) -> Iterator[None]:
    if value is None:
        yield
        return
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def _validate(args: argparse.Namespace) -> None:
    for name, default in FAULT_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    problems = []
    if args.users < 1:
        problems.append("--users must be at least 1")
    if args.spawn_rate <= 0:
        problems.append("--spawn-rate must be positive")
    if args.processes < 1:
        problems.append("--processes must be at least 1")
    if not re.fullmatch(r"(\d+h)?(\d+m)?(\d+s?)?", args.run_time) or not args.run_time:
        problems.append(f"--run-time {args.run_time!r} is not a duration like 30s, 5m or 1h30m")
    problems += _fault_problems(args)
    problems += _metrics_problems(args)
    if problems:
        raise HarnessUsageError("; ".join(problems))
    access.from_args(args)
    SCENARIOS[args.scenario].with_overrides(**config.scenario_overrides(args))


def _metrics_problems(args: argparse.Namespace) -> list[str]:
    from harness.metrics.server import port_problem

    # A taken port fails here, before any load, rather than in locust at its start.
    problem = port_problem(args.prometheus) if args.prometheus is not None else None
    return [problem] if problem else []


def _fault_problems(args: argparse.Namespace) -> list[str]:
    from harness.faults.spec import parse_faults

    problems = []
    try:
        parse_faults(args.fault)
    except HarnessUsageError as exc:
        problems.append(str(exc))
    if args.churn is not None and not args.churn >= 0:
        problems.append("--churn must be a rate of at least 0 per second")
    if args.restart_every is not None and not args.restart_every > 0:
        problems.append("--restart-every must be a positive number of seconds")
    if not args.restart_timeout > 0:
        problems.append("--restart-timeout must be a positive number of seconds")
    if args.restart_cmd and not args.url:
        problems.append("--restart-cmd needs --url (the harness restarts its own server)")
    if args.restart_cmd and args.restart_every is None:
        problems.append("--restart-cmd needs --restart-every SECONDS")
    if args.url and args.restart_every is not None and not args.restart_cmd:
        problems.append("--restart-every with --url needs --restart-cmd CMD to restart it")
    return problems


def _swarm(
    args: argparse.Namespace, url: str, run_dir: Path, server: RestartableServer | None
) -> int:
    from harness.adapters.preflight import preflight_join

    given = access.from_args(args)
    # A server that joins but breaks the spec still runs: its participants will see the
    # violation again, and the run counts, quotes and fails on each one.
    try:
        asyncio.run(
            preflight_join(
                url,
                timeout=min(args.request_timeout or 5.0, 5.0),
                adapter=args.adapter,
                token=given.token_for,
                unauthorized_hint=TOKEN_HINT,
                **given.client_options(),
            )
        )
    except ProtocolViolation as exc:
        print(f"store-harness: the preflight join saw a protocol violation: {exc}", flush=True)
    (run_dir / "locust").mkdir(parents=True, exist_ok=True)
    from harness.faults.swarm import SwarmFaults

    with SwarmFaults(args, url, run_dir, server) as faults:
        command = locust_command(args, faults.url, run_dir) + faults.locust_args()
        code = _run_locust(command, config.locust_env(args))
    faults.record(run_dir)
    return code


def _run_locust(command: list[str], env: dict[str, str]) -> int:
    # A session of its own, so a terminal's Ctrl-C reaches only this process, which
    # asks the master to stop; the master then stops its workers in order and still
    # writes the verdict for what ran. A second signal kills it. The credentials go in
    # the environment (config.locust_env), which process listings do not show.
    process = subprocess.Popen(command, start_new_session=True, env={**os.environ, **env})
    interrupted = False

    def stop_gracefully(signum: int, frame: object) -> None:
        nonlocal interrupted
        if interrupted:
            process.kill()
            return
        interrupted = True
        print("\nstore-harness: stopping; the verdict covers what ran", flush=True)
        # SIGTERM, not SIGINT: a child inherits an ignored SIGINT (background jobs).
        process.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop_gracefully) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def locust_command(args: argparse.Namespace, url: str, run_dir: Path) -> list[str]:
    import harness.swarm

    # `store-harness run`: a LoadTestShape paces the run (harness.swarm.staged) and ends
    # it; a --run-time beside it would stop the run a second time while it finishes.
    shape_args: list[str] | None = getattr(args, "shape_args", None)
    # The path, not an import: importing locust here would monkey-patch this process.
    locustfile = Path(harness.swarm.__file__).with_name(
        "locustfile.py" if shape_args is None else "staged.py"
    )
    command = [
        sys.executable, "-m", "locust",
        "-f", str(locustfile),
        "--headless",
        "--users", str(args.users),
        "--spawn-rate", str(args.spawn_rate),
        *(["--run-time", args.run_time] if shape_args is None else shape_args),
        "--host", url,
        "--stop-timeout", "5",
        "--only-summary",
        "--loglevel", "WARNING",
        "--csv", str(run_dir / "locust" / "stats"),
        "--html", str(run_dir / "locust" / "report.html"),
        "--run-dir", str(run_dir),
    ]  # fmt: skip
    if args.processes > 1:
        command += ["--processes", str(args.processes)]
        if "--master" not in command:
            # Locust's master listens on 5557 by default, on every interface: a second
            # run on the machine would fail to start, or worse, its workers would join
            # this run's master. Local workers get a free loopback port of their own.
            port = str(_free_loopback_port())
            command += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port]
            command += ["--master-host", "127.0.0.1", "--master-port", port]
    return command + config.locust_args(args)


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
