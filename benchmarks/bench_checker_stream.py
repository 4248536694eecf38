"""The streaming checker on bench_checker.py's input: the same history, judged key by key.

    python benchmarks/bench_checker_stream.py                 # 1M events
    python benchmarks/bench_checker_stream.py --sizes 100000 1000000

One child process writes bench_checker.py's generated history to a JSONL
file; a fresh one times the streaming checker on it (reading, spilling to
per-key segments, judging), so its peak memory (max RSS) is the checker's
alone, where bench_checker.py's includes the generator. Prints the same figures
as bench_checker.py, plus the segments' size on disk and the largest key.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from bench_checker import generate

from harness.checker.stream import StreamChecker


def write(size: int, path: Path) -> None:
    events = generate(size)
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))


def measure(path: Path) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    checker = StreamChecker(path.parent / "segments")
    checker.finish_file(path)
    verdict = checker.verdict()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert verdict.result == "valid", verdict.to_text()
    checker.segments.remove()
    return {
        "events": verdict.stats["events"],
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "segment_bytes": checker.segments.disk_bytes(),
        "largest_key_events": checker.largest_key,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--write", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--check", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write(int(args.write[0]), Path(args.write[1]))
        return 0
    if args.check:
        print(json.dumps(measure(args.check)))
        return 0
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-stream-") as directory:
            path = Path(directory) / "history.jsonl"
            subprocess.run([sys.executable, __file__, "--write", str(size), str(path)], check=True)
            child = subprocess.run(
                [sys.executable, __file__, "--check", str(path)], capture_output=True,
                text=True, check=True,
            )  # fmt: skip
        r = json.loads(child.stdout)
        print(
            f"{r['events']:>9} events  {r['seconds']:7.2f} s (CPU {r['cpu_seconds']:.2f} s)  "
            f"{r['events'] / r['seconds']:>10,.0f} events/s  peak RSS "
            f"{r['peak_bytes'] / 2**20:,.0f} MiB  segments {r['segment_bytes'] / 2**20:,.0f} MiB"
            f"  largest key {r['largest_key_events']:,} events"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
