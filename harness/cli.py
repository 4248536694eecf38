"""``store-harness``: one subcommand per job, each a thin adapter in harness/commands/.

Exit codes, for every subcommand (harness/exits.py): 0 passed, 1 the server
failed (an anomaly, a failed conformance case, a breached threshold), 2 the
harness could not run (bad options, unreachable server).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import HarnessError, HarnessUsageError
from harness.exits import exit_code_for

#: subcommand -> (module under harness.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the reference server"),
    "swarm": ("swarm", "a locust swarm of participants, judged at the end"),
    "sweep": ("sweep", "the same swarm at several participant counts, charted"),
    "run": ("run", "the test a TOML file describes: stages, thresholds that stop a run"),
    "conformance": ("conformance", "run the conformance suite against servers; graded reports"),
    "check": ("check", "check recorded histories for consistency anomalies"),
    "explain": ("explain", "draw one key's requests and updates in a run on a timeline"),
    "report": ("report", "turn a run directory into HTML, JSON, Markdown and .hgrm reports"),
    "fuzz": ("fuzz", "fuzz a server with hostile frames; shrink and replay failures"),
    "proxy": ("proxy", "a fault proxy (latency, bandwidth, drops, partitions) before a server"),
    "adapters": ("adapters", "list the store adapters installed, with what each store promises"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="store-harness",
        description="Load, conformance and consistency testing for realtime stores.",
    )
    parser.add_argument("--version", action="version", version=f"store-harness {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"harness.commands.{module_name}")
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__)
        module.configure(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (HarnessError, KeyboardInterrupt, BrokenPipeError) as exc:
        _tell(args.command, exc)
        return exit_code_for(exc)


def _tell(command: str, exc: BaseException) -> None:
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`| head`): nothing left to tell anyone.
        sys.stderr.close()
        return
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    elif isinstance(exc, HarnessUsageError):
        message = f"error: {exc}"
    else:
        message = f"could not run: {exc}"
    print(f"store-harness {command}: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
