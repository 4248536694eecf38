"""An adapter as a participant client: the same API and listener events as the native one.

:class:`AdapterClient` is a :class:`~harness.client.core.ClientCore` whose two
layers under the core (frames and bytes) are a :class:`~harness.adapters.StoreAdapter`.
It builds the store protocol's request messages for every call, so each listener
sees ``request_sent``, then ``request_done`` with a reply (``Ok``, ``Value``,
``Observing``, ``Joined``, an ``Error`` with its code) or None (unknown), and
``update_received`` with an ``Update`` for every delivery: exactly what the
native client reports. Recording, latency, locust rows and the checker above
never learn which store they judge.

It also holds the adapter to the promises the protocol makes above the wire:
a delivery that arrives while ``observe`` is still running waits until the
observer is announced (R4.8), and one for an observer already stopped is a
violation (R4.5), counted and quoted like the native client's.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from time import monotonic_ns
from typing import Any

from harness.adapters.base import AdapterOptions, StoreAdapter
from harness.client.core import ClientCore, ClientOptions, UpdateCallback
from harness.errors import (
    ConnectionLost,
    HarnessError,
    HarnessUsageError,
    OutcomeUnknown,
    ProtocolViolation,
    StoreError,
)
from harness.protocol import (
    Error,
    ErrorCode,
    Joined,
    Limits,
    Observing,
    Ok,
    Participant,
    PendingRequest,
    Reply,
    Request,
    Update,
    Value,
)
from harness.protocol.connection import Observation


class _Observer:
    """One observer's delivery state: held until announced, closed once stopped."""

    __slots__ = ("handle", "held", "initial_pending", "key", "live", "stopped")

    def __init__(self, key: str, skip_initial: bool) -> None:
        self.key = key
        self.handle: object = None
        self.live = False
        self.stopped = False
        self.initial_pending = skip_initial
        self.held: list[tuple[str | None, Participant, int]] = []


