"""How the checker's cost grows with history length (100 keys, 50 participants).

    python benchmarks/bench_checker.py                  # 10k, 100k and 1M events
    python benchmarks/bench_checker.py --sizes 10000 100000
    python benchmarks/bench_checker.py --sizes 1000000 --from-file   # as `check` reads a run

Each size runs in a fresh child process so its peak memory (max RSS) is its
own. A history is generated from a correct store in simulated time (each
participant observes 10 of the keys; sets, gets and the updates they cause),
then :func:`harness.checker.check` is timed on it, decoding the events into
typed ones included. Prints events/s per size, the CPU seconds (steadier than
wall time on a shared machine) and the growth exponent ``k`` of time ~ events^k
between consecutive sizes (1.0 is linear). With ``--from-file`` the history is
written to a JSONL file first and read back with ``read_history``, as
``store-harness check`` reads a run, so the peak is the reader's and the
checker's alone (the generator's objects are freed before). Also runnable under pytest-benchmark:
``pytest benchmarks/ --benchmark-only -n 0``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from harness.checker import check

KEYS, PARTICIPANTS, OBSERVED_PER_PARTICIPANT = 100, 50, 10


def generate(events_wanted: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    keys = [f"key{i}" for i in range(KEYS)]
    names = [f"p{i}" for i in range(PARTICIPANTS)]
    events: list[dict[str, Any]] = [{"ev": "header", "process": "bench", "clock": "bench/1"}]
    observers: dict[str, list[str]] = {key: [] for key in keys}
    last: dict[tuple[str, str], int] = {}
    for name in names:
        for key in rng.sample(keys, OBSERVED_PER_PARTICIPANT):
            common = {"conn": name, "p": name, "s": "s", "req": len(events), "key": key}
            events.append({"ev": "invoke", "t": 0, "op": "observe", **common})
            events.append(
                {
                    "ev": "done",
                    "t": 1,
                    "op": "observe",
                    "result": "observing",
                    "obs": f"{name}/{key}",
                    **common,
                }
            )
            observers[key].append(name)
            last[(name, key)] = 1
    state: dict[str, str | None] = dict.fromkeys(keys)
    clock, number = 1000, 0
    while len(events) < events_wanted:
        number += 1
        clock += 10
        who, key = rng.choice(names), rng.choice(keys)
        common = {"conn": who, "p": who, "s": "s", "req": number + 10_000, "key": key}
        call, ret = clock - rng.randint(1, 40), clock + rng.randint(1, 40)
        if rng.random() < 0.7:
            value = f"{who}#{number}@{clock}"
            state[key] = value
            events.append({"ev": "invoke", "t": call, "op": "set", "value": value, **common})
            events.append({"ev": "done", "t": ret, "op": "set", "result": "ok", **common})
            for name in observers[key]:
                at = last[(name, key)] = max(last[(name, key)] + 1, clock + rng.randint(0, 60))
                events.append(
                    {
                        "ev": "update",
                        "t": at,
                        "conn": name,
                        "p": name,
                        "s": "s",
                        "obs": f"{name}/{key}",
                        "key": key,
                        "value": value,
                        "by": who,
                    }
                )
        else:
            events.append({"ev": "invoke", "t": call, "op": "get", **common})
            events.append(
                {
                    "ev": "done",
                    "t": ret,
                    "op": "get",
                    "result": "value",
                    "value": state[key],
                    **common,
                }
            )
    events[1:] = sorted(events[1:], key=lambda e: e["t"])
    return events


def measure(size: int, from_file: bool = False) -> dict[str, Any]:
    events: Any = generate(size)
    count = len(events)
    if from_file:
        import tempfile

        import orjson

        from harness.history.reader import read_history

        folder = tempfile.TemporaryDirectory()
        path = Path(folder.name) / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
        del events
        started, cpu = time.perf_counter(), time.process_time()
        verdict = check(read_history([path]))
        folder.cleanup()
    else:
        started, cpu = time.perf_counter(), time.process_time()
        verdict = check(events)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert verdict.result == "valid", verdict.to_text()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"events": count, "seconds": elapsed, "cpu_seconds": cpu, "peak_bytes": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--from-file", action="store_true", help="read it from a JSONL file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.from_file)))
        return 0
    results = []
    for size in args.sizes:
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(size), *(["--from-file"] * args.from_file)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout)
        results.append(result)
        print(
            f"{result['events']:>9} events  {result['seconds']:7.2f} s "
            f"(CPU {result['cpu_seconds']:.2f} s)  "
            f"{result['events'] / result['seconds']:>10,.0f} events/s  "
            f"peak RSS {result['peak_bytes'] / 2**20:,.0f} MiB "
            + ("(read from a file)" if args.from_file else "(generator included)")
        )
    for a, b in itertools.pairwise(results):
        exponent = math.log(b["seconds"] / a["seconds"]) / math.log(b["events"] / a["events"])
        print(f"growth exponent {a['events']} -> {b['events']}: {exponent:.2f}")
    return 0


def test_check_100k_events(benchmark: Any) -> None:
    events = generate(100_000)
    verdict = benchmark.pedantic(check, args=(events,), rounds=1, iterations=1)
    assert verdict.result == "valid"


if __name__ == "__main__":
    sys.exit(main())
