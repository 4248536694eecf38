"""Fault injection for swarms: a TCP fault proxy, its ``--fault`` grammar, server restarts.

spec.py      the --fault grammar and FaultPlan
proxy.py     FaultProxy: latency, jitter, bandwidth, drops, timed partitions (asyncio)
embedded.py  ProxyThread and ProxyProcess, for callers outside asyncio
restart.py   restarts during a run, and the epochs that keep the checker sound
"""

from harness.faults.proxy import FaultProxy, ProxyStats
from harness.faults.spec import FaultPlan, Partition, parse_faults

__all__ = ["FaultPlan", "FaultProxy", "Partition", "ProxyStats", "parse_faults"]
