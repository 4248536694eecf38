"""The live console line a swarm prints while it runs.

[  12s] users 200/200 | writes/s 1,204 | notifications/s 24,080 | notify p99 3.2 ms | errors 0.00%
  | judged 1,204,113 | anomalies 0

The last two come from the checker that follows the run (harness.checker.follow):
anomalies found so far, with the first one's kind and key, each also a locust
ANOMALY row (so the web UI shows it); when the checker falls behind, the line says so
and every process closes its history window (it never stops judging silently).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

import gevent

from harness.checker import KINDS, follow
from harness.errors import AnomalyFound
from harness.protocol.kinds import SET
from harness.swarm.reporting import NOTIFY

WRITE_TYPES = (SET.locust,)
#: The locust request type of anomalies the checker found while the run goes on.
ANOMALY = "ANOMALY"


class LiveView:
    """Prints one line every ``interval`` seconds from locust's (merged) stats."""

    def __init__(self, environment: Any, interval: float, out: TextIO = sys.stdout) -> None:
        self.environment = environment
        self.interval = interval
        self.out = out
        self.started = time.monotonic()
        self.run_dir = Path(environment.parsed_options.run_dir)
        #: Anomalies already shown as locust ANOMALY rows, by kind.
        self._fired: dict[str, int] = {}
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        self._greenlet.kill(block=False)

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval)
            self.out.write(self.line() + "\n")
            self.out.flush()

    def line(self) -> str:
        runner = self.environment.runner
        stats = runner.stats
        writes = notifications = 0.0
        notify_p99 = 0.0
        for (_name, method), entry in stats.entries.items():
            if method in WRITE_TYPES:
                writes += entry.current_rps
            elif method == NOTIFY:
                notifications += entry.current_rps
                p99 = entry.get_current_response_time_percentile(0.99) or 0
                notify_p99 = max(notify_p99, p99)
        total = stats.total
        error_rate = total.num_failures / total.num_requests if total.num_requests else 0.0
        target = getattr(runner, "target_user_count", None) or runner.user_count
        elapsed = time.monotonic() - self.started
        return (
            f"[{elapsed:5.0f}s] users {runner.user_count}/{target} | writes/s {writes:,.0f} | "
            f"notifications/s {notifications:,.0f} | notify p99 {notify_p99:,.1f} ms | "
            f"errors {error_rate:.2%}{self.judged()}"
        )

    def judged(self) -> str:
        """`` | judged N | anomalies ...`` from the follower's status, firing new ANOMALY rows."""
        status = follow.read_status(self.run_dir)
        if status is None:
            return ""
        self._fire(status.get("kinds", {}))
        text = f" | judged {status['events']:,} | anomalies {status['anomalies']:,}"
        first = status.get("first")
        if first:
            text += f" (first: {first['kind']} on key {first['key']!r})"
        window = follow.window_requested(self.run_dir)
        if window is None and status.get("behind"):
            reason = f"the checker fell {status['unread_bytes'] >> 20} MiB behind the history"
            follow.request_window(self.run_dir, reason)
            window = follow.window_requested(self.run_dir)
        if window is not None:
            text += f" | judging a window only: {window['reason']}"
        return text

    def _fire(self, kinds: dict[str, int]) -> None:
        fire = self.environment.events.request.fire
        for kind, count in kinds.items():
            for _ in range(count - self._fired.get(kind, 0)):
                fire(
                    request_type=ANOMALY,
                    name=kind,
                    response_time=0,
                    response_length=0,
                    exception=AnomalyFound(f"{kind} ({KINDS[kind][1]}): {KINDS[kind][2]}"),
                    context={},
                )
            self._fired[kind] = max(count, self._fired.get(kind, 0))
