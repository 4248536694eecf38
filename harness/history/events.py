"""The history format: what every participant did and saw, as JSONL, for the checker.

    recorder = HistoryRecorder("history.jsonl")       # or HistoryRecorder() to keep it in memory
    async with connect(url, listeners=[recorder]) as client:
        ...
    recorder.close()
    verdict = check(read_history(["history.jsonl"]))

One JSON object per line. The first line of a file is a ``header`` naming the
process and its clock domain; then, porcupine-style, every request is an
``invoke`` and a ``done`` (``result`` ok / value / observing / joined / error,
or ``unknown`` when no reply came: a timeout or a lost connection, where the
server may or may not have applied it), every update is an ``update``, every
connection end is a ``closed``, and every frame that broke the spec is a
``violation`` quoting it (``kind``, ``requirement``, ``reason``, ``frame``).
Times ``t`` are ``time.monotonic_ns()``: comparable between processes of one
Linux boot (the clock domain names host and boot id), never across machines, so
the checker compares times only within one domain. Files from many processes (a
swarm's workers) are read together.

Lines are written whole and flushed every ``flush_events`` events or
``flush_interval`` seconds, so a crash loses at most the last moments and never
leaves a half-written line that the reader would mistake for data.

The reader decodes each line into a typed event, one kind per ``ev``:
:class:`Header`, :class:`Invoke`, :class:`Done`, :class:`Update`,
:class:`Closed`, :class:`Violation`. Fields are the JSON names spelled out
(``t`` is ``time``, ``p`` ``participant``, ``s`` ``session``, ``req``
``request``, ``obs`` ``observer``, ``maxKeys`` ``max_keys``); every event is
validated on construction (h11-style), so the checker reads fields, never
dicts. An event does not keep the JSON object it was decoded from (a history
holds millions); ``to_json`` writes the same fields back for quotes.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, ClassVar, NamedTuple, get_args, get_type_hints

import orjson

from harness.errors import HistoryError

FORMAT_VERSION = 1
#: A violation event quotes this many characters of the frame at most.
FRAME_QUOTE_CHARS = 4000


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        # Without a boot id, only this process's own events can be compared in time.
        return f"pid{os.getpid()}-{time.time_ns()}"


def header_event(process: str | None = None) -> dict[str, Any]:
    host = socket.gethostname()
    return {
        "ev": "header",
        "format": FORMAT_VERSION,
        "process": process or f"{host}/{os.getpid()}",
        "host": host,
        "pid": os.getpid(),
        "clock": f"{host}/{_boot_id()}",
        "wall_ns": time.time_ns(),
        "mono_ns": time.monotonic_ns(),
    }


def update_fields(frame: str) -> dict[str, Any]:
    """``obs`` and ``key`` of an offending update frame, so the checker can place it."""
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict) or data.get("type") != "update":
        return {}
    fields = {"obs": data.get("observerId"), "key": data.get("key")}
    return {name: value for name, value in fields.items() if isinstance(value, str)}


#: Python field -> JSON name, where they differ; every other field is spelled alike.
JSON_NAMES = {
    "time": "t",
    "participant": "p",
    "session": "s",
    "request": "req",
    "observer": "obs",
    "max_keys": "maxKeys",
    "after_violation": "violation",
}


class _Typed:
    """Validation and the JSON pair, shared by every event kind.

    Events are NamedTuples rather than frozen dataclasses because a history holds
    millions of them: a tuple is built in a third of the time, and is as
    immutable (benchmarks/bench_checker.py decodes each event of its history).
    Each kind's field annotations are its schema: the JSON names and the types
    checked are derived from them, and so is ``decode``, compiled per kind as
    dataclasses compile ``__init__``, since decoding is the reader's hot path.
    """

    __slots__ = ()
    KIND: ClassVar[str]
    #: The JSON name of each field (``domain`` and ``record`` are the reader's own).
    JSON: ClassVar[tuple[str, ...]]
    #: The types each field may hold: exactly these (a bool is no int here).
    TYPES: ClassVar[tuple[tuple[type, ...], ...]]
    _fields: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.KIND = kind
        hints = get_type_hints(cls)
        cls.JSON = tuple(JSON_NAMES.get(name, name) for name in cls._fields)
        cls.TYPES = tuple(_accepted(hints[name]) for name in cls._fields)
        cls.decode = staticmethod(_compile_decode(cls))  # type: ignore[method-assign,assignment]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _validated(super().__new__(cls, *args, **kwargs))  # type: ignore[misc]

    @classmethod
    def decode(cls, record: Mapping[str, Any], domain: int = 0) -> Any:
        """The event a JSON object records (of clock domain ``domain``); raises
        HistoryError naming a field that is missing or of the wrong type."""
        raise NotImplementedError  # compiled per kind by __init_subclass__

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the one it was read from, or one built from the fields."""
        record = getattr(self, "record", None)
        if record is not None:
            return dict(record)
        fields = zip(self._fields, self.JSON, self, strict=True)
        found = {json: value for name, json, value in fields if name not in _OWN}
        # A null value is meaningful in a delete, a get of an absent key and an update
        # of one; other nulls only say that the field is absent.
        kind = self.KIND
        null_value = kind == "update" or (
            found.get("op") == "set" if kind == "invoke" else found.get("result") == "value"
        )
        return {
            "ev": kind,
            **{
                name: value
                for name, value in found.items()
                if value is not None or (name == "value" and null_value)
            },
        }


#: Fields the reader adds, which no JSON object holds.
_OWN = ("domain", "record")


