"""Deliberately broken variants of the reference server, one realistic bug each.

The conformance suite is worth what it catches: the project's tests run it
against every class in :data:`FAULTY_SERVERS` and assert each one is rejected.
Each bug is one a real implementation could plausibly ship; the docstring says
which requirement it breaks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

from harness.protocol import (
    Error,
    ErrorCode,
    Get,
    Join,
    Joined,
    Limits,
    Observe,
    Observing,
    Ok,
    Participant,
    Set,
    StopObserving,
    UpdateFrames,
    Value,
    encode,
    interpret_request,
)
from harness.server.aio import Connection, ReferenceServer
from harness.server.store import Session, Subscription

# --- ordering and freshness (also used by the consistency checker's live tests) ---


class ReorderingServer(ReferenceServer):
    """Every second observer of a key gets each pair of updates swapped (R4.3).

    Models a fan-out that batches deliveries per observer and flushes a batch
    in the wrong order. A lone update is flushed after a short wait so nothing
    is lost, only reordered.
    """

    flush_after = 0.02

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._held: dict[str, bytes] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        frames = UpdateFrames(key, value, writer)
        for observer in self.store.observers_of(session, key):
            frame = frames.for_observer(observer.observer_id)
            if int(observer.observer_id.lstrip("o") or 0) % 2:
                observer.deliver(frame)
                continue
            held = self._held.pop(observer.observer_id, None)
            if held is None:
                self._held[observer.observer_id] = frame
                loop = asyncio.get_running_loop()
                self._timers[observer.observer_id] = loop.call_later(
                    self.flush_after, self._flush, observer
                )
            else:
                self._timers.pop(observer.observer_id).cancel()
                observer.deliver(frame)
                observer.deliver(held)

    def _flush(self, observer: Subscription) -> None:
        self._timers.pop(observer.observer_id, None)
        held = self._held.pop(observer.observer_id, None)
        if held is not None:
            observer.deliver(held)


class StaleReadServer(ReferenceServer):
    """Reads come from a replica that applies writes 50 ms late (R3.8, R3.9).

    A get soon after a write returns the key's older value; a get later on is
    correct again, so the staleness is intermittent as with real replica lag.
    """

    replica_lag = 0.05

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._replica: dict[tuple[str, str], str] = {}

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None
        super().handle_set(conn, request)
        where = (conn.session.name, request.key)
        # Whatever the write did (even nothing, when refused), the replica catches up late.
        current = conn.session.values.get(request.key)
        asyncio.get_running_loop().call_later(self.replica_lag, self._replicate, where, current)

    def _replicate(self, where: tuple[str, str], value: str | None) -> None:
        if value is None:
            self._replica.pop(where, None)
        else:
            self._replica[where] = value

    def handle_get(self, conn: Connection, request: Get) -> None:
        assert conn.session is not None
        value = self._replica.get((conn.session.name, request.key))
        self.reply(conn, Value(request.id, request.key, value))


class DuplicateNotificationServer(ReferenceServer):
    """Each update is delivered twice, as a retrying fan-out without dedup would (R4.1)."""

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        super().notify(session, key, value, writer)
        super().notify(session, key, value, writer)


class DroppedNotificationServer(ReferenceServer):
    """Every tenth update of a key is lost on the way to its observers (R4.1, R4.3)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._writes = 0

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        self._writes += 1
        if self._writes % 10:
            super().notify(session, key, value, writer)


class LateDroppedUpdatesServer(ReferenceServer):
    """Correct for ``fault_after_s`` seconds, then one update in a hundred is lost on the
    way to its observers (R4.1), as a leak that starts late in a soak would: a history
    window of the run's first seconds sees nothing wrong. ``after(seconds)`` makes one
    with another delay."""

    fault_after_s = 40.0
    #: One write in this many reaches no observer once the fault began.
    drop_every = 100

    @classmethod
    def after(cls, seconds: float, *, drop_every: int = 100) -> type[LateDroppedUpdatesServer]:
        return type(cls.__name__, (cls,), {"fault_after_s": seconds, "drop_every": drop_every})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._started = time.monotonic()
        self._late_writes = 0

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        if time.monotonic() - self._started >= self.fault_after_s:
            self._late_writes += 1
            if self._late_writes % self.drop_every == 0:
                return
        super().notify(session, key, value, writer)


