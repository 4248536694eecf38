"""A history spilled to disk key by key: one segment file per (session, key).

    segments = Segments(directory)
    for path in paths:
        segments.feed_file(path)      # again and again while the file grows: it tails
    segments.finish()                 # complete: requests still open never got a reply
    for session_key in segments.keys:
        events = segments.load(session_key)   # that key's events, as partition() would group them

The checker partitions a history by (session, key) before judging it
(:func:`harness.checker.operations.partition`), and a key's judgement needs
nothing of any other key. So a history need not be held whole: each event goes,
as it is read, to the segment of the one key whose judgement it feeds, and only
what spans keys stays in memory, all of it small: requests still waiting for a
reply (bounded by concurrency), which (connection, observer) belongs to which
key, the last ``closed`` of each connection, joins' key limits and ``violation``
events.

Events go where :func:`~harness.checker.operations.partition` would put them, and
in the order it would meet them, so loading one key's segment and partitioning it
gives exactly that key's history: a request's ``invoke`` and ``done`` are written
together at the ``done`` (where partition completes it; requests that never
complete are written by :meth:`finish`, in the order they were sent), an update
goes to the key of the observer it is delivered to, a stopObserving to its
observer's key at once. Requests partition ignores (a get that got no value, an
observe that was refused) go nowhere. ``closed`` events are added to each key as
it is loaded, for the connections it has observers on; partition reads them only
after every other event.

A segment is a series of frames, each a 4-byte length and a :mod:`marshal` dump of
the events written out together: their kinds, then all their fields in a row. Not
JSON: the events were validated once, as they were read, and loading the largest
keys again at the end is what a run waits for. A frame stores a string once however
many of its events carry it (the session, the key, a value every observer was sent),
so an event loaded takes about a quarter of the memory a decoded JSON line does, and
loads about eight times as fast (README, "The streaming checker"). Events keep no
JSON of their own (``record`` is None), so a counterexample quotes them the same
either way.
"""

from __future__ import annotations

import marshal
import os
import shutil
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.errors import HistoryError
from harness.history.events import (
    EVENT_TYPES,
    Closed,
    Done,
    Event,
    Header,
    Invoke,
    Update,
    Violation,
)
from harness.history.reader import History, paused_gc
from harness.protocol.kinds import STOP_OBSERVING

SessionKey = tuple[str, str]
#: Events buffered over all segments before they are written out.
BUFFER_EVENTS = 32_768
#: A segment's own buffer is written out, as one frame, at this many events.
FRAME_EVENTS = 2_048
#: A frame's length, ahead of its marshal dump.
_FRAME_SIZE = struct.Struct("<I")
#: An event's kind in a frame: its index here.
_KINDS: tuple[type[Event], ...] = tuple(EVENT_TYPES.values())
_KIND_OF = {kind: index for index, kind in enumerate(_KINDS)}
_WIDTHS = tuple(len(kind._fields) for kind in _KINDS)
#: A history file is read this much at a time.
READ_CHUNK_BYTES = 8 << 20
#: How far behind a file's latest event the watermark stays (see :meth:`Segments.watermarks`).
WATERMARK_MARGIN_NS = 1_000_000_000


@dataclass(slots=True, eq=False)
class _Segment:
    path: Path
    #: The events not written out yet: their kinds, and their fields one after another.
    kinds: bytearray = field(default_factory=bytearray)
    fields: list[Any] = field(default_factory=list)
    events: int = 0
    #: Connections it has observers on: their ``closed`` events belong to it.
    conns: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Tail:
    """How far a file has been read: the next line starts at ``offset``."""

    offset: int = 0
    domain: int = -1
    line: int = 0
    #: The latest event time read, for the watermark (-1: none yet).
    last_time: int = -1


