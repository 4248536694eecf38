"""Reading histories: files from any number of processes, merged, checked line by line.

Each line becomes a typed event (:mod:`harness.history.events`) stamped with its
clock domain; the files themselves are never rewritten.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.errors import HistoryError
from harness.history.events import EVENT_TYPES, Event, Header


@dataclass
class History:
    """Events from one or more files; ``domain`` of each event indexes ``clocks``."""

    events: list[Event] = field(default_factory=list)
    clocks: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    headers: list[Header] = field(default_factory=list)
    #: Lines a crash cut short (no newline, not JSON); skipped, and said so in verdicts.
    truncated: list[str] = field(default_factory=list)

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]], source: str = "events") -> History:
        """The history the JSON objects ``events`` record (header first), as a file holds them."""
        history = cls()
        history._add(iter(events), source)
        return history

    def _add(self, records: Iterator[Mapping[str, Any]], source: str) -> None:
        with paused_gc():
            self._decode(records, source)

    def _decode(self, records: Iterator[Mapping[str, Any]], source: str) -> None:
        domain = -1
        decoders = {kind: cls.decode for kind, cls in EVENT_TYPES.items()}
        append = self.events.append
        for number, record in enumerate(records, 1):
            decode = decoders.get(record.get("ev"))  # type: ignore[arg-type]
            if decode is None or domain < 0:
                domain = self._header(record, domain, f"{source}: line {number}", source)
                continue
            try:
                append(decode(record, domain))
            except HistoryError as exc:
                raise HistoryError(f"{source}: line {number}: {exc}") from None

    def _header(self, record: Mapping[str, Any], domain: int, where: str, source: str) -> int:
        """Start a clock domain at a header line, or say why the line cannot be read."""
        kind = record.get("ev")
        if kind != "header":
            if domain < 0:
                raise HistoryError(f"{where}: events before the header line")
            raise HistoryError(f"{where}: unknown event kind {kind!r}")
        try:
            header = Header.decode(record)
        except HistoryError as exc:
            raise HistoryError(f"{where}: {exc}") from None
        clock = header.clock or source
        if clock not in self.clocks:
            self.clocks.append(clock)
        self.headers.append(header)
        self.processes.append(header.process or source)
        return self.clocks.index(clock)


class paused_gc:  # lower case: used like a function, ``with paused_gc():``
    """No cyclic garbage collection inside: for building millions of small objects.

    Events (and the checker's operations) are freed all at once or not at all;
    the collector would rescan them again and again as they grow, a cost
    superlinear in the history's length, for cycles there are none of. A
    class, not a generator: leaving it allocates nothing that would set off a
    collection before the caller gets its result.
    """

    def __enter__(self) -> None:
        self.collecting = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc_info: object) -> None:
        if self.collecting:
            gc.enable()


def read_history(paths: Iterable[str | os.PathLike[str]]) -> History:
    """Read and merge history files; raises HistoryError naming the file and line."""
    history = History()
    for path in paths:
        history._add(_read_lines(Path(path), history), str(path))
    return history


def _read_lines(path: Path, history: History) -> Iterator[dict[str, Any]]:
    # Line by line, so only the events stay in memory, not the file's text as well.
    try:
        file = path.open("rb")
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.endswith(b"\n"):  # the last line, cut short: the writer died
                    history.truncated.append(f"{path}: line {number}")
                    continue
                raise HistoryError(f"{path}: line {number}: not JSON ({exc})") from None
            if not isinstance(event, dict):
                raise HistoryError(f"{path}: line {number}: not a JSON object")
            yield event
