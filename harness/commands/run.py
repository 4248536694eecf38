"""Run the test a TOML file describes: stages, thresholds that can stop it, processes.

    store-harness run test.toml               # examples/ holds three
    store-harness run --dry-run test.toml     # print the resolved plan; nothing runs
    store-harness run test.toml --scale 0.1   # a tenth of the participants and durations
    store-harness run test.toml --worker      # one of the file's [distribution] workers

The file holds what the swarm's flags hold, by the flags' names (harness.plan.loader),
plus stages, thresholds and distribution; a flag given here overrides the file. The
run itself is ``store-harness swarm``'s, paced by a locust LoadTestShape that follows
the stages (harness.swarm.staged). Exit codes as swarm's: 0 passed, 1 the server
failed (a threshold with abort_on_fail stopped the run, or any check failed), 2 the
test could not run (a bad file: the error names its line and key).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import orjson

from harness.commands import swarm
from harness.errors import HarnessUsageError
from harness.latency import thresholds
from harness.plan import dryrun, loader
from harness.plan.durations import parse_duration
from harness.plan.loader import TestFile
from harness.plan.stages import StagePlan, StageSpec, resolve, scaled
from harness.swarm import config

#: Seconds between two evaluations of the thresholds with abort_on_fail.
EVALUATE_EVERY_S = 2.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the test file (TOML)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved plan and stop")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="run at this scale: participants, stage durations and starts times it; spawn "
        "and write rates stay (e.g. 0.1 for a quick rehearsal of a long test)",
    )
    parser.add_argument(
        "--worker", action="store_true", help="be a worker of the file's [distribution] master"
    )
    swarm.configure(parser)
    # None until given: then the file's value, then the option's own default (run()).
    parser.set_defaults(**dict.fromkeys(swarm_options(), None))


def swarm_options() -> dict[str, argparse.Action]:
    """The swarm's options by dest: the test file's vocabulary."""
    parser = argparse.ArgumentParser(add_help=False)
    swarm.configure(parser)
    return {action.dest: action for action in parser._actions}


def run(args: argparse.Namespace) -> int:
    options = swarm_options()
    test = loader.load(args.file, options)
    given = {dest for dest in options if getattr(args, dest) is not None}
    for dest, action in options.items():
        if dest not in given:
            value = test.options.get(dest, action.default)
            setattr(args, dest, list(value) if isinstance(value, list) else value)
    plan = _plan(args, test, given)
    if test.thresholds:
        # The file is its own SLO file: the swarm judges its thresholds at the end, and
        # the live evaluation (harness.swarm.abort) reads the abort_on_fail ones from it.
        args.slo_file = [str(test.path.resolve()), *args.slo_file]
    judged = thresholds.gather(args.slo, args.slo_file)
    if args.dry_run:
        target = args.url or "the embedded reference server"
        title = f"store-harness run {test.path}" + (
            f" at scale {args.scale:g}" if args.scale != 1 else ""
        )
        print(
            dryrun.render(
                plan,
                title=title,
                target=target,
                thresholds=judged,
                processes=args.processes,
                distribution=test.distribution,
            )
        )
        return 0
    shape_args = [
        "--plan",
        orjson.dumps(
            {"stages": plan.to_json(), "evaluate_every": EVALUATE_EVERY_S, "file": str(test.path)}
        ).decode(),
    ]
    if args.worker:
        return _worker(args, test, shape_args)
    if test.distribution is not None:
        if not args.url:
            raise HarnessUsageError(
                f"{test.path}: [distribution] needs url: workers on other machines cannot "
                "reach the embedded reference server"
            )
        d = test.distribution
        shape_args += [
            "--master",
            "--master-bind-port", str(d.port),
            "--expect-workers", str(d.workers * args.processes),
            "--expect-workers-max-wait", f"{d.wait_s:g}",
        ]  # fmt: skip
        args.processes = 1  # the master runs no worker of its own
    args.shape_args = shape_args
    return swarm.run(args)


def _plan(args: argparse.Namespace, test: TestFile, given: set[str]) -> StagePlan:
    if not args.scale > 0:
        raise HarnessUsageError("--scale must be a positive factor, e.g. 0.1")
    if test.stages:
        clash = sorted({"users", "run_time"} & given)
        if clash:
            flags = " and ".join(config.flag(dest) for dest in clash)
            raise HarnessUsageError(
                f"{flags} do not apply to {test.path}: its stages say how many and how long "
                "(use --scale)"
            )
        specs = scaled(test.stages, args.scale)
    else:
        seconds = parse_duration(args.run_time)
        if seconds is None or seconds <= 0:
            raise HarnessUsageError(f"--run-time {args.run_time!r} is not a duration like 30s")
        users = max(1, round(args.users * args.scale))
        specs = [
            StageSpec(
                seconds * args.scale,
                name="run",
                participants=users,
                origin=lambda key: f"{test.path}: participants and spawn_rate",
            )
        ]
    plan = resolve(specs, spawn_rate=args.spawn_rate, write_rate=args.write_rate or 0.0)
    if plan.peak_participants < 1:
        raise HarnessUsageError(f"{test.path}: no stage has a participant")
    # What the swarm's checks and run.json read; the shape paces the run itself.
    args.users = plan.peak_participants
    args.run_time = f"{math.ceil(plan.duration)}s"
    return plan


def _worker(args: argparse.Namespace, test: TestFile, shape_args: list[str]) -> int:
    import harness.swarm

    d = test.distribution
    if d is None:
        raise HarnessUsageError(f"--worker needs a [distribution] block in {test.path}")
    command = [
        sys.executable, "-m", "locust",
        "-f", str(Path(harness.swarm.__file__).with_name("staged.py")),
        "--worker", "--master-host", d.host, "--master-port", str(d.port),
        "--loglevel", "WARNING",
        *shape_args,
    ]  # fmt: skip
    if args.processes > 1:
        command += ["--processes", str(args.processes)]
    print(f"store-harness: a worker of the master at {d.host}:{d.port}", flush=True)
    return swarm._run_locust(command + config.locust_args(args), config.locust_env(args))
