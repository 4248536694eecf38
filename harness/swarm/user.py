"""``StoreParticipant``: a locust User that is one meeting participant.

On start it joins its session, reads the keys it cares about and observes some
of them; its tasks set, get, delete and observe keys as the scenario weighs
them. Every request reaches locust's stats through the process's
:class:`~harness.swarm.process.SwarmProcess` listeners, which also record the
history and the latency histograms. Subclass it in your own locustfile; @task
methods of your own replace the scenario's tasks:

    from locust import task
    from harness.swarm.locustfile import StoreParticipant

    class Moderator(StoreParticipant):
        @task
        def block_chat(self):
            self.write("BLOCK_CHAT", self.new_value())  # unique values keep the checker sharp
"""

from __future__ import annotations

import itertools
import random
import time

import gevent
from locust import User

from harness.adapters import AdapterClient, sync_client
from harness.client.sync import StoreClient
from harness.errors import (
    ConnectionLost,
    HarnessError,
    ProtocolViolation,
    RequestTimeout,
    ServerRestarting,
    StoreError,
)
from harness.plan.rates import RampedSchedule, write_schedule
from harness.run.pacing import Schedule
from harness.run.values import make_value
from harness.swarm.process import SwarmProcess

_participant_numbers = itertools.count(1)

#: Reconnect backoff: doubles from the first to the last, in seconds.
BACKOFF_FIRST, BACKOFF_LAST = 0.1, 5.0
#: A paced write this close to its due time sleeps the rest in the task.
PACED_EARLY_S = 0.05


