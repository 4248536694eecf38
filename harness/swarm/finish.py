"""The start and end of a swarm's run directory: run.json, merged files, verdict, report.

Runs in the master (or the only process). Nothing here needs gevent, so the
same steps can be re-run by hand on a run directory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.adapters import NATIVE_CAPABILITIES, Capabilities, resolve
from harness.adapters.registry import NATIVE
from harness.checker import Result, Verdict, follow
from harness.checker.stream import StreamChecker
from harness.errors import HarnessError
from harness.exits import EXIT_FAILED, EXIT_OK, exit_code
from harness.history.reader import History
from harness.latency.thresholds import gather
from harness.reports import build_report
from harness.reports.timeline import beside_verdict, write_verdict_page
from harness.run.directory import read_run_json, write_run_json, write_verdict
from harness.run.pacing import CLOSED, OPEN, PER_PARTICIPANT, LoadModel
from harness.swarm.config import SwarmConfig

#: How long the end of a run waits for the follower's verdict before judging by itself.
VERDICT_WAIT_S = 600.0
#: Seconds between the follower's judgements of the history so far.
LIVE_JUDGE_S = 2.0


def start_run(environment: Any) -> Path:
    """Create the run directory and a run.json marked incomplete."""
    options = environment.parsed_options
    config = SwarmConfig.from_locust(options)
    run_dir = Path(options.run_dir)
    for folder in ("history", "latency", "locust"):
        (run_dir / folder).mkdir(parents=True, exist_ok=True)
    rate = config.write_rate
    load = LoadModel(OPEN, rate, PER_PARTICIPANT) if rate else LoadModel(CLOSED)
    think = "" if rate else f", think time {config.think_time or 'per scenario'}"
    info = {
        "tool": "store-harness",
        "version": __version__,
        "kind": "swarm",
        "url": environment.host,
        "scenario": config.scenario,
        # locust's own options, not the swarm's
        "participants": getattr(options, "num_users", None),
        "spawn_rate": getattr(options, "spawn_rate", None),
        "sessions": config.sessions,
        "session": config.session,
        "load": load.to_json(),
        "load_description": load.describe().replace(", no think time", "") + think,
        "run_id": config.run_id,
        "started": time.time(),
        "ended": None,
        "complete": False,
    }
    adapter, capabilities = _store(environment)
    info["adapter"] = {"name": adapter, "capabilities": capabilities.to_json()}
    write_run_json(run_dir, info)
    # Judges the history as it is recorded: anomalies live, the verdict soon after the end.
    follow.start(run_dir, per_key_order=capabilities.per_key_order, interval=LIVE_JUDGE_S)
    return run_dir


def _store(environment: Any) -> tuple[str, Capabilities]:
    """The adapter the participants use (by name or ``module:Class``) and what it promises."""
    config = SwarmConfig.from_locust(environment.parsed_options)
    adapter_class = resolve(environment.host, config.adapter)
    if adapter_class is None:
        return NATIVE, NATIVE_CAPABILITIES
    name = config.adapter or f"{adapter_class.__module__}:{adapter_class.__qualname__}"
    return name, adapter_class.capabilities


def finish_run(
    environment: Any, payloads: list[dict[str, Any]], problems: Sequence[str] = ()
) -> int:
    """Merge what every process sent, check the history, write the verdict; the exit code."""
    run_dir = Path(environment.parsed_options.run_dir)
    info = read_run_json(run_dir)
    totals: dict[str, int] = {}
    for payload in payloads:
        for kind, count in payload.get("requests", {}).items():
            totals[kind] = totals.get(kind, 0) + count
    clocks = {payload.get("clock") for payload in payloads} - {None, "none"}
    info.update(
        ended=time.time(),
        complete=True,
        processes=[
            {key: payload.get(key) for key in ("name", "host", "pid", "requests", "connects")}
            for payload in payloads
        ],
        requests=totals,
        notification_clock=clocks.pop() if len(clocks) == 1 else ("mixed" if clocks else "none"),
        violations=[v for payload in payloads for v in payload.get("violations", [])],
        violation_count=sum(payload.get("violation_count", 0) for payload in payloads),
        problems=[*problems, *(p for payload in payloads for p in payload.get("problems", []))],
    )
    fallback = follow.window_requested(run_dir)
    if fallback is not None:
        # The checker or the disk could not keep up: the history was closed early.
        info["history_fallback"] = fallback
        window = round(fallback["until_wall"] - info["started"], 1)
        info["history_window_s"] = window
        print(
            f"store-harness: {fallback['reason']}: the consistency check covers only the "
            f"first {window:g} s of the run"
        )
    elif any(payload.get("history_stopped") for payload in payloads):
        window = SwarmConfig.from_locust(environment.parsed_options).history_seconds
        info["history_window_s"] = window
        print(f"store-harness: the consistency check covers the first {window:g} s of the run")
    code = _violations(info)
    if info.get("aborted"):  # a threshold with abort_on_fail stopped it (harness.swarm.staging)
        print(f"store-harness: stopped early: {info['aborted']['threshold']} breached")
        code = EXIT_FAILED
    try:
        verdict, history = _judge(run_dir, _store(environment)[1], info)
    except HarnessError as exc:
        print(f"store-harness: could not check the history: {exc}")
        info["verdict"] = Result.UNKNOWN
    else:
        write_verdict(run_dir, verdict.to_json(), verdict.to_text())
        page = write_verdict_page(run_dir, history, verdict)
        info["verdict"] = verdict.result
        print(beside_verdict(verdict.to_text(), page))
        if verdict.result is Result.INVALID:
            code = EXIT_FAILED
    write_run_json(run_dir, info)
    code = max(code, _report(environment, run_dir))
    print(f"store-harness: run directory {run_dir}")
    return code


def _judge(
    run_dir: Path, capabilities: Capabilities, info: dict[str, Any]
) -> tuple[Verdict, History]:
    """The whole run's verdict: the follower's, or (without one) judged here, key by key
    from segments on disk; what it took goes to run.json's ``checker``."""
    began = time.monotonic()
    found = follow.collect(run_dir, timeout=VERDICT_WAIT_S)
    mode = "follower"
    if found is None:
        mode = "after the run"
        # One process: this one is locust's, gevent-patched, no place to fork a pool from.
        checker = StreamChecker(
            follow.checker_dir(run_dir) / "segments",
            per_key_order=capabilities.per_key_order,
            workers=1,
        )
        try:
            found = follow.judge_files(checker, sorted((run_dir / "history").glob("*.jsonl")))
        finally:
            checker.segments.remove()
    verdict, history = found
    verdict.notes[:0] = capabilities.skipped_checks(wire=False)
    status = follow.read_status(run_dir) or {}
    info["checker"] = {
        "mode": mode,
        "events_judged": verdict.stats.get("events", 0),
        "verdict_seconds_after_end": round(time.monotonic() - began, 2),
        **{name: status[name] for name in _CHECKER_FIGURES if name in status},
    }
    return verdict, history


