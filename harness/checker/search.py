"""Check 4 when no observer recovered the order: a porcupine-style linearizability search.

The model is porcupine's (:mod:`harness.checker.model`): ``init()`` and
``step(state, input, output) -> (legal, new state)``, by default
:data:`~harness.checker.model.REGISTER` (a key holds a value; a set replaces
it; a get must return it). The search is Wing & Gong's with Lowe's
memoisation, as porcupine runs it: walk the calls in time order, linearize
any call whose return has not yet been passed, backtrack when a return is
reached with its call still pending, and never revisit a (linearized set,
state) pair. It is exponential in the worst case, so it runs under a step
budget and answers ``None`` (unknown) when that runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checker.model import REGISTER, Model
from harness.checker.operations import Operation as Op

DEFAULT_BUDGET = 200_000


@dataclass
class SearchResult:
    linearizable: bool | None  # None: the budget ran out
    #: When not linearizable: the operation no linearization could place, and the
    #: operations of the longest linearization found, in order.
    stuck: Op | None = None
    longest: Sequence[Op] = ()
    #: The model's state after the longest linearization.
    state: Any = None


def linearizable(
    ops: Sequence[Op], model: Model[Any] = REGISTER, budget: int = DEFAULT_BUDGET
) -> SearchResult:
    """Whether ``ops`` (each with ``inv``/``comp``, ``input``/``output``) is linearizable
    under ``model``."""
    # Entries: (time, 0 for call / 1 for return, op index). Calls sort before returns at
    # the same instant, so touching windows count as overlapping (the lenient reading).
    entries = sorted(
        [(op.inv, 0, i) for i, op in enumerate(ops)] + [(op.comp, 1, i) for i, op in enumerate(ops)]
    )
    size = len(entries)
    if not size:
        return SearchResult(True)
    # A circular doubly linked list over the entries; index ``size`` is the head sentinel.
    nxt = [*range(1, size + 1), 0]
    prv = [size, *range(size)]
    return_of = [0] * len(ops)
    for position, (_, kind, index) in enumerate(entries):
        if kind:
            return_of[index] = position

    def lift(position: int) -> None:
        for p in (position, return_of[entries[position][2]]):
            nxt[prv[p]], prv[nxt[p]] = nxt[p], prv[p]

    def unlift(position: int) -> None:
        for p in (return_of[entries[position][2]], position):
            nxt[prv[p]] = p
            prv[nxt[p]] = p

    state: Any = model.init()
    done = 0  # bitmask of linearized ops
    cache: set[tuple[int, Any]] = {(0, state)}
    stack: list[tuple[int, Any]] = []
    longest: list[int] = []
    longest_state: Any = state
    stuck: int | None = None
    position = nxt[size]
    steps = 0
    while nxt[size] != size:
        steps += 1
        if steps > budget:
            return SearchResult(None)
        _, kind, index = entries[position]
        if kind == 0:
            op = ops[index]
            legal, new_state = model.step(state, op.input, op.output)
            marked = done | (1 << index)
            if legal and (marked, new_state) not in cache:
                cache.add((marked, new_state))
                stack.append((position, state))
                state, done = new_state, marked
                lift(position)
                position = nxt[size]
                continue
            position = nxt[position]
            continue
        # A return whose call is not linearized: undo the last choice.
        if len(stack) >= len(longest):
            longest = [entries[p][2] for p, _ in stack]
            longest_state, stuck = state, index
        if not stack:
            found = ops[stuck] if stuck is not None else None
            return SearchResult(False, found, [ops[i] for i in longest], longest_state)
        position, state = stack.pop()
        done &= ~(1 << entries[position][2])
        unlift(position)
        position = nxt[position]
    return SearchResult(True)