class HeadOfLineBlockingServer(ReferenceServer):
    """One global writer loop sends every frame in turn, so a slow reader stalls all (R4.7)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._queue: deque[tuple[Connection, bytes]] = deque()
        self._wakeup: asyncio.Event | None = None

    def send(self, conn: Connection, frame: bytes) -> None:
        if conn.closing:
            return
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
            self._spawn(self._send_all())
        self._queue.append((conn, frame))
        self._wakeup.set()

    async def _send_all(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            conn, frame = self._queue.popleft()
            try:
                await conn.websocket.send(frame, text=True)
            except Exception:
                continue


# --- notifications -----------------------------------------------------------------


class WriterNotNotifiedServer(ReferenceServer):
    """The writer's own observers are skipped, assuming it knows what it wrote (R4.1)."""

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None and conn.participant is not None
        refused = self.store.write(conn.session, request.key, request.value)
        if refused is not None:
            self.reply(conn, Error(request.id, refused, "key limit"))
            return
        self.reply(conn, Ok(request.id))
        frames = UpdateFrames(request.key, request.value, conn.participant)
        for observer in self.store.observers_of(conn.session, request.key):
            if observer.observer_id not in conn.observers:
                observer.deliver(frames.for_observer(observer.observer_id))


class StopIgnoredServer(ReferenceServer):
    """stopObserving answers ok but leaves the observer subscribed (R4.5)."""

    def handle_stop_observing(self, conn: Connection, request: StopObserving) -> None:
        if request.observer_id not in conn.observers:
            super().handle_stop_observing(conn, request)
            return
        self.reply(conn, Ok(request.id))


class UnknownObserverOkServer(ReferenceServer):
    """stopObserving is 'idempotent': unknown observer ids are answered ok (R4.5)."""

    def handle_stop_observing(self, conn: Connection, request: StopObserving) -> None:
        observer = conn.observers.pop(request.observer_id, None)
        if observer is not None:
            assert conn.session is not None
            self.store.remove_observer(conn.session, observer)
        self.reply(conn, Ok(request.id))


class InitialValueServer(ReferenceServer):
    """observe pushes the key's current value at once, Firebase-style (R4.1)."""

    def handle_observe(self, conn: Connection, request: Observe) -> None:
        super().handle_observe(conn, request)
        assert conn.session is not None and conn.participant is not None
        value = conn.session.values.get(request.key)
        if value is not None:
            observer_id = list(conn.observers)[-1]
            frame = UpdateFrames(request.key, value, conn.participant).for_observer(observer_id)
            self.send(conn, frame)


class WrongUpdatedByServer(ReferenceServer):
    """updatedBy names the observer's own participant instead of the writer (R4.2)."""

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        for conn in list(self.connections):
            for observer in conn.observers.values():
                if conn.session is session and observer.key == key:
                    assert conn.participant is not None
                    frames = UpdateFrames(key, value, conn.participant)
                    observer.deliver(frames.for_observer(observer.observer_id))


class PrefixMatchServer(ReferenceServer):
    """Observers are matched by key prefix, so observing 'poll' also hears 'poll-2' (R4.1)."""

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        for observed in [k for k in session.observers if key.startswith(k)]:
            frames = UpdateFrames(observed, value, writer)
            for observer in self.store.observers_of(session, observed):
                observer.deliver(frames.for_observer(observer.observer_id))


class SilentDeleteOfAbsentServer(ReferenceServer):
    """Deleting a key that is absent is treated as a no-op and notifies no one (R3.2)."""

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None
        if request.value is None and request.key not in conn.session.values:
            self.reply(conn, Ok(request.id))
            return
        super().handle_set(conn, request)


class FailedSetNotifiesServer(ReferenceServer):
    """A set refused for the key limit still notifies the key's observers (R5.3)."""

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None and conn.participant is not None
        super().handle_set(conn, request)
        if request.value is not None and request.key not in conn.session.values:
            self.notify(conn.session, request.key, request.value, conn.participant)


class OneObserverPerKeyServer(ReferenceServer):
    """Observers are keyed by (connection, key): a second observe of a key replaces the first's
    deliveries, so only the newest observer of a key on a connection hears updates (R4.4)."""

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        frames = UpdateFrames(key, value, writer)
        for conn in list(self.connections):
            if conn.session is not session:
                continue
            mine = [o for o in conn.observers.values() if o.key == key]
            if mine:
                mine[-1].deliver(frames.for_observer(mine[-1].observer_id))


# --- the store -------------------------------------------------------------------