class Segments:
    """Routes a history's events to per-key segment files in ``directory`` (created)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        buffer_events: int = BUFFER_EVENTS,
        margin_ns: int = WATERMARK_MARGIN_NS,
    ) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot spill the history to {self.directory}: {exc}") from None
        self.buffer_events = buffer_events
        self.margin_ns = margin_ns
        #: What spans keys, as :class:`~harness.history.reader.History` holds it.
        self.history = History()
        self.events = self.requests = self.updates = 0
        self.max_keys: dict[str, int] = {}
        #: session -> the connections that joined it (a session whose every one has
        #: closed is likely over: see StreamChecker's final judgements).
        self.joined: dict[str, set[str]] = {}
        self.closed: dict[str, Closed] = {}
        self.violations: list[Violation] = []
        #: In the order partition would create their key histories.
        self.keys: dict[SessionKey, _Segment] = {}
        #: Requests sent and not yet answered: (conn, request) -> the invoke.
        self.in_flight: dict[tuple[str, int], Invoke] = {}
        self._observers: dict[tuple[str, str], SessionKey] = {}
        self._tails: dict[Path, _Tail] = {}
        self._buffered = 0
        self.bytes_written = 0
        self.finished = False

    # --- feeding ---------------------------------------------------------------------

    def feed_file(self, path: str | os.PathLike[str]) -> int:
        """Route the complete lines of ``path`` not read yet; how many bytes were read.

        A file that grows is read on from where the last call stopped. A last line
        without its newline is left for the next call, or, after :meth:`finish`,
        skipped as cut short by a crash (as :func:`~harness.history.reader.read_history`
        does).
        """
        path = Path(path)
        tail = self._tails.setdefault(path, _Tail())
        read = 0
        try:
            with open(path, "rb") as file, paused_gc():
                file.seek(tail.offset)
                # In chunks: a history file can be many times the memory the checker may use.
                while chunk := file.read(READ_CHUNK_BYTES):
                    end = chunk.rfind(b"\n") + 1
                    if not end:
                        if len(chunk) == READ_CHUNK_BYTES:
                            raise HistoryError(f"{path}: a line longer than {READ_CHUNK_BYTES}")
                        break
                    for line in chunk[:end].split(b"\n")[:-1]:
                        tail.line += 1
                        self._feed_line(line, path, tail)
                    tail.offset += end
                    read += end
                    file.seek(tail.offset)
        except OSError as exc:
            raise HistoryError(f"{path}: cannot read: {exc.strerror or exc}") from None
        return read

    def _feed_line(self, line: bytes, path: Path, tail: _Tail) -> None:
        if not line.strip():
            return
        where = f"{path}: line {tail.line}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise HistoryError(f"{where}: not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise HistoryError(f"{where}: not a JSON object")
        cls = EVENT_TYPES.get(record.get("ev"))  # type: ignore[arg-type]
        if cls is None or tail.domain < 0:
            tail.domain = self._header(record, tail.domain, where, str(path))
            return
        try:
            event = cls.decode(record, tail.domain)
        except HistoryError as exc:
            raise HistoryError(f"{where}: {exc}") from None
        if event.time > tail.last_time:
            tail.last_time = event.time
        self._route(event)

    def _header(self, record: dict[str, Any], domain: int, where: str, source: str) -> int:
        return self.history._header(record, domain, where, source)

    def finish_file(self, path: str | os.PathLike[str]) -> None:
        """Read the rest of ``path``; a last line cut short (no newline) is skipped."""
        path = Path(path)
        self.feed_file(path)
        tail = self._tails[path]
        try:
            with open(path, "rb") as file:
                file.seek(tail.offset)
                rest = file.read()
        except OSError as exc:
            raise HistoryError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if not rest.strip():
            return
        try:
            orjson.loads(rest)
        except orjson.JSONDecodeError:
            self.history.truncated.append(f"{path}: line {tail.line + 1}")
            tail.offset += len(rest)
            return
        tail.line += 1  # a whole event that only lacks its newline
        self._feed_line(rest, path, tail)
        tail.offset += len(rest)

    def feed(self, events: Iterable[Event]) -> None:
        """Route events already decoded (a :class:`History`'s), in their order."""
        with paused_gc():
            for event in events:
                self._route(event)

    def _route(self, event: Event) -> None:
        self.events += 1
        kind = type(event)
        if kind is Update:
            self.updates += 1
            target = self._observers.get((event.conn, event.observer))
            if target is None:
                # As partition: an update without a recorded observe starts an observer.
                target = (event.session or "", event.key)
                self._observers[(event.conn, event.observer)] = target
            self._write(target, event, event.conn)
        elif kind is Invoke:
            self.requests += 1
            self.in_flight[(event.conn, event.request)] = event
            if event.op == STOP_OBSERVING.history:
                target = self._observers.get((event.conn, event.observer))  # type: ignore[arg-type]
                if target is not None:
                    self._write(target, event)
        elif kind is Done:
            call = self.in_flight.pop((event.conn, event.request), None)
            if call is not None:
                self._complete(call, event)
        elif kind is Closed:
            self.closed[event.conn] = event
        else:
            self.violations.append(event)  # type: ignore[arg-type]

    def _complete(self, call: Invoke, done: Done | None) -> None:
        """Where partition's ``_complete`` puts a request, its events go."""
        op = call.op
        session = (done.session if done is not None else None) or call.session or ""
        target = (session, call.key or "")
        if op == "set":
            self._write(target, call)
        elif done is None:
            return
        elif op == "get" and done.result == "value":
            self._write(target, call)
        elif op == "observe" and done.result == "observing" and done.observer is not None:
            self._observers[(call.conn, done.observer)] = target
            self._write(target, call, call.conn)
        elif op == STOP_OBSERVING.history:
            # Ignored by partition; kept so a judgement of the history so far knows
            # which stopObserving was answered by then (see harness.checker.stream).
            stopped = self._observers.get((call.conn, call.observer))  # type: ignore[arg-type]
            if stopped is not None:
                self._write(stopped, done)
            return
        elif op == "join" and done.result == "joined":
            name = call.session or ""
            self.joined.setdefault(name, set()).add(call.conn)
            if done.max_keys is not None:
                self.max_keys[name] = min(self.max_keys.get(name, done.max_keys), done.max_keys)
            return
        else:
            return
        if done is not None:
            self._write(target, done)

    def finish(self) -> None:
        """The history is complete: requests never answered are written as partition
        completes them, after everything else, in the order they were sent."""
        if self.finished:
            return
        self.finished = True
        for call in self.in_flight.values():
            if call.op == "set":
                self._complete(call, None)
        self.in_flight.clear()
        self.flush()

    # --- segments --------------------------------------------------------------------

    def _write(self, target: SessionKey, event: Event, conn: str | None = None) -> None:
        segment = self.keys.get(target)
        if segment is None:
            segment = self.keys[target] = _Segment(self.directory / f"{len(self.keys)}.seg")
            # A segment left by an earlier checker in this directory (one that crashed)
            # is not this one's to append to.
            segment.path.unlink(missing_ok=True)
        segment.kinds.append(_KIND_OF[type(event)])
        segment.fields.extend(event)
        segment.events += 1
        if conn is not None:
            segment.conns.add(conn)
        self._buffered += 1
        if len(segment.kinds) >= FRAME_EVENTS:
            self._write_out(segment)
        if self._buffered >= self.buffer_events:
            self.flush()

    def _write_out(self, segment: _Segment) -> None:
        if not segment.kinds:
            return
        # One string object for every equal string of the frame: marshal then stores
        # it once, and a load gives every event that carried it the same object.
        fields = segment.fields
        dump = marshal.dumps((bytes(segment.kinds), list(map({}.setdefault, fields, fields))))
        try:
            with open(segment.path, "ab") as file:
                file.write(_FRAME_SIZE.pack(len(dump)))
                file.write(dump)
        except OSError as exc:
            raise HistoryError(f"cannot spill the history to {segment.path}: {exc}") from None
        self.bytes_written += _FRAME_SIZE.size + len(dump)
        self._buffered -= len(segment.kinds)
        segment.kinds.clear()
        segment.fields.clear()

    def flush(self) -> None:
        for segment in self.keys.values():
            self._write_out(segment)

    def load(self, key: SessionKey) -> History:
        """One key's events (then the ``closed`` of its observers' connections) as a
        history of their own, with the run's clock domains."""
        segment = self.keys[key]
        self._write_out(segment)
        out = History(clocks=self.history.clocks, processes=self.history.processes)
        try:
            data = segment.path.read_bytes() if segment.path.exists() else b""
        except OSError as exc:
            raise HistoryError(f"{segment.path}: cannot read: {exc.strerror or exc}") from None
        append, new, classes, widths = out.events.append, tuple.__new__, _KINDS, _WIDTHS
        view, position, size_of = memoryview(data), 0, _FRAME_SIZE.size
        with paused_gc():
            try:
                while position < len(data):
                    (size,) = _FRAME_SIZE.unpack_from(view, position)
                    position += size_of
                    kinds, fields = marshal.loads(view[position : position + size])
                    start = 0
                    for kind in kinds:
                        end = start + widths[kind]
                        append(new(classes[kind], fields[start:end]))
                        start = end
                    position += size
            except (EOFError, ValueError, TypeError, IndexError, struct.error) as exc:
                raise HistoryError(f"{segment.path}: a frame is damaged ({exc})") from None
        for conn in sorted(segment.conns):
            closed = self.closed.get(conn)
            if closed is not None:
                out.events.append(closed)
        return out

    def watermarks(self) -> dict[int, int]:
        """clock domain -> the latest instant by which every file of it was read.

        Files are written in the order events happen, give or take the moment
        between taking a time and writing the line, hence the margin.
        """
        out: dict[int, int] = {}
        for tail in self._tails.values():
            if tail.last_time < 0:
                continue
            mark = tail.last_time - self.margin_ns
            out[tail.domain] = min(out.get(tail.domain, mark), mark)
        return out

    def disk_bytes(self) -> int:
        return self.bytes_written

    def remove(self) -> None:
        """Delete the segment files (the directory too)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def headers(self) -> list[Header]:
        return self.history.headers
