"""Reading histories: files from any number of processes, merged, checked line by line."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.history.events import REQUIRED_FIELDS, HistoryError


@dataclass
class History:
    """Events from one or more files; ``domain`` of each event indexes ``clocks``."""

    events: list[dict[str, Any]] = field(default_factory=list)
    clocks: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    #: Lines a crash cut short (no newline, not JSON); skipped, and said so in verdicts.
    truncated: list[str] = field(default_factory=list)

    @classmethod
    def from_events(cls, events: Iterable[dict[str, Any]], source: str = "events") -> History:
        history = cls()
        history._add(iter(events), source)
        return history

    def _add(self, events: Iterator[dict[str, Any]], source: str) -> None:
        domain = -1
        for number, event in enumerate(events, 1):
            kind = event.get("ev")
            if kind == "header":
                clock = str(event.get("clock", source))
                if clock not in self.clocks:
                    self.clocks.append(clock)
                domain = self.clocks.index(clock)
                self.processes.append(str(event.get("process", source)))
                continue
            if domain < 0:
                raise HistoryError(f"{source}: line {number}: events before the header line")
            if kind not in REQUIRED_FIELDS:
                raise HistoryError(f"{source}: line {number}: unknown event kind {kind!r}")
            for name, kinds in REQUIRED_FIELDS[kind]:
                if not isinstance(event.get(name), kinds):
                    raise HistoryError(
                        f"{source}: line {number}: {kind} event without a valid {name!r}"
                    )
            event["d"] = domain
            self.events.append(event)


def read_history(paths: Iterable[str | os.PathLike[str]]) -> History:
    """Read and merge history files; raises HistoryError naming the file and line."""
    history = History()
    for path in paths:
        history._add(_read_lines(Path(path), history), str(path))
    return history


def _read_lines(path: Path, history: History) -> Iterator[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    last = len(lines) - 1
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if number - 1 == last:  # no newline after it: the writer died mid-line
                history.truncated.append(f"{path}: line {number}")
                continue
            raise HistoryError(f"{path}: line {number}: not JSON ({exc})") from None
        if not isinstance(event, dict):
            raise HistoryError(f"{path}: line {number}: not a JSON object")
        yield event