class OffByOneKeyLimitServer(ReferenceServer):
    """The key limit check uses <= and admits a 101st key (R3.6)."""

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None and conn.participant is not None
        values = conn.session.values
        new_key = request.value is not None and request.key not in values
        if new_key and len(values) <= self.limits.max_keys:
            values[request.key] = request.value
            self.reply(conn, Ok(request.id))
            self.notify(conn.session, request.key, request.value, conn.participant)
            return
        super().handle_set(conn, request)


class CharacterSizeServer(ReferenceServer):
    """The value limit counts characters, not UTF-8 bytes (R3.5)."""

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, str):
            request = interpret_request(
                frame, joined=conn.session is not None, limits=Limits(10**6, 10**9)
            )
            if isinstance(request, Set) and request.value is not None:
                if len(request.value) > self.limits.max_value_bytes:
                    self.reply(conn, Error(request.id, ErrorCode.VALUE_TOO_LARGE, "too long"))
                    return
                self.handle_set(conn, request)
                return
        super().handle_frame(conn, frame)


class EmptyStringDeletesServer(ReferenceServer):
    """A falsy value deletes the key, so "" is treated as null (R3.2)."""

    def handle_set(self, conn: Connection, request: Set) -> None:
        super().handle_set(conn, Set(request.id, request.key, request.value or None))


class SharedStoreServer(ReferenceServer):
    """Every session maps onto one store: the session name is echoed but ignored (R3.7)."""

    def handle_join(self, conn: Connection, join: Join) -> None:
        conn.participant = join.participant
        conn.session = self.store.enter("shared")
        self.reply(conn, Joined(join.id, join.session, join.participant, self.limits))


class GlobalKeyLimitServer(ReferenceServer):
    """The key limit counts keys of all sessions together (R3.7)."""

    def handle_set(self, conn: Connection, request: Set) -> None:
        assert conn.session is not None
        total = sum(len(s.values) for s in self.store.sessions.values())
        if (
            request.value is not None
            and request.key not in conn.session.values
            and total >= self.limits.max_keys
        ):
            self.reply(conn, Error(request.id, ErrorCode.KEY_LIMIT_EXCEEDED, "too many keys"))
            return
        super().handle_set(conn, request)


class KeyLimitRaceServer(ReferenceServer):
    """The key limit is checked, then the write lands after an await (a store round trip),
    so concurrent creators all pass the check (R3.6). Each connection's requests still
    run in order."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._tails: dict[Connection, asyncio.Future[None]] = {}

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        previous = self._tails.get(conn)
        task = asyncio.get_running_loop().create_task(self._in_turn(previous, conn, frame))
        self._tails[conn] = task

    async def _in_turn(
        self, previous: asyncio.Future[None] | None, conn: Connection, frame: str | bytes
    ) -> None:
        if previous is not None:
            await previous
        request = (
            interpret_request(frame, joined=conn.session is not None, limits=self.limits)
            if isinstance(frame, str)
            else None
        )
        if isinstance(request, Set) and request.value is not None and conn.session is not None:
            session, participant = conn.session, conn.participant
            assert participant is not None
            fits = request.key in session.values or len(session.values) < self.limits.max_keys
            await asyncio.sleep(0.002)
            if not fits:
                self.reply(conn, Error(request.id, ErrorCode.KEY_LIMIT_EXCEEDED, "too many"))
                return
            session.values[request.key] = request.value
            self.reply(conn, Ok(request.id))
            self.notify(session, request.key, request.value, participant)
            return
        super().handle_frame(conn, frame)

    def disconnect(self, conn: Connection) -> None:
        self._tails.pop(conn, None)
        super().disconnect(conn)


class LostWritesOnDisconnectServer(ReferenceServer):
    """A participant's keys are cleaned up when its connection closes, like presence (R4.6)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._written: dict[Connection, set[str]] = {}

    def handle_set(self, conn: Connection, request: Set) -> None:
        super().handle_set(conn, request)
        self._written.setdefault(conn, set()).add(request.key)

    def disconnect(self, conn: Connection) -> None:
        if conn.session is not None:
            for key in self._written.pop(conn, set()):
                conn.session.values.pop(key, None)
        super().disconnect(conn)


# --- requests and framing ----------------------------------------------------------


class DropOnBadJsonServer(ReferenceServer):
    """A frame that is not JSON closes the connection instead of earning BAD_REQUEST (R5.4)."""

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        try:
            json.loads(frame)
        except ValueError:
            self.close(conn, 1007, "invalid JSON")
            return
        super().handle_frame(conn, frame)


