"""Run the fault proxy in front of a server until interrupted.

    store-harness proxy --upstream ws://127.0.0.1:8765/ --port 9000 --latency 20ms --jitter 5ms

Participants connect to the printed URL instead of the server's. Each fault is an
option here and an item of ``--fault`` (the swarm's grammar, see harness/faults/spec.py):
``--partition 30%@5s+3s`` is ``--fault partition=30%@5s+3s``. Times of partitions count
from the proxy's start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from harness.commands import port_number
from harness.exits import EXIT_OK
from harness.faults.spec import FAULT_NAMES

_HELP = {
    "latency": "added each way, e.g. 20ms",
    "latency-up": "added client to server only",
    "latency-down": "added server to client only",
    "jitter": "up to this much more per chunk, e.g. 5ms",
    "bandwidth": "bytes/s per connection each way, e.g. 64KiB",
    "drop": "probability per second that a connection is cut, e.g. 0.05",
    "lifetime": "cut each connection after MIN..MAX, e.g. 2s..10s",
    "partition": "FRACTION@START+DURATION[:drop|:stall], e.g. 30%@5s+3s (repeatable)",
    "seed": "seed of the random choices",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", required=True, help="the server, e.g. ws://127.0.0.1:8765/")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument(
        "--port", type=port_number, default=0, help="port; 0 picks a free one (default)"
    )
    parser.add_argument(
        "--fault", action="append", default=[], help="fault spec, as the swarm's --fault"
    )
    for name in FAULT_NAMES:
        parser.add_argument(
            f"--{name}",
            dest=f"fault_{name.replace('-', '_')}",
            action="append" if name == "partition" else "store",
            metavar="VALUE",
            help=_HELP[name],
        )


def fault_specs(args: argparse.Namespace) -> list[str]:
    """The --fault values plus one item per fault option."""
    specs = list(args.fault)
    for name in FAULT_NAMES:
        value = getattr(args, f"fault_{name.replace('-', '_')}")
        for item in value if isinstance(value, list) else [value] if value else []:
            specs.append(f"{name}={item}")
    return specs


def run(args: argparse.Namespace) -> int:
    from harness.faults.proxy import FaultProxy
    from harness.faults.spec import parse_faults

    plan = parse_faults(fault_specs(args))
    proxy = FaultProxy(args.upstream, plan, host=args.host, port=args.port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with proxy:
            print(
                f"store-harness fault proxy listening on {proxy.url} "
                f"-> {args.upstream} ({plan.describe()})",
                flush=True,
            )
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    print(f"store-harness fault proxy stopped: {proxy.stats.to_json()}", flush=True)
    return EXIT_OK
