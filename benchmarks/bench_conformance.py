"""Wall time of the whole conformance suite against the reference server (target: < 60 s).

    python benchmarks/bench_conformance.py [--runs 3] [--embedded]

The server runs as ``store-harness serve`` in a child process (as a user's
server would), unless --embedded puts it on a thread of this process. Prints
each run's wall time, the median, and the slowest cases of the last run. Also
runnable under pytest-benchmark: ``pytest benchmarks/bench_conformance.py --benchmark-only -n 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.conformance import SuiteOptions, SuiteResult, run_suite
from harness.server.embedded import EmbeddedServer, ServerProcess

TARGET_SECONDS = 60.0


def run_once(url: str) -> tuple[float, SuiteResult]:
    started = time.perf_counter()
    result = asyncio.run(run_suite(url, SuiteOptions(session_prefix="bench")))
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="suite runs to time (default 3)")
    parser.add_argument("--embedded", action="store_true", help="server on a thread, not a process")
    args = parser.parse_args(argv)
    server = EmbeddedServer() if args.embedded else ServerProcess()
    with server:
        timings = []
        for run in range(1, args.runs + 1):
            seconds, result = run_once(server.url)
            timings.append(seconds)
            print(f"run {run}: {seconds:.2f} s, {len(result.results)} cases, {result.summary()}")
    median = statistics.median(timings)
    print(f"median wall time: {median:.2f} s (target < {TARGET_SECONDS:g} s)")
    print("slowest cases of the last run:")
    for case in sorted(result.results, key=lambda r: -r.duration_s)[:5]:
        print(f"  {case.duration_s:6.3f} s  {case.case_id}")
    failed = result.exit_code != 0
    if failed:
        print("the reference server did not pass: the timing is not meaningful", file=sys.stderr)
    return 1 if failed or median >= TARGET_SECONDS else 0


def test_conformance_suite_wall_time(benchmark: object) -> None:
    with ServerProcess() as server:
        result = benchmark.pedantic(  # type: ignore[attr-defined]
            lambda: run_once(server.url)[1], rounds=1, iterations=1
        )
    assert result.exit_code == 0


if __name__ == "__main__":
    sys.exit(main())
