"""A swarm process's recorders: the history and the latency histograms it streams into
the run directory, so a killed run keeps what it measured, packed for the master at the end.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import gevent
import orjson

from harness.checker import follow
from harness.client.core import ClientListener
from harness.history.recorder import HistoryRecorder
from harness.latency.log import LatencyLog
from harness.latency.recorder import LatencyRecorder
from harness.swarm.reporting import LocustReporter

#: History lines waiting for the disk beyond which the run falls back to a window.
MAX_HISTORY_BACKLOG = 500_000


class Recorders:
    """The listeners every participant's client gets: locust's, latency's and history's."""

    def __init__(
        self,
        run_dir: Path,
        process_name: str,
        reporter: LocustReporter,
        *,
        run_id: str | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.latency_log = LatencyLog(run_dir / "latency" / f"{process_name}.jsonl", process_name)
        self.latency = LatencyRecorder(self.latency_log, on_notify=reporter.notified)
        history_dir = run_dir / "history"
        history_dir.mkdir(parents=True, exist_ok=True)
        self.history = HistoryRecorder(history_dir / f"{process_name}.jsonl", process=process_name)
        self.listeners: list[ClientListener] = [reporter, self.latency, self.history]
        self._ticker = gevent.spawn(self._tick)

    def _tick(self) -> None:
        # Quiet seconds and fan-outs get written even when no event rolls the interval.
        while True:
            gevent.sleep(1.0)
            self.latency.roll()
            backlog = self.history.backlog
            if backlog > MAX_HISTORY_BACKLOG:
                # The disk cannot keep up: close the history window rather than lose lines.
                reason = f"history writes fell {backlog:,} lines behind"
                follow.request_window(self.run_dir, reason)

    def close(self) -> dict[str, bytes]:
        """Close every recorder; for the master, their files compressed, by path in the
        run directory, unless the master's run directory is this one (then nothing).

        A whole run's history can be gigabytes: it is packed only for a worker on
        another machine, never read back into memory where the master can read it.
        """
        self._ticker.kill(block=False)
        self.latency.close()
        self.latency_log.close(self.latency)
        self.history.close()
        files: dict[str, bytes] = {}
        if self._shares_master_run_dir():
            return files
        for path in (self.latency_log.path, self.history.path):
            assert path is not None
            files[str(path.relative_to(self.run_dir))] = zlib.compress(path.read_bytes(), 3)
        return files

    def _shares_master_run_dir(self) -> bool:
        if self.run_id is None:
            return False
        try:
            info = orjson.loads((self.run_dir / "run.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return False
        return isinstance(info, dict) and info.get("run_id") == self.run_id
