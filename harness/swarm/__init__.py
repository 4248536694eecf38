"""Locust swarms: simulated meeting participants, their recording, and the end-of-run verdict.

Import :mod:`harness.swarm.user` only from a locustfile (it needs gevent's patching).
"""
