"""Check recorded histories for consistency anomalies.

    store-harness check worker-1.jsonl worker-2.jsonl [--json] [--out DIR]

Reads every file as one history (a swarm's workers each write one), runs the
consistency checker and prints its verdict. For a swarm's run directory, it judges
only what the store promised (run.json's adapter capabilities). Exit code 0 when valid (or unknown:
not enough information to decide), 1 when an anomaly was found, 2 when a file
cannot be read. With --out DIR it also writes verdict.json, verdict.txt and
verdict.html (each anomaly's counterexample drawn on a timeline) into DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import orjson

from harness.adapters.base import NATIVE_CAPABILITIES, Capabilities
from harness.checker import Result, Verdict, check
from harness.errors import HarnessUsageError
from harness.exits import exit_code
from harness.history.reader import History, read_history
from harness.reports.timeline import beside_verdict, write_verdict_page
from harness.run.directory import write_verdict


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("histories", nargs="+", metavar="HISTORY.jsonl", help="history files")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="also write verdict.json, verdict.txt and verdict.html (timelines) into DIR",
    )


def _promised(histories: list[str]) -> Capabilities:
    """What the store promised, from the run.json of a swarm's run directory, if there is one.

    A swarm writes its histories to RUN_DIR/history/ and the adapter it used, with
    its capabilities, to RUN_DIR/run.json; without one, the store protocol's promises.
    """
    run_json = Path(histories[0]).resolve().parent.parent / "run.json"
    if run_json.is_file():
        with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
            return Capabilities(**orjson.loads(run_json.read_bytes())["adapter"]["capabilities"])
    return NATIVE_CAPABILITIES


def _write(out: Path, history: History, verdict: Verdict) -> Path:
    """verdict.json, verdict.txt and verdict.html into ``out``; the page's path."""
    try:
        write_verdict(out, verdict.to_json(), verdict.to_text())
        return write_verdict_page(out, history, verdict)
    except OSError as exc:
        raise HarnessUsageError(f"cannot write into {out}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    promised = _promised(args.histories)
    history = read_history(args.histories)
    verdict = check(
        history,
        per_key_order=promised.per_key_order,
        not_promised=promised.skipped_checks(wire=False),
    )
    page = _write(Path(args.out), history, verdict) if args.out is not None else None
    if args.json:
        print(orjson.dumps(verdict.to_json(), option=orjson.OPT_INDENT_2).decode())
        if page is not None:
            print(f"verdict.html: {page}", file=sys.stderr)
    else:
        print(beside_verdict(verdict.to_text(), page))
    return exit_code(verdict.result is Result.INVALID)
