"""The history recorder: a client listener that writes every event of its clients."""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from harness.client.core import ClientCore, ClientListener
from harness.errors import HarnessUsageError, ProtocolViolation
from harness.history.events import FRAME_QUOTE_CHARS, header_event, update_fields
from harness.history.reader import History, read_history
from harness.protocol import (
    Error,
    Get,
    Joined,
    Observe,
    Observing,
    PendingRequest,
    Reply,
    Set,
    StopObserving,
    Update,
    Value,
)
from harness.protocol.auth import redact_tokens
from harness.protocol.messages import KIND_OF

#: The history ``op`` of each request class (harness.protocol.kinds).
_OPS = {cls: kind.history for cls, kind in KIND_OF.items()}


class HistoryRecorder(ClientListener):
    """A client listener that records a history; give one to any number of clients.

    With ``path`` the history streams to that file (appended to, header first);
    without, events stay in memory (:meth:`events`), for tests and the
    conformance suite.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        process: str | None = None,
        flush_events: int = 2000,
        flush_interval: float = 0.5,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.header = header_event(process)
        self._file: BinaryIO | None = None
        self._memory: list[dict[str, Any]] | None = None
        self._buffer: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._flush_events = flush_events
        self._closed = threading.Event()
        #: Connections that joined and have not closed: conn -> (participant, session).
        self._live: dict[str, tuple[str | None, str | None]] = {}
        #: When recording was stopped early (:meth:`stop_recording`), in monotonic ns.
        self.stopped_ns: int | None = None
        if self.path is None:
            self._memory = [self.header]
            return
        try:
            # Unbuffered: each flush is one write of whole lines.
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise HarnessUsageError(f"cannot write history to {self.path}: {exc}") from None
        self._emit(self.header)
        self.flush()
        self._flusher = threading.Thread(
            target=self._flush_periodically,
            args=(flush_interval,),
            daemon=True,
            name="history-flush",
        )
        self._flusher.start()

    # --- listener hooks (the hot path) -------------------------------------------------

    def request_sent(self, client: ClientCore, pending: PendingRequest) -> None:
        request = pending.request
        if request is None:
            return  # hand-made malformed frames change nothing the checker models
        event: dict[str, Any] = {
            "ev": "invoke",
            "t": pending.sent_ns,
            "conn": client.connection_id,
            "p": client.participant.id if client.participant else None,
            "s": client.session,
            "req": pending.id,
            "op": _OPS[type(request)],
        }
        if isinstance(request, Set):
            event["key"] = request.key
            event["value"] = request.value
        elif isinstance(request, Get | Observe):
            event["key"] = request.key
        elif isinstance(request, StopObserving):
            event["obs"] = request.observer_id
        else:
            event["s"] = request.session
            event["p"] = request.participant.id
        self._emit(event)

    def request_done(
        self, client: ClientCore, pending: PendingRequest, reply: Reply | None, done_ns: int
    ) -> None:
        request = pending.request
        if request is None:
            return
        event: dict[str, Any] = {
            "ev": "done",
            "t": done_ns,
            "conn": client.connection_id,
            "p": client.participant.id if client.participant else None,
            "s": client.session,
            "req": pending.id,
            "op": _OPS[type(request)],
        }
        if isinstance(request, Set | Get | Observe):
            event["key"] = request.key
        if reply is None:
            event["result"] = "unknown"
        elif isinstance(reply, Error):
            event["result"] = "error"
            event["code"] = str(reply.code)
        elif isinstance(reply, Value):
            event["result"] = "value"
            event["value"] = reply.value
        elif isinstance(reply, Observing):
            event["result"] = "observing"
            event["obs"] = reply.observer_id
        elif isinstance(reply, Joined):
            event["result"] = "joined"
            if reply.limits is not None:  # a store adapter may promise no limits
                event["maxKeys"] = reply.limits.max_keys
            self._live[client.connection_id] = (reply.participant.id, reply.session)
        else:
            event["result"] = "ok"
        self._emit(event)

    def update_received(self, client: ClientCore, update: Update, received_ns: int) -> None:
        self._emit(
            {
                "ev": "update",
                "t": received_ns,
                "conn": client.connection_id,
                "p": client.participant.id if client.participant else None,
                "s": client.session,
                "obs": update.observer_id,
                "key": update.key,
                "value": update.value,
                "by": update.updated_by.id,
            }
        )

    def connection_closed(self, client: ClientCore, closed_ns: int, by_client: bool) -> None:
        self._live.pop(client.connection_id, None)
        event: dict[str, Any] = {
            "ev": "closed",
            "t": closed_ns,
            "conn": client.connection_id,
            "p": client.participant.id if client.participant else None,
            "s": client.session,
            "by_client": by_client,
        }
        if client.violation is not None:
            # Failed by the client after a violation: it read nothing more, so frames the
            # server had already sent never arrived, and the checker must not expect them.
            event["violation"] = True
        self._emit(event)

    def violation_seen(
        self, client: ClientCore, violation: ProtocolViolation, seen_ns: int
    ) -> None:
        event: dict[str, Any] = {
            "ev": "violation",
            "t": seen_ns,
            "conn": client.connection_id,
            "p": client.participant.id if client.participant else None,
            "s": client.session,
            "kind": violation.kind,
            "requirement": violation.requirement,
            "reason": violation.reason,
        }
        frame = violation.frame
        if frame is not None:
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "backslashreplace")
            # Join events record no token; a frame quoted here is the server's, which may
            # echo one, so its signature goes (histories are shared like reports).
            text = redact_tokens(text)
            event["frame"] = text[:FRAME_QUOTE_CHARS]
            if len(text) > FRAME_QUOTE_CHARS:
                event["frame_chars"] = len(text)
            event.update(update_fields(text))
        # Recorded even after stop_recording (a violation stands on its own, and the
        # verdict must never be valid when a participant saw one). Not flushed here: in
        # gevent mode this runs in the hub, which must not wait for the flusher's lock.
        if self._memory is not None:
            self._memory.append(event)
        else:
            self._buffer.append(orjson.dumps(event) + b"\n")

    # --- output ----------------------------------------------------------------------

    def stop_recording(self, at_ns: int) -> None:
        """End the history at ``at_ns``, for runs longer than the window worth checking.

        Every connection still open is recorded as closed by its client at that
        instant, which is what the checker needs to stay sound: its observers are
        owed nothing after it. Call it only when no request is in flight and the
        last updates have arrived (the swarm pauses its participants for this).
        """
        for connection, (participant, session) in list(self._live.items()):
            self._emit(
                {"ev": "closed", "t": at_ns, "conn": connection, "p": participant,
                 "s": session, "by_client": True}
            )  # fmt: skip
        self._live.clear()
        self.stopped_ns = at_ns
        self.flush()

    def _emit(self, event: dict[str, Any]) -> None:
        if self.stopped_ns is not None:
            return
        if self._memory is not None:
            self._memory.append(event)
            return
        # A deque needs no lock to append from any thread: this is the swarm's hot path.
        buffer = self._buffer
        buffer.append(orjson.dumps(event) + b"\n")
        if len(buffer) >= self._flush_events:
            self.flush()

    @property
    def backlog(self) -> int:
        """Lines waiting to be written: grows when the disk cannot keep up."""
        return len(self._buffer)

    def flush(self) -> None:
        with self._lock:
            buffer = self._buffer
            lines = [buffer.popleft() for _ in range(len(buffer))]
            if lines and self._file is not None and not self._file.closed:
                self._file.write(b"".join(lines))

    def _flush_periodically(self, interval: float) -> None:
        while not self._closed.wait(interval):
            self.flush()

    def close(self) -> None:
        self._closed.set()
        self.flush()
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> HistoryRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def events(self) -> list[dict[str, Any]]:
        """The events recorded in memory (header first); only without a path."""
        if self._memory is None:
            raise HarnessUsageError("this recorder writes to a file; use read_history(path)")
        return self._memory

    def history(self) -> History:
        if self._memory is not None:
            return History.from_events(self._memory)
        self.flush()
        assert self.path is not None
        return read_history([self.path])
