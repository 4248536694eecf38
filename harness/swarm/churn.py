"""Churn (--churn): participants leave and rejoin at a rate, at random times."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Protocol

import gevent


class Churnable(Protocol):
    """What churn needs of a participant: whether it is joined, and a way to ask it to leave."""

    @property
    def joined(self) -> bool: ...

    def request_leave(self) -> None:
        """Leave and rejoin before the next task (the participant does it itself)."""


class Churn:
    """Asks one joined participant at a time to leave, ``rate`` times a second in all."""

    def __init__(
        self, rate: float, participants: Iterable[Churnable], stopping: Callable[[], bool]
    ) -> None:
        self.rate = rate
        self.participants = participants
        self.stopping = stopping
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        rng = random.Random()
        while not self.stopping():
            gevent.sleep(rng.expovariate(self.rate))
            joined = [p for p in self.participants if p.joined]
            if joined and not self.stopping():
                rng.choice(joined).request_leave()

    def stop(self) -> None:
        self._greenlet.kill(block=False)
