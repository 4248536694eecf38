"""The request kinds of the store protocol, and every name each one goes by.

One row per request (docs/protocol.md, sections 2 to 4). Every table that spells
a request derives from this one, so the spellings cannot drift:

    wire            history  locust   metric          reply      keyed
    join            join     JOIN     join            joined     no
    set             set      SET      set             ok         yes
    get             get      GET      get             value      yes
    observe         observe  OBSERVE  observe         observing  yes
    stopObserving   stop     STOP     stopObserving   ok         no

``wire`` is the frame's ``type``; ``history`` the ``op`` of history events (on
disk: files recorded before keep reading); ``locust`` the request_type of its
row in locust's stats; ``metric`` the latency metric that thresholds such as
``stopObserving.p99<5ms`` name. The typed request class of each kind is
:data:`harness.protocol.messages.KIND_OF`'s key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestKind:
    wire: str
    history: str
    locust: str
    metric: str
    #: The wire type of the success reply (an ``error`` reply may answer any request).
    reply: str
    #: Whether the request names a key: locust groups a keyed request's stats by key.
    keyed: bool


JOIN = RequestKind("join", "join", "JOIN", "join", "joined", keyed=False)
SET = RequestKind("set", "set", "SET", "set", "ok", keyed=True)
GET = RequestKind("get", "get", "GET", "get", "value", keyed=True)
OBSERVE = RequestKind("observe", "observe", "OBSERVE", "observe", "observing", keyed=True)
STOP_OBSERVING = RequestKind("stopObserving", "stop", "STOP", "stopObserving", "ok", keyed=False)

#: Every kind, in the spec's order (join first): reports list metrics in this order.
KINDS: tuple[RequestKind, ...] = (JOIN, SET, GET, OBSERVE, STOP_OBSERVING)
BY_WIRE: dict[str, RequestKind] = {kind.wire: kind for kind in KINDS}
BY_HISTORY: dict[str, RequestKind] = {kind.history: kind for kind in KINDS}
