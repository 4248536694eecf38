"""A swarm process's recorders: the history and the latency histograms it streams into
the run directory, so a killed run keeps what it measured.

A worker whose run directory is not the master's (another machine) also streams both
files to the master as they grow, a chunk a second over locust's messages
(``harness_files``), so the master's checker judges every worker's events while the
run goes on, and a worker lost mid-run leaves the master all but its last second.
The design was chosen by measurement (README, "Distributed swarms: who judges"): in a
meeting every key is shared by participants on every worker, so no worker can judge a
key alone and the master, which sees every process's events, judges them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import orjson

from harness.checker import follow
from harness.client.core import ClientListener
from harness.history.recorder import HistoryRecorder
from harness.latency.log import LatencyLog
from harness.latency.recorder import LatencyRecorder
from harness.run.chunks import FILES_MESSAGE, chunks_from
from harness.swarm.reporting import LocustReporter

#: History lines waiting for the disk beyond which the run falls back to a window.
MAX_HISTORY_BACKLOG = 500_000

Send = Callable[[str, dict[str, Any]], None]


class Recorders:
    """The listeners every participant's client gets: locust's, latency's and history's."""

    def __init__(
        self,
        run_dir: Path,
        process_name: str,
        reporter: LocustReporter,
        *,
        run_id: str | None = None,
        send: Send | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        #: A worker's way to the master (locust's send_message); None in the master.
        self.send = send
        self._remote: bool | None = None
        self._shipped: dict[Path, int] = {}
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
            if self._streams():
                self._ship(final=False)
            backlog = self.history.backlog
            if backlog > MAX_HISTORY_BACKLOG:
                # The disk cannot keep up: close the history window rather than lose lines.
                reason = f"history writes fell {backlog:,} lines behind"
                follow.request_window(self.run_dir, reason)

    def close(self) -> None:
        """Close every recorder; a worker on another machine then sends what is left."""
        self._ticker.kill(block=False)
        self.latency.close()
        self.latency_log.close(self.latency)
        self.history.close()
        if self._streams():
            self._ship(final=True)  # the rest, before the results that follow it

    def _paths(self) -> list[Path]:
        paths = [self.latency_log.path, self.history.path]
        return [path for path in paths if path is not None]

    def _streams(self) -> bool:
        """Whether this process sends its files to the master as they grow: a worker
        whose run directory the master does not share (decided once)."""
        if self.send is None:
            return False
        if self._remote is None:
            self._remote = not self._shares_master_run_dir()
        return self._remote

    def _ship(self, *, final: bool) -> None:
        """Send what the files gained since last time (see harness.run.chunks)."""
        assert self.send is not None
        for path in self._paths():
            relative = str(path.relative_to(self.run_dir))
            offset = self._shipped.get(path, 0)
            for chunk in chunks_from(path, relative, offset, final=final):
                self.send(FILES_MESSAGE, chunk)
                offset = chunk["offset"] + chunk["size"]
            self._shipped[path] = offset

    def _shares_master_run_dir(self) -> bool:
        if self.run_id is None:
            return False
        try:
            info = orjson.loads((self.run_dir / "run.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return False
        return isinstance(info, dict) and info.get("run_id") == self.run_id
