"""The follower process: it judges a run directory's history files as they grow, and
gives the whole run's verdict when the swarm asks for it, without waiting out its
interval."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from harness.checker import check, follow
from harness.history.reader import read_history

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