#: What run.json's ``checker`` quotes of the follower's last status.
_CHECKER_FIGURES = (
    "disk_bytes", "max_rss_kib", "largest_key_events", "anomalies", "behind",
    "sessions_judged_early", "sessions_reused", "finish_seconds",
)  # fmt: skip


def _violations(info: dict[str, Any]) -> int:
    """Say every protocol violation participants saw; any one fails the run.

    They fail it whatever the verdict: a violation outside the history window, or
    in a history that could not be checked, is still a violation.
    """
    for problem in info["problems"]:
        print(f"store-harness: {problem}")
    count = info["violation_count"]
    if not count:
        return EXIT_OK
    kept = info["violations"]
    print(
        f"store-harness: participants saw {count} protocol violation(s); each failed its "
        "connection, and the run fails"
    )
    for violation in kept[:5]:
        print(f"  {violation['requirement']} {violation['kind']}: {violation['message']}")
    if count > 5:
        print(f"  ... {count - 5} more; run.json quotes {len(kept)} of them")
    return EXIT_FAILED


def _report(environment: Any, run_dir: Path) -> int:
    """Write the latency report into the run directory and judge the thresholds."""
    config = SwarmConfig.from_locust(environment.parsed_options)
    try:
        thresholds = gather(config.slo, config.slo_file)
        result = build_report(run_dir, out_dir=run_dir / "report", thresholds=thresholds)
    except HarnessError as exc:
        print(f"store-harness: could not write the latency report: {exc}")
        return EXIT_FAILED
    for line in result.figures["threshold_lines"]:
        print(f"  {line}")
    print(f"store-harness: latency report {result.out_dir / 'report.html'}")
    return exit_code(result.failed)
