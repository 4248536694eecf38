"""Who can judge a key: how many keys of a distributed swarm only one worker touched.

    python benchmarks/bench_key_sharing.py --processes 2 --users 100 --seconds 30

A key only one worker touched could be judged by that worker alone; a key several
touched needs every one's events in one place. This runs a local swarm of
``--processes`` workers for each scenario and counts, from the history files, the
keys (and the events on them) touched by one worker only. That count decides where
a distributed swarm judges (README, "Distributed swarms: who judges").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import orjson

SCENARIOS = ("mixed", "moderation", "notes", "key-limit")


def touched(history: Path) -> tuple[dict[tuple[str, str], set[str]], dict[tuple[str, str], int]]:
    """(session, key) -> the files with events on it, and how many events it has.

    Requests and updates name their key; a stopObserving, which names only its
    observer, is left out (its observer's other events are counted).
    """
    by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    events: dict[tuple[str, str], int] = defaultdict(int)
    for path in sorted(history.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            event = orjson.loads(line)
            key = event.get("key")
            if key is not None:
                by_key[(event.get("s") or "", key)].add(path.name)
                events[(event.get("s") or "", key)] += 1
    return by_key, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    args = parser.parse_args()
    print(f"{args.processes} processes, {args.users} participants, {args.seconds} s each")
    print("| scenario | keys | touched by one worker only | their share of events |")
    print("|---|---|---|---|")
    for scenario in args.scenarios:
        run_dir = Path(tempfile.mkdtemp(prefix="key-sharing-")) / "run"
        done = subprocess.run(
            [sys.executable, "-m", "harness", "swarm", "--scenario", scenario,
             "--users", str(args.users), "--spawn-rate", str(args.users),
             "--run-time", f"{args.seconds}s", "--processes", str(args.processes),
             "--out", str(run_dir)],
            capture_output=True, text=True, timeout=args.seconds + 300,
        )  # fmt: skip
        if done.returncode != 0:
            print(f"| {scenario} | the swarm exited {done.returncode} | | |")
            continue
        by_key, events = touched(run_dir / "history")
        alone = [key for key, files in by_key.items() if len(files) == 1]
        share = sum(events[key] for key in alone) / max(1, sum(events.values()))
        print(f"| {scenario} | {len(by_key)} | {len(alone)} | {share:.1%} |")


if __name__ == "__main__":
    main()
