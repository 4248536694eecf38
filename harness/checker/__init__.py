"""The consistency checker: does one order of writes per key explain a recorded history?

    from harness.checker import check
    from harness.history.reader import read_history

    verdict = check(read_history(["worker-1.jsonl", "worker-2.jsonl"]))
    print(verdict.to_text())          # or verdict.to_json()
    assert verdict.result in Result   # VALID, INVALID or UNKNOWN (a StrEnum)

The model is porcupine's (:mod:`harness.checker.model`: ``partition``, ``init``,
``step``, ``describe_operation``, ``describe_state``); the store's is
:data:`REGISTER`, which partitions the history by (session, key). Every anomaly
text names operations, updates and observers through one describer
(:mod:`harness.checker.describe`). Per (session, key) it checks (docs/protocol.md):

1. order: no duplicate or unknown updates; all observers follow one order (R4.2, R4.3);
2. completeness: acknowledged writes reach every observer active across them,
   refused writes appear nowhere (R4.1, R5.3);
3. convergence: gets after the last write agree on it (R3.9);
4. real time: writes are ordered consistently with real time, and every get is
   linearizable (R3.8), using the observers' order when they cover the key and
   a linearizability search when they do not;
5. limits: the session never holds more than ``maxKeys`` keys, and
   KEY_LIMIT_EXCEEDED is returned only when that many could be held (R3.6).

Besides, every ``violation`` event (a frame a client saw break the spec, which
it then failed the connection on) is an anomaly of its own, named for it
(``update_after_stop`` R4.5, ``update_before_observing`` R4.8...) or else
``protocol_violation`` citing the requirement the client named. Observers of
such a connection are owed only what their own updates prove (as after a
server's close), since the client read nothing after the violation.

A request whose reply never came is ``unknown`` (it may or may not have taken
effect), never failed; an observer is owed updates only while it was surely
active (from the observe's reply to the stopObserving or the client's close).
An unknown write that no observer placed in the order may have taken effect at
any instant after it was sent, or never; only observers that were surely active
and never received it rule instants out (:mod:`harness.checker.unordered`).
"""

from harness.checker.core import check
from harness.checker.model import REGISTER, Model, Register
from harness.checker.search import linearizable
from harness.checker.verdict import KINDS, Anomaly, Result, Verdict

__all__ = [
    "KINDS",
    "REGISTER",
    "Anomaly",
    "Model",
    "Register",
    "Result",
    "Verdict",
    "check",
    "linearizable",
]
