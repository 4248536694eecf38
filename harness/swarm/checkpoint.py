"""The history checkpoint (--history-seconds): a quiet instant after which the load goes on
unrecorded, for users who want a window judged rather than the whole run. It is also the
fallback when the checker or the disk cannot keep up (:class:`FallbackWindow`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import gevent

#: Seconds every process pauses at the history checkpoint.
CHECKPOINT_S = 4.0


class Checkpoint:
    """Closes the history at ``until_wall``, the same wall-clock instant in every process.

    Every process pauses its participants then (``paused``), lets requests and
    updates in flight land, audits every key and stops recording (``close_history``),
    and only resumes once every process has had time to do the same.
    """

    def __init__(
        self,
        until_wall: float,
        *,
        in_flight: Callable[[], int],
        close_history: Callable[[], None],
        stopping: Callable[[], bool],
        problem: Callable[[str], None],
    ) -> None:
        self.until_wall = until_wall
        self.in_flight = in_flight
        self.close_history = close_history
        self.stopping = stopping
        self.problem = problem
        #: Set during the pause: participants wait, then go on unrecorded.
        self.paused = False
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        until_wall = self.until_wall
        gevent.sleep(max(0.0, until_wall - time.time()))
        if self.stopping():
            return
        self.paused = True
        deadline = time.monotonic() + 3
        while self.in_flight() > 0 and time.monotonic() < deadline:
            gevent.sleep(0.02)
        gevent.sleep(0.5)  # the last updates of the last writes arrive
        self.close_history()
        if time.time() > until_wall + CHECKPOINT_S:
            self.problem("the history checkpoint took longer than the pause")
        gevent.sleep(max(0.0, until_wall + CHECKPOINT_S - time.time()))
        self.paused = False

    def stop(self) -> None:
        self._greenlet.kill(block=False)


class FallbackWindow:
    """Polls for a request to close the history (``checker/window.json`` in the run
    directory, written by the live line when the checker falls behind, or by a
    recorder whose disk writes fall behind) and then starts a :class:`Checkpoint` at
    the one instant it names, so every process closes its history together."""

    def __init__(self, run_dir: Path, start: Callable[[float], object], poll_s: float = 1.0):
        self.run_dir = run_dir
        self.start = start
        self.poll_s = poll_s
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        from harness.checker import follow  # not at import: the swarm's imports stay light

        while True:
            gevent.sleep(self.poll_s)
            found = follow.window_requested(self.run_dir)
            if found is not None:
                self.start(float(found["until_wall"]))
                return

    def stop(self) -> None:
        self._greenlet.kill(block=False)
