"""The latency files of a run directory: ``RUN_DIR/latency/*.jsonl``, one per process.

Each line is one JSON object, written and flushed as the run goes so a run
killed with ``kill -9`` keeps every second it finished::

    {"kind": "header", "format": "store-harness-latency", "version": 1, "unit": "us",
     "lowest": 1, "highest": 60000000, "digits": 3, "interval_s": 1, "process": "..."}
    {"kind": "interval", "t": 1795500529, "metric": "notify", "hist": "HISTFAAAA..."}
    {"kind": "errors", "t": 1795500529, "codes": {"INVALID_KEY": 2}}
    {"kind": "end", "clocks": {"monotonic": 12000}, "unstamped": 0, "skewed": 0}

``t`` is the interval's wall-clock second (Unix time), so the files of many
processes line up; ``hist`` is HdrHistogram's compressed encoding, which
loses nothing, so merging the files equals recording everything in one
histogram. Readers skip a torn last line and say how many they skipped.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import orjson
from hdrh.histogram import HdrHistogram

from harness.latency.histograms import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    clock_name,
    decode_histogram,
    encode_histogram,
    merge,
    new_histogram,
)

if TYPE_CHECKING:  # the recorder writes to this log; the log only reads its counts
    from harness.latency.recorder import LatencyRecorder

FORMAT = "store-harness-latency"
VERSION = 1


class LatencyLog:
    """Streams one process's interval histograms to a JSONL file."""

    def __init__(self, path: str | os.PathLike[str], process: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = process or f"{socket.gethostname()}-{os.getpid()}"
        self._file: IO[bytes] | None = self.path.open("ab")
        self._write(
            {
                "kind": "header",
                "format": FORMAT,
                "version": VERSION,
                "unit": "us",
                "lowest": LOWEST_US,
                "highest": HIGHEST_US,
                "digits": SIGNIFICANT_DIGITS,
                "interval_s": 1,
                "process": self.process,
            }
        )

    def write_interval(
        self, second: int, histograms: Mapping[str, HdrHistogram], errors: Mapping[str, int]
    ) -> None:
        lines = [
            {"kind": "interval", "t": second, "metric": name, "hist": encode_histogram(h)}
            for name, h in histograms.items()
        ]
        if errors:
            lines.append({"kind": "errors", "t": second, "codes": dict(errors)})
        for line in lines:
            self._write(line, flush=False)
        if self._file is not None:
            self._file.flush()

    def close(self, recorder: LatencyRecorder | None = None) -> None:
        """Write the end line (with the recorder's clock counts) and close the file."""
        if self._file is None:
            return
        end: dict[str, object] = {"kind": "end"}
        if recorder is not None:
            end.update(
                clocks=dict(recorder.clocks),
                unstamped=recorder.unstamped,
                skewed=recorder.skewed,
            )
        self._write(end)
        self._file.close()
        self._file = None

    def _write(self, line: dict[str, object], flush: bool = True) -> None:
        assert self._file is not None, "the latency log is closed"
        self._file.write(orjson.dumps(line) + b"\n")
        if flush:
            self._file.flush()

    def __enter__(self) -> LatencyLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Interval:
    """One second of one metric as the files hold it (one encoding per process), decoded
    only when asked: a decoded histogram is about 200 KB, an encoded one a few hundred
    bytes, and an hour's run holds thousands of them."""

    __slots__ = ("encoded",)

    def __init__(self, encoded: str) -> None:
        self.encoded = [encoded]

    def histogram(self) -> HdrHistogram:
        found = decode_histogram(self.encoded[0])
        for more in self.encoded[1:]:
            found.add(decode_histogram(more))
        return found


@dataclass
class LatencyData:
    """Every latency file of a run, merged."""

    #: metric -> wall second -> the values recorded in that second
    intervals: dict[str, dict[int, Interval]] = field(default_factory=dict)
    #: metric -> every value recorded, all seconds and processes
    totals: dict[str, HdrHistogram] = field(default_factory=dict)
    #: wall second -> error code -> count
    errors: dict[int, Counter[str]] = field(default_factory=dict)
    clocks: Counter[str] = field(default_factory=Counter)
    processes: list[str] = field(default_factory=list)
    #: files that have no end line: their process did not finish cleanly
    unfinished: list[str] = field(default_factory=list)
    skipped_lines: int = 0
    unstamped: int = 0
    skewed: int = 0

    def total(self, metric: str) -> HdrHistogram:
        found = self.totals.get(metric)
        return merge([found] if found is not None else [])

    def error_totals(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for codes in self.errors.values():
            totals.update(codes)
        return totals

    @property
    def seconds(self) -> list[int]:
        """Every second from the first to the last one anything was recorded in."""
        found = {t for per in self.intervals.values() for t in per} | set(self.errors)
        return list(range(min(found), max(found) + 1)) if found else []

    @property
    def clock(self) -> str:
        return clock_name(self.clocks)


def read_latency(directory: str | os.PathLike[str]) -> LatencyData:
    """Merge every ``*.jsonl`` latency file in ``directory`` (missing: no data)."""
    data = LatencyData()
    for path in sorted(Path(directory).glob("*.jsonl")):
        _read_file(path, data)
    return data


def _read_file(path: Path, data: LatencyData) -> None:
    ended = False
    with path.open("rb") as file:
        for raw in file:
            try:
                line = orjson.loads(raw)
                kind = line["kind"]
                if kind == "interval":
                    encoded, metric = line["hist"], line["metric"]
                    histogram = decode_histogram(encoded)  # a bad one is skipped here
                    second = int(line["t"])
                    total = data.totals.get(metric)
                    if total is None:
                        total = data.totals[metric] = new_histogram()
                    total.add(histogram)
                    per_second = data.intervals.setdefault(metric, {})
                    if second in per_second:
                        per_second[second].encoded.append(encoded)
                    else:
                        per_second[second] = Interval(encoded)
                elif kind == "errors":
                    data.errors.setdefault(int(line["t"]), Counter()).update(line["codes"])
                elif kind == "header":
                    if line.get("format") != FORMAT:
                        raise ValueError("not a latency file")
                    data.processes.append(str(line.get("process", path.stem)))
                elif kind == "end":
                    ended = True
                    data.clocks.update(line.get("clocks", {}))
                    data.unstamped += int(line.get("unstamped", 0))
                    data.skewed += int(line.get("skewed", 0))
            except Exception:
                # A torn last line from a killed process, or a foreign file: decoding
                # errors come from orjson, zlib and hdrh alike.
                data.skipped_lines += 1
    if not ended:
        data.unfinished.append(path.name)
