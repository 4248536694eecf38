"""The checker's model interface, porcupine's (model.go), and the store's model.

A model says how to split a history into independent parts and what one part
may do::

    partition(history) -> parts            # porcupine's Partition: here by (session, key)
    init() -> state                        # the state before any operation
    step(state, input, output) -> (ok, state)   # may input give output in state?
    describe_operation(input, output) -> str
    describe_state(state) -> str

:data:`REGISTER` is the model of a realtime store: each (session, key) is a
register, a set replaces its value and a get must return it. The
linearizability search (:mod:`harness.checker.search`) steps on it, and
:func:`harness.checker.check` partitions through it. Its descriptions are the
checker's one describer (:mod:`harness.checker.describe`).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol, TypeVar

from harness.checker import describe
from harness.checker.operations import Input, Partitioned, partition
from harness.history.reader import History

S = TypeVar("S", bound=Hashable)


class Model(Protocol[S]):
    """What the checks need of a model; states must be hashable (the search caches them)."""

    def partition(self, history: History) -> Partitioned: ...

    def init(self) -> S: ...

    def step(self, state: S, input: Any, output: Any) -> tuple[bool, S]: ...

    def describe_operation(self, input: Any, output: Any) -> str: ...

    def describe_state(self, state: S) -> str: ...


class Register:
    """A key of a realtime store: it holds one value (None when empty or deleted)."""

    def partition(self, history: History) -> Partitioned:
        """By (session, key): operations on different keys never constrain each other,
        porcupine's documented speed-up for key-value stores. Observers go with
        their key; violations and joins' limits, which span keys, stand apart."""
        return partition(history)

    def init(self) -> str | None:
        return None

    def step(self, state: str | None, input: Input, output: Any) -> tuple[bool, str | None]:
        kind, written = input
        if kind == "set":
            return True, written  # whatever the reply: an unknown set may have applied
        return output == state, state

    def describe_operation(self, input: Input, output: Any) -> str:
        return describe.operation_io(input, output)

    def describe_state(self, state: str | None) -> str:
        return describe.state(state)


REGISTER: Model[Any] = Register()
