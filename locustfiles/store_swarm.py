"""A store-harness swarm: every simulated user is one participant of a meeting.

    locust -f locustfiles/store_swarm.py --host ws://127.0.0.1:8765/ --scenario moderation

Options (also in the web UI): --scenario mixed|moderation|notes|key-limit, --session,
--sessions, --key-space, --value-size, --observers, --writer-fraction, --weight-*,
--think-time MIN,MAX, --write-rate (open model), --run-dir, --slo.

To write your own scenario, subclass StoreParticipant in your own locustfile:

    from harness.swarm.locustfile import StoreParticipant
    from locust import task

    class Moderator(StoreParticipant):
        @task
        def block_chat(self):
            self.write("BLOCK_CHAT", self.new_value())
"""

from harness.swarm.locustfile import MeetingParticipant, StoreParticipant

__all__ = ["MeetingParticipant", "StoreParticipant"]
