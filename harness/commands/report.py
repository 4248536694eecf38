"""Turn a run directory into report.html, report.json, report.md and .hgrm files.

Exits 1 when a threshold (--slo, --slo-file) is breached, a comparison regressed
beyond --max-regression, or the run's consistency verdict is invalid.
"""

from __future__ import annotations

import argparse

from harness.exits import exit_code
from harness.latency.thresholds import gather, parse_percentiles, parse_regression


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory to report on")
    parser.add_argument("--compare", metavar="BASELINE_RUN_DIR", help="overlay a baseline run")
    parser.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="EXPR",
        help="threshold such as 'notify.p99<50ms' or 'errors<0.1%%' (repeatable)",
    )
    parser.add_argument(
        "--slo-file", action="append", default=[], metavar="FILE.toml", help="thresholds file"
    )
    parser.add_argument(
        "--max-regression", metavar="PCT", help="with --compare: fail if slower by more, e.g. 10%%"
    )
    parser.add_argument(
        "--at", default="p99", metavar="STATS", help="statistics --max-regression checks (p99)"
    )
    parser.add_argument("--out", default="reports", metavar="DIR", help="output (default reports/)")


def run(args: argparse.Namespace) -> int:
    from harness.errors import HarnessUsageError
    from harness.reports import build_report

    thresholds = gather(args.slo, args.slo_file)
    max_regression = parse_regression(args.max_regression) if args.max_regression else None
    if max_regression is not None and not args.compare:
        raise HarnessUsageError("--max-regression needs --compare BASELINE_RUN_DIR")
    result = build_report(
        args.run_dir,
        out_dir=args.out,
        thresholds=thresholds,
        baseline_dir=args.compare,
        max_regression=max_regression,
        at=parse_percentiles(args.at),
    )
    figures = result.figures
    partial = " (partial run)" if figures["partial"] else ""
    print(f"report {figures['verdict']}{partial}: {result.out_dir / 'report.html'}")
    for line in figures["threshold_lines"]:
        print(f"  {line}")
    for r in (figures.get("comparison") or {}).get("regressions", []):
        state = "passed" if r["passed"] else "REGRESSED"
        print(f"  {r['metric']}.{r['stat']} {r['delta']:+.1%} against the baseline: {state}")
    return exit_code(result.failed)
