"""The follower process: it judges a run directory's history files as they grow, and
gives the whole run's verdict when the swarm asks for it, without waiting out its
interval."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from harness.checker import check, follow
from harness.checker.stream import StreamChecker
from harness.history.events import Update
from harness.history.reader import History, read_history

GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.invalid.jsonl"))


def test_asked_for_the_verdict_the_follower_gives_check_s_at_once(tmp_path: Path) -> None:
    path = GOLDEN[0]
    run_dir = tmp_path / "run"
    (run_dir / "history").mkdir(parents=True)
    shutil.copy(path, run_dir / "history" / path.name)
    # An interval longer than the wait allowed: the follower must not sleep it out.
    follow.start(run_dir, interval=120.0)
    time.sleep(1.0)  # into its first wait between steps
    # Without starting at once it would sleep out its interval and miss this bound.
    found = follow.collect(run_dir, timeout=60.0)
    assert found is not None, (follow.checker_dir(run_dir) / "follower.log").read_text()
    verdict, _ = found
    whole = check(read_history([path]))
    assert (verdict.result, verdict.counts) == (whole.result, whole.counts)


SECOND = 1_000_000_000


def _long_key_with_a_lost_update() -> list[dict]:
    """Alice observes a key for 100 s while bob sets it every second; the write of
    second 50 never reaches her."""
    events: list[dict] = [{"ev": "header", "process": "p", "clock": "c"}]
    common = {"s": "s", "key": "k", "conn": "a", "req": 1, "op": "observe", "p": "alice"}
    events.append({"ev": "invoke", "t": 0, **common})
    events.append({"ev": "done", "t": 1, "result": "observing", "obs": "o", **common})
    common = {"s": "s", "key": "k"}
    for second in range(1, 100):
        at, value = second * SECOND, f"v{second}"
        events.append({"ev": "invoke", "t": at, "conn": "b", "req": second + 1, "op": "set",
                       "value": value, "p": "bob", **common})  # fmt: skip
        events.append({"ev": "done", "t": at + 2, "conn": "b", "req": second + 1, "op": "set",
                       "result": "ok", "p": "bob", **common})  # fmt: skip
        if second != 50:
            events.append({"ev": "update", "t": at + 1, "conn": "a", "obs": "o", "value": value,
                           "by": "bob", "p": "alice", **common})  # fmt: skip
    return events


def test_the_page_is_sent_the_updates_near_its_counterexamples_only(tmp_path: Path) -> None:
    checker = StreamChecker(tmp_path / "segments")
    checker.feed_history(History.from_events(_long_key_with_a_lost_update()))
    verdict = checker.verdict()
    assert verdict.counts == {"lost_update": 1}
    page = follow.page_history(verdict, checker.segments)
    quoted = [e for anomaly in verdict.anomalies for e in anomaly.events]
    assert all(any(e is p for p in page.events) for e in quoted)
    near = [e.time for e in verdict.examples["lost_update"].events]  # the observe, the set
    sent = sorted(e.time // SECOND for e in page.events if type(e) is Update)
    expected = sorted(
        second
        for second in range(1, 100)
        if second != 50 and any(abs(second * SECOND + 1 - t) <= follow.PAGE_SLACK_NS for t in near)
    )
    assert sent == expected
    assert len(sent) < 98  # not the whole key
    requests = [e for e in page.events if type(e) is not Update]
    assert len(requests) == 2 + 2 * 99  # every request of the key, for the page's lanes
