"""The locustfile of ``store-harness run``: the swarm's participants, paced by the plan's stages.

    locust -f harness/swarm/staged.py --host ws://127.0.0.1:8765/ --plan "$(...)"

The swarm's own locustfile (harness/swarm/locustfile.py) has no load shape, so
``store-harness swarm`` and ``locust -f locustfiles/store_swarm.py`` keep locust's
--users, --spawn-rate and --run-time; this one adds :class:`StagedShape`, which
locust picks up from the module.
"""

import locust  # noqa: F401  (must come first: gevent monkey-patching)

from harness.swarm.locustfile import MeetingParticipant, StoreParticipant
from harness.swarm.shape import StagedShape

__all__ = ["MeetingParticipant", "StagedShape", "StoreParticipant"]
