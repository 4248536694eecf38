"""From recorded events to operations, partitioned by (session, key) like porcupine's.

Each request's ``invoke`` and ``done`` become one operation with a call and a
return time; a request with no ``done`` (the history ends first) or an
``unknown`` one returns at infinity: it may have taken effect at any later
instant, or never. Updates are grouped by observer, in the order received.
Frames a participant saw break the spec (``violation`` events) are kept apart:
each is an anomaly of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.history.reader import History

INF = 1 << 62
OK, FAILED, UNKNOWN = "ok", "failed", "unknown"
#: What an update names a write by: (value, writer).
Token = tuple[str | None, str | None]


@dataclass(slots=True, eq=False)
class Write:
    participant: str | None
    value: str | None
    inv: int
    comp: int  # INF when the outcome is unknown
    status: str
    domain: int
    gave_up: int  # when the client stopped waiting (== comp unless unknown)
    events: list[dict[str, Any]]
    code: str | None = None

    @property
    def token(self) -> Token:
        return self.value, self.participant


@dataclass(slots=True, eq=False)
class Read:
    participant: str | None
    value: str | None
    inv: int
    comp: int
    domain: int
    events: list[dict[str, Any]]


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
    updates: list[dict[str, Any]] = field(default_factory=list)
    start_event: dict[str, Any] | None = None

    def name(self) -> str:
        """How anomalies name it: with its connection, since observerIds are scoped per
        connection (R2.5) and one participant's two devices may both hold ``o1``."""
        return f"{self.observer_id} of {self.participant} on connection {self.conn}"


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
    #: session -> keys refused with KEY_LIMIT_EXCEEDED (part of their KeyHistory too)
    domains: int
    requests: int
    updates: int
    #: ``violation`` events: frames the spec forbids, as the clients recorded them.
    violations: list[dict[str, Any]] = field(default_factory=list)


def partition(history: History) -> Partitioned:
    keys: dict[tuple[str, str], KeyHistory] = {}
    max_keys: dict[str, int] = {}
    invokes: dict[tuple[str, int], dict[str, Any]] = {}
    observers: dict[tuple[str, str], Observer] = {}
    closed: dict[str, dict[str, Any]] = {}
    violations: list[dict[str, Any]] = []
    requests = updates = 0

    def key_history(session: str, key: str) -> KeyHistory:
        found = keys.get((session, key))
        if found is None:
            found = keys[(session, key)] = KeyHistory(session, key)
        return found

    for event in history.events:
        kind = event["ev"]
        if kind == "update":
            updates += 1
            observer = observers.get((event["conn"], event["obs"]))
            if observer is None:
                # The observe's reply was not recorded (it timed out): order checks only.
                observer = Observer(event["conn"], event.get("p"), event["obs"], event["d"])
                observers[(event["conn"], event["obs"])] = observer
                key_history(event.get("s") or "", event["key"]).observers.append(observer)
            observer.updates.append(event)
        elif kind == "invoke":
            requests += 1
            invokes[(event["conn"], event["req"])] = event
            if event["op"] == "stop":
                observer = observers.get((event["conn"], event.get("obs")))
                if observer is not None and not observer.end_known:
                    observer.end, observer.end_known = event["t"], True
        elif kind == "done":
            call = invokes.pop((event["conn"], event["req"]), None)
            if call is not None:
                _complete(call, event, key_history, observers, max_keys)
        elif kind == "closed":
            closed[event["conn"]] = event
        elif kind == "violation":
            violations.append(event)
    for call in invokes.values():  # never answered within the history
        _complete(call, None, key_history, observers, max_keys)
    for found in keys.values():
        sent: dict[Token, tuple[int, int]] | None = None
        for observer in found.observers:
            close = closed.get(observer.conn)
            if observer.end_known:
                continue
            # A client that failed its connection over a violation (R1.x, R4.5...) read
            # nothing after it: updates already sent were lost to it, not by the server.
            # So, as for a server's close, it is owed only what its own updates prove.
            if close is not None and close.get("by_client") and not close.get("violation"):
                observer.end, observer.end_known = close["t"], True
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
        found = sent.get((update["value"], update.get("by")))
        if found is not None and found[1] == observer.domain:
            return min(update["t"], found[0])
    return observer.start if observer.start is not None else INF


def _complete(
    call: dict[str, Any],
    done: dict[str, Any] | None,
    key_history: Any,
    observers: dict[tuple[str, str], Observer],
    max_keys: dict[str, int],
) -> None:
    op = call["op"]
    result = done["result"] if done is not None else "unknown"
    session = (done.get("s") if done is not None else None) or call.get("s") or ""
    events = [call] if done is None else [call, done]
    if op == "set":
        gave_up = done["t"] if done is not None else INF
        status = OK if result == "ok" else UNKNOWN if result == "unknown" else FAILED
        write = Write(
            call.get("p"),
            call.get("value"),
            call["t"],
            INF if status == UNKNOWN else gave_up,
            status,
            call["d"],
            gave_up,
            events,
            done.get("code") if done is not None else None,
        )
        key_history(session, call.get("key") or "").writes.append(write)
    elif op == "get" and result == "value":
        read = Read(call.get("p"), done.get("value"), call["t"], done["t"], call["d"], events)
        key_history(session, call.get("key") or "").reads.append(read)
    elif op == "observe" and result == "observing":
        observer = Observer(call["conn"], call.get("p"), done["obs"], call["d"], done["t"])
        observer.start_event = done
        observers[(call["conn"], done["obs"])] = observer
        key_history(session, call.get("key") or "").observers.append(observer)
    elif op == "join" and result == "joined" and isinstance(done.get("maxKeys"), int):
        session = call.get("s") or ""
        max_keys[session] = min(max_keys.get(session, done["maxKeys"]), done["maxKeys"])
