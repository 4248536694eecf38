"""A history spilled to disk key by key: one segment file per (session, key).

    segments = Segments(directory)
    for path in paths:
        segments.feed_file(path)      # again and again while the file grows: it tails
    segments.finish()                 # complete: requests still open never got a reply
    for session_key in segments.keys:
        loaded = segments.load(session_key)   # that key's events, as partition() would group them
        parts = partition(loaded.history, loaded.updates_of)

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
what was written out together: the events' kinds, then all their fields in a row,
then the updates. Not JSON: the events were validated once, as they were read, and
loading the largest keys again at the end is what a run waits for. A frame stores a
string once however many of its events carry it (the session, the key, a value), so
an event loaded takes about a quarter of the memory a decoded JSON line does. Events
keep no JSON of their own (``record`` is None), so a counterexample quotes them the
same either way.

Updates, nearly all of a history, are not stored as events but as columns, an
observer's updates two arrays (:class:`UpdateColumns`): a token, which is the value
and its writer, and the time. An event marks where partition starts each observer
(an observe's reply, or the first update of an observer whose observe was not
recorded), and :meth:`Segments.load` hands it its columns
(:meth:`LoadedKey.updates_of`), so partition gives each observer exactly the
updates it would have collected.
"""

from __future__ import annotations

import marshal
import os
import shutil
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import orjson

