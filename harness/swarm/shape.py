"""The load shape of ``store-harness run``: locust's LoadTestShape following the plan's stages.

locust ticks the shape once a second (on the master in a distributed run) and
sets the participant count and spawn rate it returns; None ends the run through
locust's own path, so the end-of-run exchange, the verdict and the reports follow
as after any run. The stages travel in the ``--plan`` option (harness.plan.stages).
"""

from __future__ import annotations

from typing import Any

import orjson
from locust import LoadTestShape

from harness.plan.stages import StagePlan


def plan_of(options: Any) -> StagePlan | None:
    """The stages in locust's parsed options; None without ``--plan``."""
    text = getattr(options, "plan", None)
    return StagePlan.from_json(orjson.loads(text)["stages"]) if text else None


class StagedShape(LoadTestShape):
    """Participants as the plan's stages say; without ``--plan``, locust's own options."""

    # Without --plan (locust's web UI), --users and --spawn-rate drive the run.
    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._plan: StagePlan | None = None
        self._read = False
        #: Set once tick returned None: the run is ending on its own.
        self.finished = False
        self.stop_requested = False

    def plan(self) -> StagePlan | None:
        if not self._read and self.runner is not None:
            self._plan = plan_of(self.runner.environment.parsed_options)
            self._read = True
        return self._plan

    def tick(self) -> tuple[int, float] | None:
        if self.stop_requested:
            self.finished = True
            return None
        plan = self.plan()
        if plan is None:
            options = self.runner.environment.parsed_options if self.runner else None
            return (
                getattr(options, "num_users", None) or 1,
                getattr(options, "spawn_rate", None) or 1,
            )
        step = plan.tick(self.get_run_time())
        self.finished = step is None
        return step

    def request_stop(self) -> bool:
        """End the run now (a threshold with abort_on_fail breached); False if it is ending.

        Headless, the shape's greenlet is killed: locust's main greenlet, waiting on it,
        then quits as when a shape ends, and no ramp the shape is blocked in (a master
        dispatching a spawn) delays the stop. Otherwise (the web UI) the next tick ends it.
        """
        if self.finished or self.runner is None:
            return False
        self.stop_requested = True
        options = self.runner.environment.parsed_options
        greenlet = self.runner.shape_greenlet
        if getattr(options, "headless", False) and greenlet is not None and not greenlet.dead:
            self.finished = True
            greenlet.kill(block=False)
        return True