class AdapterClient(ClientCore):
    """One participant connection through ``adapter_class``; blocking, like the sync client."""

    def __init__(
        self,
        url: str,
        adapter_class: type[StoreAdapter],
        options: ClientOptions | None = None,
        adapter_options: AdapterOptions | None = None,
        **changes: Any,
    ) -> None:
        super().__init__(url, options, **changes)
        self.adapter_class = adapter_class
        self.capabilities = adapter_class.capabilities
        self.adapter = adapter_class(
            url,
            adapter_options
            or AdapterOptions(
                request_timeout=self.options.request_timeout,
                connect_timeout=self.options.connect_timeout,
            ),
        )
        self._lock = threading.Lock()
        self._calls = threading.Lock()
        self._observer_numbers = itertools.count(1)
        self._states: dict[str, _Observer] = {}
        self._opened = False

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> AdapterClient:
        try:
            self.adapter.connect(self._lost)
        except HarnessUsageError:
            raise  # the URL or options are wrong: no connection would help
        except HarnessError as exc:
            raise ConnectionLost(f"could not connect to {self.url}: {exc}") from None
        except Exception as exc:
            raise ConnectionLost(f"could not connect to {self.url}: {self._blame(exc)}") from None
        self._opened = True
        return self

    def close(self) -> None:
        if self._ended:
            return
        self.begin_close()  # from here on, the adapter's on_lost is this close's echo
        self._close_adapter()
        with self._lock:
            if not self._ended:
                self._end(ConnectionLost("the client closed the connection"))

    def __enter__(self) -> AdapterClient:
        return self if self._opened else self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _close_adapter(self) -> None:
        # close must not raise; a faulty one must not hide the end.
        with contextlib.suppress(Exception):
            self.adapter.close()

    def _lost(self, reason: str) -> None:
        """The adapter's connection ended on its own: fail what waits, end observers."""
        with self._lock:
            if self._ended or self.closing_ns is not None:
                return
            self.close_reason = reason
            self._end(ConnectionLost(f"connection to the store lost: {reason}"))

    def _blame(self, exc: BaseException) -> str:
        return f"adapter {self.adapter_class.__name__} raised {type(exc).__name__}: {exc}"

    # --- the store API (the sync client's) ----------------------------------------

    def join(
        self, session: str, participant_id: str, name: str = "", *, token: str | None = None
    ) -> Joined:
        request = self._join_request(session, participant_id, name, token)
        pending, _ = self._call(
            request, lambda: self.adapter.join(session, participant_id, name, token)
        )
        capabilities = self.capabilities
        limits = (
            Limits(capabilities.key_limit, capabilities.value_limit)
            if capabilities.key_limit is not None and capabilities.value_limit is not None
            else None
        )
        # The store has no joined reply of its own: the bridge's says what it promised.
        joined = Joined(request.id, session, Participant(participant_id, name), limits)
        self.participant, self.session, self.limits = joined.participant, session, limits
        self._done(pending, joined)
        return joined

    def set(self, key: str, value: str | None) -> None:
        request = self._set_request(key, value)
        pending, _ = self._call(request, lambda: self.adapter.set(key, value))
        if self.capabilities.acknowledged_writes:
            self._done(pending, Ok(request.id))
        else:
            self._unknown(pending, monotonic_ns())  # applied or not, nobody said

    def delete(self, key: str) -> None:
        self.set(key, None)

    def get(self, key: str) -> str | None:
        request = self._get_request(key)
        pending, value = self._call(request, lambda: self.adapter.get(key))
        self._done(pending, Value(request.id, key, value))
        return value

    def observe(self, key: str, callback: UpdateCallback | None = None) -> str:
        """Observe ``key``; returns the observerId. ``callback(value, updated_by)``."""
        request = self._observe_request(key)
        observer_id = f"obs-{next(self._observer_numbers)}"
        state = _Observer(key, self.capabilities.initial_value_on_observe)
        self._states[observer_id] = state

        def deliver(value: str | None, updated_by: Participant | str) -> None:
            self._delivered(observer_id, state, value, updated_by)

        try:
            pending, state.handle = self._call(request, lambda: self.adapter.observe(key, deliver))
        except BaseException:
            self._states.pop(observer_id, None)
            raise
        with self._lock:
            self.connection.observers[observer_id] = Observation(key, callback)
            self._done(pending, Observing(request.id, observer_id))
            state.live = True
            held, state.held = state.held, []
            for value, updated_by, received_ns in held:
                self._deliver(Update(observer_id, key, value, updated_by), received_ns)
        return observer_id

    def stop_observing(self, observer_id: str) -> None:
        request = self._stop_request(observer_id)
        state = self._states.get(observer_id)
        if state is None or state.stopped:
            pending, _ = self._call(request, lambda: None)
            error = Error(request.id, ErrorCode.UNKNOWN_OBSERVER, "no such observer here")
            self._done(pending, error)
            raise StoreError(error.code, error.message, request.id)
        pending, _ = self._call(request, lambda: self.adapter.stop(state.handle))
        with self._lock:
            state.stopped = True
            self.connection.observers.pop(observer_id, None)
            self._done(pending, Ok(request.id))

    # --- requests -----------------------------------------------------------------

    def _call(self, request: Request, invoke: Callable[[], Any]) -> tuple[PendingRequest, Any]:
        """Run one adapter call as ``request``: listeners see it sent, and failed if it fails.

        On success the caller reports the reply (``_done``) once it has built it.
        """
        pending = PendingRequest(request.id, request, monotonic_ns())
        pending.deadline_ns = pending.sent_ns + int(self.options.request_timeout * 1e9)
        for listener in self.listeners:
            listener.request_sent(self, pending)
        if not self._opened or self._ended or self.violation is not None:
            self._unknown(pending, monotonic_ns())
            if not self._opened:
                raise HarnessUsageError("the client is not connected; open() it first")
            raise self._end_error()
        try:
            # One call at a time reaches the adapter (base.py's contract), also when an
            # asyncio caller overlaps requests on one connection.
            with self._calls:
                return pending, invoke()
        except StoreError as exc:
            self._done(pending, Error(request.id, exc.code, exc.message))
            raise StoreError(exc.code, exc.message, request.id) from None
        except OutcomeUnknown as exc:
            self._unknown(pending, monotonic_ns())
            if isinstance(exc, ConnectionLost):
                self._lost(str(exc))
            raise
        except HarnessError:
            self._unknown(pending, monotonic_ns())
            raise
        except Exception as exc:
            # A fault in the adapter, not a refusal by the store: the outcome is unknown
            # and the connection cannot be trusted any more.
            self._unknown(pending, monotonic_ns())
            reason = self._blame(exc)
            self._close_adapter()
            self._lost(reason)
            raise ConnectionLost(reason) from None

    def _done(self, pending: PendingRequest, reply: Reply) -> None:
        now = monotonic_ns()
        for listener in self.listeners:
            listener.request_done(self, pending, reply, now)
        pending.done = True

    # --- deliveries -------------------------------------------------------------------

    def _delivered(
        self,
        observer_id: str,
        state: _Observer,
        value: str | None,
        writer: Participant | str,
    ) -> None:
        received_ns = monotonic_ns()
        updated_by = writer if isinstance(writer, Participant) else Participant(writer, writer)
        with self._lock:
            if self._ended:
                return  # the connection ended: its observers ended with it (R4.6)
            if state.initial_pending:
                state.initial_pending = False
                return  # the store's current value, not an update (Capabilities)
            if state.stopped:
                self._violated(
                    ProtocolViolation(
                        f"adapter {self.adapter_class.__name__} delivered an update for "
                        f"observer {observer_id} after stop() returned",
                        f"key={state.key!r} value={value!r} updatedBy={updated_by.id!r}",
                        requirement="R4.5",
                        kind="update_after_stop",
                    )
                )
                self._end(self._end_error())
                threading.Thread(target=self._close_adapter, daemon=True).start()
                return
            if not state.live:
                state.held.append((value, updated_by, received_ns))
                return
            self._deliver(Update(observer_id, state.key, value, updated_by), received_ns)


__all__ = ["AdapterClient"]