def _accepted(hint: Any) -> tuple[type, ...]:
    """The types an annotation allows (``str | None`` -> (str, NoneType))."""
    if isinstance(hint, UnionType):
        return tuple(_accepted(arg)[0] for arg in get_args(hint))
    return (getattr(hint, "__origin__", hint),)


def _validated(event: Any) -> Any:
    for name, value, types in zip(event._fields, event, event.TYPES, strict=True):
        if type(value) not in types:
            json = JSON_NAMES.get(name, name)
            raise HistoryError(f"{event.KIND} event without a valid {json!r}")
    return event


def _compile_decode(cls: Any) -> Any:
    """``decode`` for one kind: one ``get`` and one exact type test a field, inline.

    Generated, like a dataclass's ``__init__``, because a loop over the fields
    costs twice as much per event, and a history holds millions of them.
    """
    names: dict[str, Any] = {"_new": tuple.__new__, "_cls": cls, "_invalid": _validated}
    gets, values, tests = [], [], []
    for index, (name, json, types) in enumerate(zip(cls._fields, cls.JSON, cls.TYPES, strict=True)):
        if name == "domain":
            values.append(name)
            continue
        if name == "record":
            # Not kept: the fields say it all (to_json), and a million events each
            # holding their decoded dict cost about 110 bytes an event more.
            values.append("None")
            continue
        value, exact = f"v{index}", f"t{index}"
        names[exact] = next(t for t in types if t is not NoneType)
        gets.append(f"    {value} = get({json!r})\n")
        values.append(value)
        test = f"{value}.__class__ is {exact}"
        tests.append(f"({value} is None or {test})" if NoneType in types else test)
    source = (
        "def decode(record, domain=0):\n"
        "    get = record.get\n"
        f"{''.join(gets)}"
        f"    event = _new(_cls, ({', '.join(values)},))\n"
        f"    if {' and '.join(tests)}:\n"
        "        return event\n"
        "    return _invalid(event)\n"
    )
    exec(source, names)  # our own source, built from the annotations above
    return names["decode"]


class _Header(NamedTuple):
    clock: str | None = None  # the reader names a file without one as a domain of its own
    process: str | None = None
    format: int | None = None
    host: str | None = None
    pid: int | None = None
    wall_ns: int | None = None
    mono_ns: int | None = None
    record: dict[str, Any] | None = None


class Header(_Typed, _Header, kind="header"):
    """The first line of a file: the process and its clock domain (``clock``)."""

    __slots__ = ()


class _Invoke(NamedTuple):
    time: int
    conn: str
    request: int
    op: str  # set / get / observe / stop / join
    participant: str | None = None
    session: str | None = None
    key: str | None = None
    value: str | None = None  # what a set writes (None: a delete)
    observer: str | None = None  # the observerId a stop ends
    domain: int = 0
    record: dict[str, Any] | None = None


class Invoke(_Typed, _Invoke, kind="invoke"):
    """A request sent: its call time."""

    __slots__ = ()


class _Done(NamedTuple):
    time: int
    conn: str
    request: int
    result: str  # ok / value / observing / joined / error / unknown
    participant: str | None = None
    session: str | None = None
    op: str | None = None
    key: str | None = None
    value: str | None = None  # what a get returned
    code: str | None = None  # the error code
    observer: str | None = None  # the observerId an observe was given
    max_keys: int | None = None  # the limit a join was told
    domain: int = 0
    record: dict[str, Any] | None = None


class Done(_Typed, _Done, kind="done"):
    """A request's reply (or ``unknown``: none came): its return time."""

    __slots__ = ()


class _Update(NamedTuple):
    time: int
    conn: str
    observer: str
    key: str
    value: str | None
    participant: str | None = None  # who received it
    session: str | None = None
    by: str | None = None  # who wrote it
    domain: int = 0
    record: dict[str, Any] | None = None


class Update(_Typed, _Update, kind="update"):
    """An update an observer received."""

    __slots__ = ()


class _Closed(NamedTuple):
    time: int
    conn: str
    participant: str | None = None
    session: str | None = None
    by_client: bool | None = None  # None: not recorded, read as the server's close
    #: The client failed the connection over a violation and read nothing after it.
    after_violation: bool | None = None
    domain: int = 0
    record: dict[str, Any] | None = None


class Closed(_Typed, _Closed, kind="closed"):
    """A connection's end."""

    __slots__ = ()


class _Violation(NamedTuple):
    time: int
    conn: str
    reason: str
    participant: str | None = None
    session: str | None = None
    kind: str | None = None  # a named kind (update_after_stop ...), else a plain violation
    requirement: str | None = None
    frame: str | None = None  # quoted, FRAME_QUOTE_CHARS at most
    frame_chars: int | None = None  # the frame's length, when it was cut
    observer: str | None = None  # of an offending update frame
    key: str | None = None
    domain: int = 0
    record: dict[str, Any] | None = None


class Violation(_Typed, _Violation, kind="violation"):
    """A frame a participant's client saw break the spec (it failed the connection)."""

    __slots__ = ()


Event = Invoke | Done | Update | Closed | Violation
#: ``ev`` -> the kind of event it decodes to (the header apart: it starts a domain).
EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls for cls in (Invoke, Done, Update, Closed, Violation)
}
#: Each kind by a number (its index), for the checker's compact encodings of events.
EVENT_KINDS: tuple[type[Event], ...] = tuple(EVENT_TYPES.values())
KIND_NUMBERS: dict[type[Event], int] = {kind: number for number, kind in enumerate(EVENT_KINDS)}
