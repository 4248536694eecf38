"""The reference server's state, without I/O: sessions, their keys and observers.

Everything here runs to completion without awaiting, so each write is applied
and fanned out atomically within the event loop: that is what gives every
observer of a key the same order (R4.3) and makes the key limit exact under
concurrency (R3.6).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.protocol import ErrorCode, Limits


@dataclass(eq=False, slots=True)
class Subscription:
    """One active observer as the server holds it: where its updates go (R4.1)."""

    observer_id: str
    key: str
    deliver: Callable[[bytes], None]


@dataclass(eq=False)
class Session:
    name: str
    values: dict[str, str] = field(default_factory=dict)
    #: key -> observerId -> observer
    observers: dict[str, dict[str, Subscription]] = field(default_factory=dict)
    connections: int = 0

    def is_empty(self) -> bool:
        return not self.values and not self.observers and self.connections == 0


class Store:
    """All sessions of one server."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.sessions: dict[str, Session] = {}
        self._observer_numbers = itertools.count(1)

    def enter(self, name: str) -> Session:
        session = self.sessions.get(name)
        if session is None:
            session = self.sessions[name] = Session(name)
        session.connections += 1
        return session

    def leave(self, session: Session, observers: list[Subscription]) -> None:
        """A connection closed: end its observers but keep its writes (R4.6)."""
        for observer in observers:
            self.remove_observer(session, observer)
        session.connections -= 1
        if session.is_empty():
            del self.sessions[session.name]

    def write(self, session: Session, key: str, value: str | None) -> ErrorCode | None:
        """Apply one write (R3.1, R3.2), or return why it is refused (R3.6)."""
        values = session.values
        if value is None:
            values.pop(key, None)
        elif key in values or len(values) < self.limits.max_keys:
            values[key] = value
        else:
            return ErrorCode.KEY_LIMIT_EXCEEDED
        return None

    def add_observer(
        self, session: Session, key: str, deliver: Callable[[bytes], None]
    ) -> Subscription:
        observer = Subscription(f"o{next(self._observer_numbers)}", key, deliver)
        session.observers.setdefault(key, {})[observer.observer_id] = observer
        return observer

    def remove_observer(self, session: Session, observer: Subscription) -> None:
        by_id = session.observers.get(observer.key)
        if by_id is not None:
            by_id.pop(observer.observer_id, None)
            if not by_id:
                del session.observers[observer.key]

    def observers_of(self, session: Session, key: str) -> list[Subscription]:
        return list(session.observers.get(key, {}).values())
