"""The live console line a swarm prints while it runs.

[  12s] users 200/200 | writes/s 1,204 | notifications/s 24,080 | notify p99 3.2 ms | errors 0.00%
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import gevent

from harness.protocol.kinds import SET
from harness.swarm.reporting import NOTIFY

WRITE_TYPES = (SET.locust,)


class LiveView:
    """Prints one line every ``interval`` seconds from locust's (merged) stats."""

    def __init__(self, environment: Any, interval: float, out: TextIO = sys.stdout) -> None:
        self.environment = environment
        self.interval = interval
        self.out = out
        self.started = time.monotonic()
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
            f"errors {error_rate:.2%}"
        )