from harness.errors import HistoryError
from harness.history.events import (
    EVENT_KINDS,
    EVENT_TYPES,
    KIND_NUMBERS,
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
_WIDTHS = tuple(len(kind._fields) for kind in EVENT_KINDS)
#: Added to an event's kind when it starts an observer (see :class:`UpdateColumns`).
_STARTS_OBSERVER = 0x80
#: A history file is read this much at a time.
READ_CHUNK_BYTES = 8 << 20
#: How far behind a file's latest event the watermark stays (see :meth:`Segments.watermarks`).
WATERMARK_MARGIN_NS = 1_000_000_000


class UpdateColumns(Sequence[Update]):
    """The updates one observer received, as columns: a token and a time each.

    Updates are nearly all of a history (an observer is sent every write), and
    those of one observer differ only in the value, its writer and the time. So a
    segment stores them as two arrays an observer: the time, and a token, which
    is the (value, writer) pair, held once a key. What else an update says (the
    key, its receiver, session and clock domain) is said once an observer, in
    ``rest``; an update that says otherwise has it in its token. The checker
    judges a key that shows no anomaly from the arrays alone
    (:func:`harness.checker.order.check_quietly`); indexed or iterated, they give
    the very :class:`Update` events, for the checks that quote them.
    """

    __slots__ = ("conn", "observer", "rest", "times", "token_ids", "tokens")

    def __init__(
        self, conn: str, observer: str, tokens: list[tuple[Any, ...]],
        rest: tuple[Any, ...] = (), token_ids: array[int] | None = None,
        times: array[int] | None = None,
    ) -> None:  # fmt: skip
        self.conn, self.observer, self.tokens, self.rest = conn, observer, tokens, rest
        self.token_ids = array("i") if token_ids is None else token_ids
        self.times = array("q") if times is None else times

    def __len__(self) -> int:
        return len(self.times)

    @overload
    def __getitem__(self, index: int) -> Update: ...
    @overload
    def __getitem__(self, index: slice) -> list[Update]: ...
    def __getitem__(self, index: int | slice) -> Update | list[Update]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        value, by, *rest = self.tokens[self.token_ids[index]]
        key, participant, session, domain = rest or self.rest
        fields = (self.times[index], self.conn, self.observer, key, value, participant, session)
        return tuple.__new__(Update, (*fields, by, domain, None))

    def __iter__(self) -> Iterator[Update]:
        return map(self.__getitem__, range(len(self)))

    def before(self, mark: int) -> UpdateColumns:
        """Those received by ``mark``."""
        kept = [i for i, t in enumerate(self.times) if t <= mark]
        if len(kept) == len(self.times):
            return self
        ids, times = self.token_ids, self.times
        return UpdateColumns(
            self.conn, self.observer, self.tokens, self.rest, array("i", [ids[i] for i in kept]),
            array("q", [times[i] for i in kept]),
        )  # fmt: skip


@dataclass(slots=True, eq=False)
class LoadedKey:
    """One key's segment as loaded: its events but the updates, and the updates as
    :class:`UpdateColumns`, by the event that started their observer."""

    history: History
    #: id() of the event that started an observer -> that observer's updates.
    columns: dict[int, UpdateColumns]

    def updates_of(self, started_by: Event) -> UpdateColumns | None:
        """For partition: the updates of the observer ``started_by`` starts."""
        return self.columns.get(id(started_by))

    def before(self, marks: dict[int, int]) -> tuple[LoadedKey, bool]:
        """The updates received by the watermark of their clock domain; and whether
        that is every one. (An observer's updates all come from one connection, so
        from one process: one clock domain, that of the event that started it.)"""
        starters = {id(e): e for e in self.history.events}
        columns = {
            started: found.before(marks.get(starters[started].domain, -1))
            for started, found in self.columns.items()
        }
        whole = all(columns[k] is found for k, found in self.columns.items())
        return LoadedKey(self.history, columns), whole

    def events(self, around: Sequence[tuple[int, int]] = ()) -> list[Event]:
        """Every event of the key in no particular order, the updates included: all of
        them, or those received within one of the windows ``around`` (low, high)."""
        # An update that started an observer is among its columns as well.
        columns = self.columns
        events = [e for e in self.history.events if type(e) is not Update or id(e) not in columns]
        for found in columns.values():
            if around:
                times = found.times
                events += [
                    found[i]
                    for i in range(len(times))
                    if any(low <= times[i] <= high for low, high in around)
                ]
            else:
                events += found
        return events


@dataclass(slots=True, eq=False)
class _Segment:
    path: Path
    #: The events not written out yet: their kinds, and their fields one after another.
    kinds: bytearray = field(default_factory=bytearray)
    fields: list[Any] = field(default_factory=list)
    #: The observers with updates not written out yet, by number.
    updated: dict[int, _Observed] = field(default_factory=dict)
    #: The tokens of the updates not written out yet: token -> its id in the frame.
    tokens: dict[tuple[Any, ...], int] = field(default_factory=dict)
    buffered: int = 0
    events: int = 0
    #: Observers started in it, numbered as partition creates them.
    started: int = 0
    #: Connections it has observers on: their ``closed`` events belong to it.
    conns: set[str] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class _Observed:
    """An observer, and its updates its segment has not written out yet."""

    target: SessionKey
    segment: _Segment
    number: int
    #: What its first update says but the value, writer and time (UpdateColumns.rest).
    rest: tuple[Any, ...] | None = None
    token_ids: array[int] = field(default_factory=lambda: array("i"))
    times: array[int] = field(default_factory=lambda: array("q"))


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
        #: (conn, observer id) -> the observer its updates go to: the one partition
        #: would give them to (the last started: an observe's reply, or an update of
        #: an observer not seen before).
        self._observers: dict[tuple[str, str], _Observed] = {}
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
            self._write_update(event)  # type: ignore[arg-type]
        elif kind is Invoke:
            self.requests += 1
            self.in_flight[(event.conn, event.request)] = event
            if event.op == STOP_OBSERVING.history:
                stopped = self._observers.get((event.conn, event.observer))  # type: ignore[arg-type]
                if stopped is not None:
                    self._write(stopped.target, event)
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
            self._write(target, call, call.conn)
            self._write(target, done, starts=(call.conn, done.observer))
            return
        elif op == STOP_OBSERVING.history:
            # Ignored by partition; kept so a judgement of the history so far knows
            # which stopObserving was answered by then (see harness.checker.stream).
            stopped = self._observers.get((call.conn, call.observer))  # type: ignore[arg-type]
            if stopped is not None:
                self._write(stopped.target, done)
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

    def _segment(self, target: SessionKey) -> _Segment:
        segment = self.keys.get(target)
        if segment is None:
            segment = self.keys[target] = _Segment(self.directory / f"{len(self.keys)}.seg")
            # A segment left by an earlier checker in this directory (one that crashed)
            # is not this one's to append to.
            segment.path.unlink(missing_ok=True)
        return segment

    def _write(
        self,
        target: SessionKey,
        event: Event,
        conn: str | None = None,
        starts: tuple[str, str] | None = None,
    ) -> _Segment:
        """Buffer ``event`` for ``target``'s segment; ``starts``: the (conn, observer
        id) of the observer it starts, where partition would start one."""
        segment = self._segment(target)
        kind = KIND_NUMBERS[type(event)]
        if starts is not None:
            self._observers[starts] = _Observed(target, segment, segment.started)
            segment.started += 1
            kind |= _STARTS_OBSERVER
        segment.kinds.append(kind)
        segment.fields.extend(event)
        if conn is not None:
            segment.conns.add(conn)
        self._buffered_one(segment)
        return segment

    def _write_update(self, update: Update) -> None:
        observed = self._observers.get((update.conn, update.observer))
        if observed is None:
            # As partition: an update of an observer not seen before starts one, and
            # is written as an event too, where partition would meet it.
            target = (update.session or "", update.key)
            starts = (update.conn, update.observer)
            self._write(target, update, update.conn, starts).events -= 1  # counted below
            observed = self._observers[starts]
        segment = observed.segment
        token: tuple[Any, ...] = (update.value, update.by)
        rest = (update.key, update.participant, update.session, update.domain)
        if observed.rest is None:
            observed.rest = rest
        elif rest != observed.rest:
            token += rest
        token_id = segment.tokens.get(token)
        if token_id is None:
            token_id = segment.tokens[token] = len(segment.tokens)
        if not observed.times:
            segment.updated[observed.number] = observed
        observed.token_ids.append(token_id)
        observed.times.append(update.time)
        self._buffered_one(segment)

    def _buffered_one(self, segment: _Segment) -> None:
        segment.events += 1
        segment.buffered += 1
        self._buffered += 1
        if segment.buffered >= FRAME_EVENTS:
            self._write_out(segment)
        if self._buffered >= self.buffer_events:
            self.flush()

    def _write_out(self, segment: _Segment) -> None:
        if not segment.buffered:
            return
        # One string object for every equal string of the frame: marshal then stores
        # it once, and a load gives every event that carried it the same object.
        shared: dict[Any, Any] = {}
        fields = list(map(shared.setdefault, segment.fields, segment.fields))
        tokens = [tuple(map(shared.setdefault, token, token)) for token in segment.tokens]
        updates = []
        for number, observed in segment.updated.items():
            rest = tuple(map(shared.setdefault, observed.rest, observed.rest))  # type: ignore[arg-type]
            updates.append((number, rest, observed.token_ids.tobytes(), observed.times.tobytes()))
            del observed.token_ids[:], observed.times[:]
        dump = marshal.dumps((bytes(segment.kinds), fields, tokens, updates))
        try:
            with open(segment.path, "ab") as file:
                file.write(_FRAME_SIZE.pack(len(dump)))
                file.write(dump)
        except OSError as exc:
            raise HistoryError(f"cannot spill the history to {segment.path}: {exc}") from None
        self.bytes_written += _FRAME_SIZE.size + len(dump)
        self._buffered -= segment.buffered
        segment.buffered = 0
        segment.kinds.clear()
        segment.fields.clear()
        segment.updated.clear()
        segment.tokens.clear()

    def flush(self) -> None:
        for segment in self.keys.values():
            self._write_out(segment)

    def load(self, key: SessionKey) -> LoadedKey:
        """One key's events (then the ``closed`` of its observers' connections) as a
        history of their own, with the run's clock domains; its updates as columns."""
        segment = self.keys[key]
        self._write_out(segment)
        out = History(clocks=self.history.clocks, processes=self.history.processes)
        try:
            data = segment.path.read_bytes() if segment.path.exists() else b""
        except OSError as exc:
            raise HistoryError(f"{segment.path}: cannot read: {exc.strerror or exc}") from None
        events, new, classes, widths = out.events, tuple.__new__, EVENT_KINDS, _WIDTHS
        #: The key's tokens, each once, and the columns of each observer by number.
        tokens: list[tuple[Any, ...]] = []
        token_ids: dict[tuple[Any, ...], int] = {}
        columns: list[UpdateColumns] = []
        starters: dict[int, UpdateColumns] = {}
        view, position, size_of = memoryview(data), 0, _FRAME_SIZE.size
        with paused_gc():
            try:
                while position < len(data):
                    (size,) = _FRAME_SIZE.unpack_from(view, position)
                    position += size_of
                    kinds, fields, frame_tokens, updates = marshal.loads(
                        view[position : position + size]
                    )
                    start = 0
                    for kind in kinds:
                        cls = classes[kind & ~_STARTS_OBSERVER]
                        end = start + widths[kind & ~_STARTS_OBSERVER]
                        event = new(cls, fields[start:end])
                        events.append(event)
                        start = end
                        if kind & _STARTS_OBSERVER:
                            found = _columns_of(event, tokens)
                            columns.append(found)
                            starters[id(event)] = found
                    # This frame's token ids -> the key's.
                    ids = []
                    for token in frame_tokens:
                        known = token_ids.get(token)
                        if known is None:
                            known = token_ids[token] = len(tokens)
                            tokens.append(token)
                        ids.append(known)
                    for number, rest, frame_ids, times in updates:
                        found = columns[number]
                        found.rest = rest
                        found.token_ids.extend(map(ids.__getitem__, array("i", frame_ids)))
                        found.times.frombytes(times)
                    position += size
            except (EOFError, ValueError, TypeError, IndexError, struct.error) as exc:
                raise HistoryError(f"{segment.path}: a frame is damaged ({exc})") from None
        for conn in sorted(segment.conns):
            closed = self.closed.get(conn)
            if closed is not None:
                events.append(closed)
        return LoadedKey(out, starters)

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


def _columns_of(starter: Event, tokens: list[tuple[Any, ...]]) -> UpdateColumns:
    """Empty columns for the observer ``starter`` starts: an observe's reply, or the
    first update of an observer whose observe was not recorded."""
    return UpdateColumns(starter.conn, starter.observer, tokens)  # type: ignore[union-attr,arg-type]