class StoreParticipant(User):
    """One participant on one connection, driven by the swarm's scenario options."""

    abstract = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        # locust gathers a class's tasks when it is defined and warns about a class with
        # none, though this one's are chosen per participant in on_start. So a class
        # with no task of its own gets the scenario's placeholder, and a class with
        # tasks of its own (also one deriving from a scenario-driven class) drops it.
        super().__init_subclass__(**kwargs)
        own = [task for task in cls.tasks if task is not StoreParticipant.scenario_task]
        cls.tasks = own or [StoreParticipant.scenario_task]

    def __init__(self, environment: object) -> None:
        super().__init__(environment)
        self.process = SwarmProcess.for_environment(self.environment)
        self.scenario = self.process.scenario
        number = next(_participant_numbers)
        self.participant_id = f"{self.process.tag}-p{number}"
        sessions = self.process.sessions
        self.session_index = number % len(sessions)
        #: The session joined last; after a server restart, the new epoch's (see faults.restart).
        self.session = sessions[self.session_index]
        self.client: StoreClient | AdapterClient | None = None
        self.keys = self.scenario.all_keys()
        self.writer = random.random() < self.scenario.writer_fraction
        self._seq = itertools.count(1)
        self._backoff = BACKOFF_FIRST
        self._schedule: Schedule | RampedSchedule | None = None
        #: Set by request_leave (the process's churn, --churn): leave and rejoin first.
        self._leave_requested = False

    # --- lifecycle -------------------------------------------------------------------

    def on_start(self) -> None:
        # A subclass with @task methods of its own is a scenario of its own: keep its
        # tasks and wait time. Otherwise the --scenario options drive this participant.
        if type(self).tasks == [StoreParticipant.scenario_task]:
            self._use_scenario_tasks()
        self.process.participants.add(self)
        self.ensure_connected()

    def _use_scenario_tasks(self) -> None:
        scenario = self.scenario
        schedule = write_schedule(
            self.process.config.plan, self.process.write_rate_per_participant, phase=random.random()
        )
        if schedule is not None and self.writer:
            # Open model: writes are due on a schedule (fixed, or ramping with the stages
            # of `store-harness run`) whatever the server does.
            self._schedule = schedule
            self.tasks = [StoreParticipant.paced_write]
            # Wait for the next send in locust's wait, not in the task: a participant
            # that is waiting stops at once when locust lowers the count (leave-at-end).
            self.wait_time = lambda: Schedule.wait_s(schedule.peek())
        else:
            weights = [
                (StoreParticipant.write_random, scenario.weight_set if self.writer else 0),
                (StoreParticipant.read_random, scenario.weight_get),
                (StoreParticipant.delete_random, scenario.weight_delete if self.writer else 0),
                (StoreParticipant.toggle_observer, scenario.weight_observe),
            ]
            self.tasks = [fn for fn, weight in weights for _ in range(weight)] or [
                StoreParticipant.read_random
            ]
            low, high = scenario.think_min, scenario.think_max
            self.wait_time = lambda: random.uniform(low, high)

    def on_stop(self) -> None:
        self.process.participants.discard(self)
        if self.client is not None:
            self.client.close()
            self.client = None

    def ensure_connected(self) -> StoreClient | AdapterClient | None:
        """A joined client, reconnecting with backoff after the server went away.

        None while the run is ending or the server cannot be reached.
        """
        if self.process.stopping or self.process.paused:
            gevent.sleep(0.1)
            return None
        follow: list[str] = []
        if self._leave_requested:
            self._leave_requested = False
            if self.client is not None and not self.client.closed:
                # Churn: leave (our close ends our observers, R4.6) and rejoin at once,
                # following the same keys again.
                follow = [observation.key for observation in self.client.observers.values()]
                self.client.close()
                self.process.report_churned()
                self._backoff = BACKOFF_FIRST
        if self.client is not None and not self.client.closed:
            return self.client
        self.client = None
        if self.process.epoch()[1]:
            return self._back_off()  # a server restart is under way: nothing to join yet
        started = time.perf_counter()
        try:
            access = self.process.config.access
            client = sync_client(
                self.host,
                adapter=self.process.config.adapter,
                listeners=self.process.listeners,
                request_timeout=self.process.request_timeout,
                connect_timeout=self.process.request_timeout,
                **access.client_options(),
            ).open()
            # Read the epoch only now that the connection is up: see harness.faults.restart.
            epoch, restarting = self.process.epoch()
            if restarting:
                client.close()
                raise ServerRestarting("the server is restarting")
            self.session = self.process.session_name(self.session_index, epoch)
            token = access.token_for(self.session, self.participant_id)
            client.join(self.session, self.participant_id, self.participant_id, token=token)
            if not follow:
                follow = random.sample(self.keys, min(self.scenario.observers, len(self.keys)))
            for key in follow:
                client.get(key)  # read the state on join, then follow it
                client.observe(key)
        except HarnessError as exc:
            self.process.report_connect(started, exc)
            return self._back_off()
        self.process.report_connect(started, None)
        self._backoff = BACKOFF_FIRST
        self.client = client
        return client

    # --- churn (harness.swarm.churn.Churnable) ----------------------------------------

    @property
    def joined(self) -> bool:
        """Connected and not already asked to leave."""
        return self.client is not None and not self._leave_requested

    def request_leave(self) -> None:
        """Leave and rejoin before the next task, following the same keys again."""
        self._leave_requested = True

    def _back_off(self) -> None:
        gevent.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, BACKOFF_LAST)

    # --- building blocks for scenarios ---------------------------------------------

    def write(self, key: str, value: str | None) -> None:
        self._call("set", key, value)

    def read(self, key: str) -> str | None:
        return self._call("get", key)

    def new_value(self) -> str:
        return make_value(self.participant_id, next(self._seq), self.scenario.value_size)

    def _call(self, method: str, *args: object) -> object:
        client = self.ensure_connected()
        if client is None:
            return None
        try:
            return getattr(client, method)(*args)
        except StoreError:
            return None  # reported to locust as a failure by the listeners
        except (ConnectionLost, RequestTimeout):
            return None  # reported as an unknown outcome; reconnect on the next task
        except ProtocolViolation:
            # Counted and quoted by swarm.reporting.Reporting.violation (through the client's
            # violation hook) the moment the client saw it, pending request or not; the
            # client failed the connection, so the next task reconnects.
            return None

    # --- tasks -------------------------------------------------------------------

    def scenario_task(self) -> None:
        """The class-level stand-in for the scenario's tasks (see __init_subclass__).

        on_start replaces it with the weighted tasks of --scenario on each instance;
        should locust run it anyway, it runs one of those.
        """
        if type(self).tasks is self.tasks:
            self._use_scenario_tasks()
        random.choice(self.tasks)(self)  # type: ignore[operator]

    def write_random(self) -> None:
        self.write(random.choice(self.keys), self.new_value())

    def read_random(self) -> None:
        self.read(random.choice(self.keys))

    def delete_random(self) -> None:
        self.write(random.choice(self.keys), None)

    def toggle_observer(self) -> None:
        client = self.ensure_connected()
        if client is None:
            return
        # The client's observer table is the one list of what this participant observes.
        observers = list(client.observers)
        if observers and random.random() < 0.5:
            self._call("stop_observing", random.choice(observers))
        else:
            self._call("observe", random.choice(self.keys))

    def paced_write(self) -> None:
        assert self._schedule is not None
        if Schedule.wait_s(self._schedule.peek()) > PACED_EARLY_S:
            return  # not due yet (locust's wait woke early, or the first task): wait again
        due = self._schedule.next_due()
        gevent.sleep(Schedule.wait_s(due))
        client = self.ensure_connected()
        if client is not None:
            self.process.intend(client, due)
            self.write(random.choice(self.keys), self.new_value())
