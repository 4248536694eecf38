"""Run the conformance suite against one or more servers and write graded reports.

Each server gets conformance.json, conformance.html, conformance.xml (JUnit) and
conformance.md; with several --url a matrix.html compares them side by side.
With no --url the suite runs against an embedded reference server.
With --token-secret every join carries a token minted for its session and
participant, and the access cases of R2.4 run; --token sends one token as given;
--token-file, --token-cmd, --header, --subprotocol, --ca-file and --insecure as for
every command (harness.access).
Exit code 0: no required case failed; 1: one did; 2: the suite could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from harness import access
from harness.conformance.case import CaseResult, Grade, SuiteResult
from harness.conformance.context import SuiteOptions
from harness.conformance.reports import write_matrix, write_reports
from harness.conformance.reports.text import verdict
from harness.conformance.runner import check_options, check_suite_options, run_suite, select_cases
from harness.errors import SuiteCannotRun


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        help="server to test; repeat to compare several (default: an embedded reference server)",
    )
    parser.add_argument(
        "--report-dir",
        default="conformance-report",
        type=Path,
        help="where to write the reports (default: conformance-report)",
    )
    parser.add_argument(
        "--session-prefix",
        default="conformance",
        help="prefix of every session name, so runs on a shared server never "
        "collide (default: conformance)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=5.0,
        help="seconds to wait for each reply (default 5)",
    )
    parser.add_argument(
        "--adapter",
        help="store adapter: an installed name or module:Class (default: chosen by the --url "
        "scheme; `store-harness adapters` lists them)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.1,
        help="seconds to wait before concluding a forbidden update did not come (default 0.1)",
    )
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only cases whose id matches (repeatable), e.g. 'R3.5-*'",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    # --token-secret also runs the access cases (R2.4); with no --url the embedded server
    # checks tokens with it.
    access.add_options(parser)


def _folder_name(index: int, url: str) -> str:
    return f"{index}-" + re.sub(r"[^A-Za-z0-9.]+", "-", url.split("://", 1)[-1]).strip("-")


def _print_result(case: CaseResult) -> None:
    if case.grade in (Grade.FAILED, Grade.ERROR, Grade.NON_STRICT):
        first_line = case.detail.splitlines()[0] if case.detail else ""
        print(f"  {case.grade:>10}  {case.case_id}: {first_line}"[:240])


async def _run_all(
    urls: list[str], options: SuiteOptions, args: argparse.Namespace
) -> list[SuiteResult]:
    cases = select_cases(args.case)
    results = []
    for url in urls:
        if not args.quiet:
            print(f"conformance: {url} ({len(cases)} cases)")
        try:
            result = await run_suite(url, options, cases, None if args.quiet else _print_result)
        except SuiteCannotRun as exc:
            started = datetime.now(UTC).isoformat(timespec="seconds")
            result = SuiteResult(url, started, 0.0, {}, options.to_json(), [], cannot_run=str(exc))
        results.append(result)
    return results


def run(args: argparse.Namespace) -> int:
    given = access.from_args(args)
    options = SuiteOptions(
        args.session_prefix,
        args.request_timeout,
        given.token,
        args.settle,
        given.token_secret,
        args.adapter,
        given,
    )
    check_suite_options(options)
    urls = list(args.url)
    for url in urls:
        check_options(url, options)
    select_cases(args.case)  # bad --case patterns are a usage error before anything runs
    if not urls:
        from harness.server.embedded import EmbeddedServer

        with EmbeddedServer(token_secret=options.token_secret) as server:
            results = asyncio.run(_run_all([server.url], options, args))
    else:
        results = asyncio.run(_run_all(urls, options, args))
    report_dir: Path = args.report_dir
    if len(results) == 1:
        folders = [report_dir]
    else:
        folders = [report_dir / _folder_name(i + 1, r.url) for i, r in enumerate(results)]
    for folder, result in zip(folders, results, strict=True):
        write_reports(result, folder)
        counts = ", ".join(f"{result.count(g)} {g}" for g in Grade if result.count(g))
        print(
            f"{verdict(result)}: {result.url}: {counts or 'no cases ran'} "
            f"in {result.duration_s:.1f}s; reports in {folder}"
        )
        if result.cannot_run:
            print(f"store-harness conformance: could not run: {result.cannot_run}", file=sys.stderr)
    if len(results) > 1:
        pairs = [(f.name, r) for f, r in zip(folders, results, strict=True)]
        print(f"matrix: {write_matrix(pairs, report_dir)}")
    return max(r.exit_code for r in results)