class BinaryFrameClosesServer(ReferenceServer):
    """A binary frame closes the connection instead of earning BAD_REQUEST (R5.4)."""

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self.close(conn, 1003, "text frames only")
            return
        super().handle_frame(conn, frame)


class OutOfOrderRepliesServer(ReferenceServer):
    """A write's ok is sent once the write is flushed, which happens after the connection's
    next request is handled: pipelined replies come back out of request order (R1.3)."""

    flush_after = 0.005

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._held: dict[Connection, bytes] = {}

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        held = self._held.pop(conn, None)
        super().handle_frame(conn, frame)
        if held is not None:
            self.send(conn, held)

    def handle_set(self, conn: Connection, request: Set) -> None:
        self._writing = True
        try:
            super().handle_set(conn, request)
        finally:
            self._writing = False

    def reply(self, conn: Connection, message: object) -> None:
        if getattr(self, "_writing", False) and isinstance(message, Ok):
            self._held[conn] = encode(message)
            asyncio.get_running_loop().call_later(self.flush_after, self._flush, conn)
            return
        super().reply(conn, message)

    def _flush(self, conn: Connection) -> None:
        held = self._held.pop(conn, None)
        if held is not None:
            self.send(conn, held)


class NullErrorIdServer(ReferenceServer):
    """Error replies never carry the request's id (R5.1)."""

    def reply(self, conn: Connection, message: object) -> None:
        if isinstance(message, Error):
            message = Error(None, message.code, message.message)
        super().reply(conn, message)


class StrictFieldsServer(ReferenceServer):
    """Requests with fields the server does not know are refused with BAD_REQUEST (R1.5)."""

    known = frozenset({"type", "id", "session", "participant", "token", "key", "value"})

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, str):
            try:
                data = json.loads(frame)
            except ValueError:
                data = None
            if isinstance(data, dict) and set(data) - self.known - {"observerId"}:
                request_id = data.get("id") if isinstance(data.get("id"), int) else None
                self.reply(conn, Error(request_id, ErrorCode.BAD_REQUEST, "unknown field"))
                return
        super().handle_frame(conn, frame)


class NumericObserverIdServer(ReferenceServer):
    """observerId is sent as a number, as a JavaScript counter would be (R1.4)."""

    def reply(self, conn: Connection, message: object) -> None:
        if isinstance(message, Observing):
            number = int(message.observer_id.lstrip("o"))
            frame = encode(message).replace(
                f'"observerId":"{message.observer_id}"'.encode(), f'"observerId":{number}'.encode()
            )
            self.send(conn, frame)
            return
        super().reply(conn, message)


class LenientJsonServer(ReferenceServer):
    """Parses with a lenient JSON reader that accepts true as an id (R5.4), and lone
    surrogates too, which is allowed but not recommended (R1.7)."""

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, str):
            try:
                data = json.loads(frame)
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("id") is True:
                data["id"] = 1
                frame = json.dumps(data)
            elif isinstance(data, dict) and _has_lone_surrogate(data):
                # Stored as a replacement character rather than refused.
                frame = json.dumps(data).replace("\\ud800", "\\ufffd")
        super().handle_frame(conn, frame)


def _has_lone_surrogate(data: dict[str, Any]) -> bool:
    return any(isinstance(v, str) and "\ud800" in v for v in data.values())


class WrongPrecedenceServer(ReferenceServer):
    """Checks the value before the key, so a set with both wrong reports INVALID_VALUE (R5.2)."""

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, str) and conn.session is not None:
            try:
                data = json.loads(frame)
            except ValueError:
                data = None
            if (
                isinstance(data, dict)
                and data.get("type") == "set"
                and isinstance(data.get("id"), int)
                and "value" in data
                and data["value"] is not None
                and not isinstance(data["value"], str)
            ):
                self.reply(conn, Error(data["id"], ErrorCode.INVALID_VALUE, "bad value"))
                return
        super().handle_frame(conn, frame)


class SecondJoinAcceptedServer(ReferenceServer):
    """A second join on a connection switches its session instead of earning BAD_REQUEST
    (R2.2)."""

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, str) and conn.session is not None:
            request = interpret_request(frame, joined=False, limits=self.limits)
            if isinstance(request, Join):
                self.disconnect(conn)
                self.handle_join(conn, request)
                return
        super().handle_frame(conn, frame)


