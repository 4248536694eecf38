"""The checker that follows a swarm: judges its history while it is recorded.

    python -m harness.checker.follow RUN_DIR [--convergence-only]

A process of its own (the swarm's processes keep their CPU for the load): every
``interval`` seconds it reads what the swarm's processes appended to
``RUN_DIR/history/*.jsonl`` into per-key segments (:class:`~harness.checker.stream.
StreamChecker`), judges the keys that grew on the history so far, and writes
``RUN_DIR/checker/live.json``: events read, anomalies found so far with the
first one's kind and key, how far behind the files it is. The swarm's live
line and locust's ANOMALY row read that file (:func:`read_status`).

When ``RUN_DIR/checker/finish`` appears (the swarm's end), it reads the files to
their end, judges every key on the whole run and leaves the verdict, with the
events its counterexamples quote, in ``RUN_DIR/checker/verdict.pickle`` (one
pickle, so the page finds counterexample events by identity). Its own trace of
failure, if any, is ``RUN_DIR/checker/error.txt``: the swarm then checks itself.

If it falls behind by more than ``--behind-bytes`` of unread history, live.json
says ``behind``: the swarm then closes its history window (it never stops
judging silently; run.json says so).
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from harness.checker.stream import StreamChecker
from harness.checker.verdict import Verdict
from harness.history.reader import History
from harness.history.segments import Segments

#: Unread history beyond this, and the follower is behind.
BEHIND_BYTES = 512 << 20
STATUS, FINISH, RESULT, ERROR = "live.json", "finish", "verdict.pickle", "error.txt"
#: How often the follower looks for the swarm's request to finish between steps.
FINISH_POLL_S = 0.1
#: A request that every process close its history window (the checker fell behind).
WINDOW = "window.json"


def checker_dir(run_dir: Path) -> Path:
    return run_dir / "checker"


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The follower's latest status (None before its first, or when unreadable)."""
    try:
        return orjson.loads((checker_dir(run_dir) / STATUS).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def anomalies_so_far(run_dir: Path) -> int:
    """Anomalies the follower has found so far in ``run_dir``'s history (0 before any);
    read-only, cheap enough for every scrape of a metrics exporter."""
    status = read_status(run_dir)
    return int(status.get("anomalies", 0)) if status else 0


class Follower:
    def __init__(self, run_dir: Path, *, per_key_order: bool, behind_bytes: int) -> None:
        self.run_dir = run_dir
        self.out = checker_dir(run_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.checker = StreamChecker(self.out / "segments", per_key_order=per_key_order)
        self.behind_bytes = behind_bytes
        self.behind_since: float | None = None
        self.started = time.monotonic()

    def files(self) -> list[Path]:
        return sorted((self.run_dir / "history").glob("*.jsonl"))

    def step(self) -> dict[str, Any]:
        unread = 0
        for path in self.files():
            read = self.checker.feed_file(path)
            unread += max(0, _size(path) - self.checker.segments._tails[path].offset)
            del read
        if not (self.out / FINISH).exists():  # else the verdict judges it all, now
            self.checker.judge_so_far()
        return self.status(unread)

    def status(self, unread: int, **extra: Any) -> dict[str, Any]:
        checker = self.checker
        first = checker.first
        status = {
            "events": checker.segments.events,
            "keys": len(checker.segments.keys),
            "anomalies": checker.anomalies_so_far,
            "kinds": dict(checker.live.counts),
            "first": None
            if first is None
            else {"kind": first.kind, "key": first.key, "session": first.session},
            "unread_bytes": unread,
            "behind": unread > self.behind_bytes,
            "disk_bytes": checker.segments.disk_bytes(),
            "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "largest_key_events": checker.largest_key,
            # Sessions all of whose participants left, judged already (see stream.py);
            # at the end, those the verdict reused rather than judged again.
            "sessions_judged_early": len(checker.finals),
            "sessions_reused": checker.reused_sessions,
            **extra,
        }
        _write(self.out / STATUS, orjson.dumps(status))
        return status

    def finish(self) -> None:
        phases: dict[str, float] = {}
        verdict, page = judge_files(self.checker, self.files(), phases)
        began = time.monotonic()
        _write(self.out / RESULT, pickle.dumps((verdict, page), pickle.HIGHEST_PROTOCOL))
        phases["send"] = round(time.monotonic() - began, 2)
        # Where the wait after the run went, for run.json's checker figures.
        self.status(0, done=True, finish_seconds=phases)
        self.checker.segments.remove()


#: verdict.html is sent the updates of a drawn key within this long of a counterexample's
#: events: twenty times the least it draws either side of one (reports.timeline.pages).
PAGE_SLACK_NS = 5_000_000_000


def judge_files(
    checker: StreamChecker, paths: list[Path], phases: dict[str, float] | None = None
) -> tuple[Verdict, History]:
    """Read ``paths`` to their end and judge the whole run; the verdict and its page's
    history. ``phases`` gets the seconds each step took: read, judge, page."""
    timed = phases if phases is not None else {}
    began = time.monotonic()
    for path in paths:
        checker.finish_file(path)
    timed["read"] = round(time.monotonic() - began, 2)
    began = time.monotonic()
    verdict = checker.verdict()
    timed["judge"] = round(time.monotonic() - began, 2)
    began = time.monotonic()
    page = page_history(verdict, checker.segments)
    timed["page"] = round(time.monotonic() - began, 2)
    return verdict, page


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def page_history(verdict: Verdict, segments: Segments) -> History:
    """The history verdict.html draws: the key of each kind's smallest counterexample
    (the one the page draws), and every counterexample's events. Counterexample events
    are the verdict's own objects: the page finds them by identity.

    Only the drawn keys, and of their updates (nearly all of a key) only those within
    :data:`PAGE_SLACK_NS` of an event of a drawn counterexample: a run whose anomalies
    span every key, or a key of millions of updates, would otherwise load, send and
    index its whole history again for a page whose every timeline draws a few hundred
    events (a lost update's counterexample spans the observer's whole life, and the page
    draws the events nearest the middle of the span when it cannot draw them all).
    """
    spanning = segments.history
    quoted: dict[Any, Any] = {}
    for anomaly in verdict.anomalies:
        for event in anomaly.events:
            quoted.setdefault(event, event)
    windows: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for anomaly in verdict.examples.values():
        place = (anomaly.session or "", anomaly.key or "")
        if anomaly.key is None or place not in segments.keys or not anomaly.events:
            continue
        windows.setdefault(place, []).extend(
            (event.time - PAGE_SLACK_NS, event.time + PAGE_SLACK_NS) for event in anomaly.events
        )
    seen: dict[int, Any] = {id(event): event for event in quoted.values()}
    for place, around in windows.items():
        for event in segments.load(place).events(around):
            event = quoted.get(event, event)
            seen.setdefault(id(event), event)
    events = sorted(seen.values(), key=lambda e: (e.domain, e.time))
    return History(
        events=events,
        clocks=spanning.clocks,
        processes=spanning.processes,
        headers=spanning.headers,
        truncated=spanning.truncated,
    )


# --- the swarm's side -----------------------------------------------------------------

#: The follower of the run in this process, if one was started.
_running: dict[Path, subprocess.Popen[bytes]] = {}


def start(run_dir: Path, *, per_key_order: bool = True, interval: float = 2.0) -> None:
    """Start following ``run_dir`` in a process of its own (one per run directory)."""
    out = checker_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (FINISH, RESULT, ERROR, STATUS, WINDOW):
        (out / name).unlink(missing_ok=True)
    command = [sys.executable, "-m", "harness.checker.follow", str(run_dir)]
    command += ["--interval", str(interval)]
    if not per_key_order:
        command.append("--convergence-only")
    log = open(out / "follower.log", "ab")  # noqa: SIM115 (the child holds it)
    _running[run_dir] = subprocess.Popen(command, stdout=log, stderr=log)
    log.close()


def collect(run_dir: Path, timeout: float) -> tuple[Verdict, History] | None:
    """Ask the follower for the whole run's verdict and wait for it; None when there is
    no follower or it failed (its error is in checker/error.txt), so the caller checks."""
    process = _running.pop(run_dir, None)
    if process is None:
        return None
    out = checker_dir(run_dir)
    (out / FINISH).touch()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        (out / ERROR).write_text(f"no verdict within {timeout:g} s\n")
        return None
    try:
        found: tuple[Verdict, History] = pickle.loads((out / RESULT).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
    return found


def request_window(run_dir: Path, reason: str, delay: float = 3.0) -> float:
    """Ask every process to close its history at one instant ``delay`` s from now, as
    --history-seconds would (harness.swarm.checkpoint); the instant, or the earlier one
    asked already."""
    path = checker_dir(run_dir) / WINDOW
    try:
        return float(orjson.loads(path.read_bytes())["until_wall"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    until = time.time() + delay
    checker_dir(run_dir).mkdir(parents=True, exist_ok=True)
    _write(path, orjson.dumps({"until_wall": until, "reason": reason}))
    return until


def window_requested(run_dir: Path) -> dict[str, Any] | None:
    try:
        found = orjson.loads((checker_dir(run_dir) / WINDOW).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return found if isinstance(found, dict) else None


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.checker.follow")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--convergence-only", action="store_true")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--behind-bytes", type=int, default=BEHIND_BYTES)
    parser.add_argument("--max-seconds", type=float, default=24 * 3600.0)
    options = parser.parse_args(argv)
    follower = Follower(
        options.run_dir,
        per_key_order=not options.convergence_only,
        behind_bytes=options.behind_bytes,
    )
    finish = follower.out / FINISH
    deadline = time.monotonic() + options.max_seconds  # bounded, whatever happens
    try:
        while not finish.exists() and time.monotonic() < deadline:
            began = time.monotonic()
            follower.step()
            # Asked to finish while waiting for the next step: start at once.
            while time.monotonic() - began < options.interval and not finish.exists():
                time.sleep(FINISH_POLL_S)
        follower.finish()
    except Exception as exc:  # the swarm checks by itself then; say why here
        (follower.out / ERROR).write_text(f"{type(exc).__name__}: {exc}\n")
        follower.checker.segments.remove()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
