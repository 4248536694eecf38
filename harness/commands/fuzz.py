"""Fuzz a server with hostile frames; shrink and save the first failure as a replay file.

Every frame's answer is judged against the spec (the right error code and id,
a valid reply, or a close with the code RFC 6455 or the spec gives that frame),
and after every batch a fresh connection must still join and read back exactly
what the acknowledged writes left. With neither --seconds nor --frames it stops
after 2,000 frames or 30 s, whichever comes first.
Exit code 0: nothing found; 1: the server failed; 2: the fuzzer could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from harness import access
from harness.errors import HarnessUsageError
from harness.exits import EXIT_FAILED, EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="server to fuzz, e.g. ws://127.0.0.1:8765/")
    bound = parser.add_argument_group("bounds (default: 2,000 frames or 30 s, whichever first)")
    bound.add_argument("--seconds", type=float, help="stop generating after this long")
    bound.add_argument("--frames", type=int, help="stop generating after this many frames")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--batch", type=int, default=50, help="most frames in one batch")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait per reply")
    parser.add_argument(
        "--shrink-seconds", type=float, default=60.0, help="time to shrink a failure (default 60)"
    )
    parser.add_argument(
        "--out", default="fuzz-failure.jsonl", help="replay file for a failure (JSON lines)"
    )
    parser.add_argument("--replay", metavar="FILE", help="replay a saved failure instead")
    # Tokens reach the preflight's and the audits' joins, and each batch's well-formed
    # join; joins the fuzzer makes up carry none, and a store that checks tokens may
    # refuse them (R2.4). A replay file holds a placeholder where the token went.
    access.add_options(parser)


def run(args: argparse.Namespace) -> int:
    from harness.fuzz import (
        DEFAULT_FRAMES,
        DEFAULT_SECONDS,
        Progress,
        dump_frames,
        read_frames,
        replay,
    )
    from harness.fuzz import fuzz as fuzz_server

    _validate(args)
    given = access.from_args(args)
    if args.replay:
        frames = read_frames(args.replay)
        finding = asyncio.run(replay(args.url, frames, timeout=args.timeout, access=given))
        if finding is None:
            print(f"fuzz: replay of {len(frames)} frames from {args.replay}: passes now")
            return EXIT_OK
        print(f"fuzz: replay of {len(frames)} frames from {args.replay}: still fails")
        print(f"  {finding.describe()}")
        return EXIT_FAILED
    frames_bound, seconds = args.frames, args.seconds
    if frames_bound is None and seconds is None:
        frames_bound, seconds = DEFAULT_FRAMES, DEFAULT_SECONDS

    def progress(p: Progress) -> None:
        smallest = f", smallest {p.smallest} frames" if p.smallest else ""
        line = f"{p.phase}: {p.frames_sent} frames in {p.batches} batches, {p.findings} failing"
        print(f"fuzz: {line}{smallest}", file=sys.stderr, flush=True)

    result = asyncio.run(
        fuzz_server(
            args.url,
            frames=frames_bound,
            seconds=seconds,
            seed=args.seed,
            batch=args.batch,
            timeout=args.timeout,
            shrink_seconds=args.shrink_seconds,
            progress=progress,
            access=given,
        )
    )
    summary = (
        f"{result.frames_sent} frames in {result.batches} batches "
        f"({result.joins_accepted} joins accepted), {result.seconds:.1f}s"
    )
    if result.finding is None:
        print(f"fuzz: nothing found: {summary} (seed {result.seed})")
        return EXIT_OK
    Path(args.out).write_text(dump_frames(result.frames), encoding="utf-8")
    replayed = {True: "reproduces", False: "did NOT reproduce", None: "could not be replayed"}
    print(f"fuzz: FAILED after {summary} (seed {result.seed})")
    print(f"  {result.finding.describe()}")
    print(
        f"  shrunk from {result.original_size} to {len(result.frames)} frames "
        f"in {result.shrink_attempts} attempts; on a fresh session it "
        f"{replayed[result.reproduced]}; replay file {args.out}:"
    )
    sys.stdout.write(dump_frames(result.frames))
    print(f"  replay with: store-harness fuzz --url {args.url} --replay {args.out}")
    return EXIT_FAILED


def _validate(args: argparse.Namespace) -> None:
    problems = []
    if args.frames is not None and args.frames < 1:
        problems.append("--frames must be at least 1")
    if args.seconds is not None and args.seconds <= 0:
        problems.append("--seconds must be positive")
    if args.batch < 1:
        problems.append("--batch must be at least 1")
    if args.timeout <= 0:
        problems.append("--timeout must be positive")
    if args.shrink_seconds < 0:
        problems.append("--shrink-seconds must not be negative")
    if not args.url.startswith(("ws://", "wss://")):
        # The fuzzer's frames are the store protocol's: a store adapter has none to fuzz.
        problems.append(
            f"--url {args.url!r} is not a ws:// or wss:// URL; the fuzzer sends the store "
            "protocol's frames, so stores reached through an adapter cannot be fuzzed"
        )
    if problems:
        raise HarnessUsageError("; ".join(problems))
