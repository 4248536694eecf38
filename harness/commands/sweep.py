"""Run the same swarm at several participant counts and chart how latency and throughput scale.

Each count gets its own run directory under --out (users-100/, users-500/...);
sweep.html and sweep.json beside them chart notification p50/p99 and throughput
against participants. Exit codes as for swarm: the worst of the runs.
"""

from __future__ import annotations

import argparse
import copy
from datetime import UTC, datetime
from pathlib import Path

from harness import access
from harness.commands import swarm
from harness.errors import HarnessUsageError
from harness.exits import EXIT_OK
from harness.protocol.auth import SECRET_ENV


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--users", default="100,500,1000", help="participant counts (default 100,500,1000)"
    )
    swarm.configure_common(parser)


def run(args: argparse.Namespace) -> int:
    from harness.reports import render_sweep
    from harness.server.embedded import ServerProcess

    counts = _counts(args.users)
    out = Path(args.out or Path("runs") / f"sweep-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    worst = EXIT_OK
    run_dirs = []
    secret = access.from_args(args).token_secret  # a usage error before any server starts
    # With --token-secret and no --url the server checks tokens; it reads the secret
    # from its environment, which process listings do not show.
    with (
        swarm.environment(SECRET_ENV, secret),
        ServerProcess() if not args.url else _Given(args.url) as server,
    ):
        for count in counts:
            one = copy.copy(args)
            one.users, one.url, one.out = count, server.url, str(out / f"users-{count}")
            print(f"store-harness sweep: {count} participants", flush=True)
            worst = max(worst, swarm.run(one))
            run_dirs.append(one.out)
    page = render_sweep(run_dirs, out)
    print(f"store-harness sweep: scaling report {page}")
    return worst


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise HarnessUsageError(f"--users {text!r} must be counts like 100,500,1000") from None
    if not counts or min(counts) < 1:
        raise HarnessUsageError(f"--users {text!r} must be positive counts like 100,500,1000")
    return counts


class _Given:
    """A server the user runs: nothing to start or stop."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> _Given:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
