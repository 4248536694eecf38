"""From recorded events to operations, partitioned by (session, key) like porcupine's.

Each request's ``invoke`` and ``done`` become one operation with a call and a
return time; a request with no ``done`` (the history ends first) or an
``unknown`` one returns at infinity: it may have taken effect at any later
instant, or never. Updates are grouped by observer, in the order received.
Frames a participant saw break the spec (``violation`` events) are kept apart:
each is an anomaly of its own.

An operation's ``input`` and ``output`` are what porcupine's model steps on:
``("set", value)`` with its status, or ``("get", None)`` with the value read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.history.events import Closed, Done, Event, Invoke, Update, Violation
from harness.history.reader import History
from harness.protocol.kinds import STOP_OBSERVING

INF = 1 << 62
OK, FAILED, UNKNOWN = "ok", "failed", "unknown"
#: What an update names a write by: (value, writer).
Token = tuple[str | None, str | None]
#: What a client asked: ("set", the value written) or ("get", None).
Input = tuple[str, str | None]


@dataclass(slots=True, eq=False)
class Write:
    participant: str | None
    value: str | None
    inv: int
    comp: int  # INF when the outcome is unknown
    status: str
    domain: int
    gave_up: int  # when the client stopped waiting (== comp unless unknown)
    events: list[Event]
    code: str | None = None

    @property
    def token(self) -> Token:
        return self.value, self.participant

    @property
    def input(self) -> Input:
        return "set", self.value

    @property
    def output(self) -> str:
        return self.status


@dataclass(slots=True, eq=False)
class Read:
    participant: str | None
    value: str | None
    inv: int
    comp: int
    domain: int
    events: list[Event]

    @property
    def input(self) -> Input:
        return "get", None

    @property
    def output(self) -> str | None:
        return self.value


Operation = Write | Read


@dataclass(slots=True, eq=False)
class Observer:
    conn: str
    participant: str | None
    observer_id: str
    domain: int
    #: When the observe was acknowledged, or None when that was not recorded.
    start: int | None = None
    #: Until when it was surely active: stopObserving sent, or this side began closing
    #: (``end_known``); else no later than the last write it received was applied.
    end: int = INF
    end_known: bool = False
    #: In the order received: a list as partition builds it, or a segment's columns.
    updates: Sequence[Update] = field(default_factory=list)
    start_event: Done | None = None


@dataclass(slots=True, eq=False)
class KeyHistory:
    session: str
    key: str
    writes: list[Write] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    observers: list[Observer] = field(default_factory=list)


@dataclass
class Partitioned:
    keys: dict[tuple[str, str], KeyHistory]
    #: session -> the smallest maxKeys any join in it was told
    max_keys: dict[str, int]
    domains: int
    requests: int
    updates: int
    #: ``violation`` events: frames the spec forbids, as the clients recorded them.
    violations: list[Violation] = field(default_factory=list)


KeyHistories = Callable[[str, str], KeyHistory]
#: The updates of the observer an event starts, when they are kept apart from the
#: events (a segment's columns: :class:`harness.history.segments.LoadedKey`); None: not.
UpdatesOf = Callable[[Event], Sequence[Update] | None]


def _apart(event: Event) -> None:
    return None


def partition(history: History, updates_of: UpdatesOf = _apart) -> Partitioned:
    keys: dict[tuple[str, str], KeyHistory] = {}
    max_keys: dict[str, int] = {}
    invokes: dict[tuple[str, int], Invoke] = {}
    observers: dict[tuple[str, str], Observer] = {}
    closed: dict[str, Closed] = {}
    violations: list[Violation] = []
    requests = updates = 0

    def key_history(session: str, key: str) -> KeyHistory:
        found = keys.get((session, key))
        if found is None:
            found = keys[(session, key)] = KeyHistory(session, key)
        return found

    for event in history.events:
        kind = type(event)
        if kind is Update:
            updates += 1
            observer = observers.get((event.conn, event.observer))
            if observer is None:
                # The observe's reply was not recorded (it timed out): order checks only.
                observer = Observer(event.conn, event.participant, event.observer, event.domain)
                observers[(event.conn, event.observer)] = observer
                key_history(event.session or "", event.key).observers.append(observer)
                kept_apart = updates_of(event)
                if kept_apart is not None:
                    observer.updates = kept_apart  # this one among them
                    continue
            observer.updates.append(event)  # type: ignore[attr-defined]
        elif kind is Invoke:
            requests += 1
            invokes[(event.conn, event.request)] = event
            if event.op == STOP_OBSERVING.history:
                observer = observers.get((event.conn, event.observer))  # type: ignore[arg-type]
                if observer is not None and not observer.end_known:
                    observer.end, observer.end_known = event.time, True
        elif kind is Done:
            call = invokes.pop((event.conn, event.request), None)
            if call is not None:
                _complete(call, event, key_history, observers, max_keys, updates_of)
        elif kind is Closed:
            closed[event.conn] = event
        else:
            violations.append(event)
    for call in invokes.values():  # never answered within the history
        _complete(call, None, key_history, observers, max_keys, updates_of)
    for found in keys.values():
        sent: dict[Token, tuple[int, int]] | None = None
        for observer in found.observers:
            close = closed.get(observer.conn)
            if observer.end_known:
                continue
            # A client that failed its connection over a violation (R1.x, R4.5...) read
            # nothing after it: updates already sent were lost to it, not by the server.
            # So, as for a server's close, it is owed only what its own updates prove.
            if close is not None and close.by_client and not close.after_violation:
                observer.end, observer.end_known = close.time, True
                continue
            if sent is None:
                sent = _first_sent(found)
            observer.end = _surely_active_until(observer, sent)
    return Partitioned(keys, max_keys, len(history.clocks), requests, updates, violations)


def _first_sent(history: KeyHistory) -> dict[Token, tuple[int, int]]:
    """token -> (when the first live write carrying it was sent, its clock domain, or
    -1 when such writes were sent from different domains)."""
    out: dict[Token, tuple[int, int]] = {}
    for write in history.writes:
        if write.status == FAILED:
            continue
        found = out.get(write.token)
        if found is None:
            out[write.token] = (write.inv, write.domain)
        else:
            domain = found[1] if found[1] == write.domain else -1
            out[write.token] = (min(found[0], write.inv), domain)
    return out


def _surely_active_until(observer: Observer, sent: dict[Token, tuple[int, int]]) -> int:
    """The end of an observer that the server ended, or whose end was not recorded.

    No later update is owed, and not even every update of a write applied before
    its last update arrived: the connection may have dropped with updates in
    flight (R4.6). It was surely active until the last write it received was
    applied, which is no earlier than that write was sent; a write applied
    before then would have reached it first (R4.3).
    """
    for update in reversed(observer.updates):
        found = sent.get((update.value, update.by))
        if found is not None and found[1] == observer.domain:
            return min(update.time, found[0])
    return observer.start if observer.start is not None else INF


def _complete(
    call: Invoke,
    done: Done | None,
    key_history: KeyHistories,
    observers: dict[tuple[str, str], Observer],
    max_keys: dict[str, int],
    updates_of: UpdatesOf,
) -> None:
    op = call.op
    result = done.result if done is not None else "unknown"
    session = (done.session if done is not None else None) or call.session or ""
    events: list[Event] = [call] if done is None else [call, done]
    if op == "set":
        gave_up = done.time if done is not None else INF
        status = OK if result == "ok" else UNKNOWN if result == "unknown" else FAILED
        write = Write(
            call.participant,
            call.value,
            call.time,
            INF if status == UNKNOWN else gave_up,
            status,
            call.domain,
            gave_up,
            events,
            done.code if done is not None else None,
        )
        key_history(session, call.key or "").writes.append(write)
    elif done is None:
        return
    elif op == "get" and result == "value":
        read = Read(call.participant, done.value, call.time, done.time, call.domain, events)
        key_history(session, call.key or "").reads.append(read)
    elif op == "observe" and result == "observing" and done.observer is not None:
        observer = Observer(call.conn, call.participant, done.observer, call.domain, done.time)
        observer.start_event = done
        observer.updates = updates_of(done) or observer.updates
        observers[(call.conn, done.observer)] = observer
        key_history(session, call.key or "").observers.append(observer)
    elif op == "join" and result == "joined" and done.max_keys is not None:
        session = call.session or ""
        max_keys[session] = min(max_keys.get(session, done.max_keys), done.max_keys)
