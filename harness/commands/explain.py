"""Draw what the store did with one key: every request and update on a timeline.

    store-harness explain RUN_DIR --key K [--from T] [--to T] [--session S] [--out FILE]

Reads RUN_DIR/history/*.jsonl (a swarm's run directory; valid verdict or not)
and writes one self-contained page, RUN_DIR/explain-K.html unless --out says
otherwise: one lane per connection, each request a bar from invoke to reply
coloured by outcome, each update a tick on its observer's lane, the write order
as arrows. --from and --to are seconds from the run's start (its first recorded
event), as the page's axis reads.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness.errors import HarnessUsageError
from harness.history.reader import read_history
from harness.reports.timeline import explain_page
from harness.run.directory import write_text


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"seconds from the run's start are 0 or more: {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a swarm's run directory")
    parser.add_argument("--key", required=True, metavar="K", help="the key to draw")
    parser.add_argument("--session", metavar="S", help="its session, if several hold the key")
    parser.add_argument(
        "--from",
        dest="start",
        type=seconds,
        metavar="T",
        help="seconds from the run's start (its first recorded event)",
    )
    parser.add_argument(
        "--to", dest="end", type=seconds, metavar="T", help="seconds from the run's start, likewise"
    )
    parser.add_argument("--out", metavar="FILE", help="the page (default RUN_DIR/explain-K.html)")


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise HarnessUsageError(f"no run directory {run_dir}")
    files = sorted((run_dir / "history").glob("*.jsonl"))
    if not files:
        raise HarnessUsageError(f"{run_dir} holds no history (history/*.jsonl)")
    page = explain_page(
        read_history(files),
        args.key,
        session=args.session,
        start_s=args.start,
        end_s=args.end,
        source=str(run_dir),
    )
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", args.key)[:80]
    out = Path(args.out) if args.out else run_dir / f"explain-{name}.html"
    try:
        write_text(out, page)
    except OSError as exc:
        raise HarnessUsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"explain: {out}")
    return 0
