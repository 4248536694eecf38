"""Check recorded histories for consistency anomalies.

    store-harness check worker-1.jsonl worker-2.jsonl [--json]

Reads every file as one history (a swarm's workers each write one), runs the
consistency checker and prints its verdict. Exit code 0 when valid (or unknown:
not enough information to decide), 1 when an anomaly was found, 2 when a file
cannot be read.
"""

from __future__ import annotations

import argparse

import orjson

from harness.checker import Result, check
from harness.exits import exit_code
from harness.history.reader import read_history


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("histories", nargs="+", metavar="HISTORY.jsonl", help="history files")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")


def run(args: argparse.Namespace) -> int:
    verdict = check(read_history(args.histories))
    if args.json:
        print(orjson.dumps(verdict.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(verdict.to_text())
    return exit_code(verdict.result is Result.INVALID)
