"""The swarm's locustfile: ``locust -f`` this module (or locustfiles/store_swarm.py).

    locust -f locustfiles/store_swarm.py --host ws://127.0.0.1:8765/ --scenario moderation

locust is imported first so gevent patches the standard library before any
socket exists.
"""

import locust  # noqa: F401  (must come first: gevent monkey-patching)

# hooks first: its test_start writes the run.json that staging's adds the stages to.
from harness.swarm import (
    hooks,  # noqa: F401  (registers the swarm's event hooks)
    staging,  # noqa: F401  (stages and live thresholds)
)
from harness.swarm.user import StoreParticipant


class MeetingParticipant(StoreParticipant):
    """A participant doing what the chosen ``--scenario`` says."""


__all__ = ["MeetingParticipant", "StoreParticipant"]