class AccessCheckKeepsConnectionServer(ReferenceServer):
    """Tokens are optional, but a present one must be 'letmein'; a refused join is answered
    UNAUTHORIZED and the connection is left open (R2.4)."""

    def authorize(self, join: Join) -> str | None:
        return None if join.token in (None, "letmein") else "bad token"

    def handle_join(self, conn: Connection, join: Join) -> None:
        refusal = self.authorize(join)
        if refusal is not None:
            self.reply(conn, Error(join.id, ErrorCode.UNAUTHORIZED, refusal))
            return
        super().handle_join(conn, join)


class TruncatedUpdatesServer(ReferenceServer):
    """The fan-out path copies values into a 512-byte buffer, so updates of longer values
    arrive cut short while gets return them whole (R4.2)."""

    def notify(self, session: Session, key: str, value: str | None, writer: Participant) -> None:
        if value is not None and len(value.encode()) > 512:
            value = value.encode()[:512].decode("utf-8", "ignore")
        super().notify(session, key, value, writer)


class CaseInsensitiveKeysServer(ReferenceServer):
    """Keys are folded to lower case on the way in, as a case-insensitive index would (R3.10)."""

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, str) and conn.session is not None:
            request = interpret_request(frame, joined=True, limits=self.limits)
            if isinstance(request, Set | Get | Observe):
                data = json.loads(frame)
                data["key"] = data["key"].lower()
                frame = json.dumps(data)
        super().handle_frame(conn, frame)


class UpdateBeforeObservingServer(ReferenceServer):
    """An observer is subscribed at once, but its observing reply waits for a 20 ms
    subscription round trip while updates go out on their own path, so an update can
    overtake the reply that announces its observer (R4.8). Later replies wait behind it,
    so replies stay in order (R1.3)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: dict[Connection, list[object]] = {}

    def reply(self, conn: Connection, message: object) -> None:
        held = self._held.get(conn)
        if held is not None:
            held.append(message)
        elif isinstance(message, Observing):
            self._held[conn] = [message]
            asyncio.get_running_loop().call_later(0.02, self._release, conn)
        else:
            super().reply(conn, message)

    def _release(self, conn: Connection) -> None:
        for message in self._held.pop(conn, []):
            super().reply(conn, message)


FAULTY_SERVERS: dict[str, type[ReferenceServer]] = {
    "reordering": ReorderingServer,
    "stale-read": StaleReadServer,
    "duplicate-notification": DuplicateNotificationServer,
    "dropped-notification": DroppedNotificationServer,
    "head-of-line-blocking": HeadOfLineBlockingServer,
    "writer-not-notified": WriterNotNotifiedServer,
    "stop-ignored": StopIgnoredServer,
    "unknown-observer-ok": UnknownObserverOkServer,
    "initial-value": InitialValueServer,
    "wrong-updated-by": WrongUpdatedByServer,
    "prefix-match": PrefixMatchServer,
    "silent-delete-of-absent": SilentDeleteOfAbsentServer,
    "failed-set-notifies": FailedSetNotifiesServer,
    "one-observer-per-key": OneObserverPerKeyServer,
    "key-limit-off-by-one": OffByOneKeyLimitServer,
    "size-in-characters": CharacterSizeServer,
    "empty-string-deletes": EmptyStringDeletesServer,
    "shared-store": SharedStoreServer,
    "global-key-limit": GlobalKeyLimitServer,
    "key-limit-race": KeyLimitRaceServer,
    "lost-writes-on-disconnect": LostWritesOnDisconnectServer,
    "drop-on-bad-json": DropOnBadJsonServer,
    "binary-frame-closes": BinaryFrameClosesServer,
    "replies-out-of-order": OutOfOrderRepliesServer,
    "null-error-id": NullErrorIdServer,
    "strict-fields": StrictFieldsServer,
    "numeric-observer-id": NumericObserverIdServer,
    "lenient-json": LenientJsonServer,
    "wrong-precedence": WrongPrecedenceServer,
    "second-join-accepted": SecondJoinAcceptedServer,
    "unauthorized-keeps-connection": AccessCheckKeepsConnectionServer,
    "truncated-updates": TruncatedUpdatesServer,
    "case-insensitive-keys": CaseInsensitiveKeysServer,
    "update-before-observing": UpdateBeforeObservingServer,
}

#: Faults that break only a SHOULD: the suite flags them non-strict rather than failed.
SHOULD_ONLY_FAULTS = frozenset({"head-of-line-blocking"})
