"""The faults a swarm injects from outside locust: the fault proxy and server restarts.

``store-harness swarm`` enters a :class:`SwarmFaults` around its locust run: it
starts the proxy in front of the server (participants then connect to the
proxy), restarts the server on schedule, and records what it did in run.json.
"""

from __future__ import annotations

import argparse
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from harness.faults.embedded import ProxyThread
    from harness.faults.restart import RestartableServer, Restarter


#: How often the fault clock looks for the run's start in run.json.
RUN_START_POLL_S = 0.05


def run_started_since(run_dir: Path, since: float) -> bool:
    """Whether run.json says a run started in ``run_dir`` at or after wall time ``since``."""
    try:
        started = orjson.loads((run_dir / "run.json").read_bytes()).get("started")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return False
    return isinstance(started, int | float) and started >= since


def run_time_s(text: str) -> float:
    """Seconds in a locust --run-time such as 1h30m, 5m or 30s (a bare number is seconds)."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text)
    assert match is not None  # validated before
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class SwarmFaults:
    """The faults a swarm injects from outside locust: the proxy, and server restarts."""

    def __init__(
        self, args: argparse.Namespace, url: str, run_dir: Path, server: RestartableServer | None
    ) -> None:
        from harness.faults.spec import parse_faults

        self.args = args
        self.upstream = url
        self.url = url
        self.run_dir = run_dir
        self.server = server
        self.plan = parse_faults(args.fault)
        self.proxy: ProxyThread | None = None
        self.restarter: Restarter | None = None
        self._ended = threading.Event()
        self._clock = threading.Thread(
            target=self._start_when_the_run_starts, name="store-harness fault clock", daemon=True
        )

    def __enter__(self) -> SwarmFaults:
        from harness.faults.embedded import ProxyThread
        from harness.faults.epochs import EpochFile
        from harness.faults.restart import Restarter, run_restart_command

        if self.plan.active:
            self.proxy = ProxyThread(self.upstream, self.plan, hold_schedule=True).start()
            self.url = self.proxy.url
            print(f"store-harness: fault proxy at {self.url}: {self.plan.describe()}", flush=True)
        every = self.args.restart_every
        if every:
            if self.server is not None:
                restart = self.server.restart
            else:
                command, timeout = self.args.restart_cmd, self.args.restart_timeout
                log = self.run_dir / "restart.log"

                def restart() -> str:
                    return run_restart_command(command, timeout, log)

            # None starts after the end of the run minus a margin, so that the server
            # is up again for the end-of-run audit.
            until = run_time_s(self.args.run_time) - max(3.0, min(every, 10.0))
            self.restarter = Restarter(
                every, restart, EpochFile(self.run_dir / "epoch.json"), until_s=until
            )
            print(f"store-harness: restarting the server every {every:g}s", flush=True)
        if self.proxy is not None or self.restarter is not None:
            self._clock.start()
        return self

    def _start_when_the_run_starts(self) -> None:
        """Start the timed faults when locust starts the load, not before.

        "partition at 3s" and "a restart every 5s" count from the run's start, the
        clock the live line and the report use. locust takes seconds to come up on a
        loaded machine, and a schedule counted from before would land on the connect
        phase, or before any participant is there.
        """
        launched = time.time()
        while not self._ended.wait(RUN_START_POLL_S):
            if run_started_since(self.run_dir, launched):
                break
        else:
            return
        if self.proxy is not None:
            self.proxy.begin_schedule()
        if self.restarter is not None:
            self.restarter.start()

    def __exit__(self, *exc_info: object) -> None:
        self._ended.set()
        if self._clock.is_alive():
            self._clock.join(5)
        if self.restarter is not None:
            self.restarter.stop()
        if self.proxy is not None:
            self.proxy.stop()

    def kinds(self) -> list[str]:
        plan = self.plan
        present = {
            "latency": bool(plan.latency_up_s or plan.latency_down_s),
            "jitter": bool(plan.jitter_s),
            "bandwidth": bool(plan.bandwidth),
            "drop": bool(plan.drop),
            "lifetime": plan.lifetime_s is not None,
            "partition": bool(plan.partitions),
            "restart": bool(self.args.restart_every),
        }
        return [kind for kind, on in present.items() if on]

    def describe(self) -> dict[str, object]:
        faults: dict[str, object] = {"kinds": self.kinds()}
        if self.plan.active:
            faults["proxy"] = self.plan.to_json()
        if self.args.restart_every:
            faults["restart_every_s"] = self.args.restart_every
            faults["restart_cmd"] = self.args.restart_cmd
        return faults

    def locust_args(self) -> list[str]:
        args = []
        if self.plan.active or self.restarter is not None:
            args += ["--faults-json", orjson.dumps(self.describe()).decode()]
        if self.restarter is not None:
            args += ["--epoch-file", str(self.restarter.epochs.path)]
        return args

    def record(self, run_dir: Path) -> None:
        """Add what the faults did to run.json, once locust has written its part."""
        if self.proxy is None and self.restarter is None:
            return
        from harness.run.directory import write_run_json

        try:
            info = orjson.loads((run_dir / "run.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return  # locust never started the run: nothing ran to record
        faults = info.setdefault("faults", {})
        faults.update({k: v for k, v in self.describe().items() if k != "kinds"})
        faults["kinds"] = sorted({*faults.get("kinds", []), *self.kinds()})
        if self.proxy is not None:
            faults["proxy_stats"] = self.proxy.stats.to_json()
        if self.restarter is not None:
            faults["restarts"] = self.restarter.to_json()
            base = info.get("session")
            if isinstance(base, str):
                from harness.faults.epochs import epoch_session

                # Each epoch is its own session (see harness.faults.restart).
                faults["epoch_sessions"] = [
                    epoch_session(base, n) for n in range(self.restarter.epoch + 1)
                ]
            failed = [r for r in self.restarter.records if not r.ok]
            if failed:
                print(f"store-harness: {len(failed)} restarts failed; see run.json", flush=True)
        write_run_json(run_dir, info)
