"""What every adapter's tests need: a listener that records, an observer that keeps what
it saw, a bounded wait, one scripted session to compare with the native client, and
the same under gevent's monkey-patching; a short swarm that must end valid."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.adapters import AdapterClient, StoreAdapter, sync_client
from harness.client.core import ClientCore, ClientListener
from harness.protocol import Participant, PendingRequest, Reply, Update

WAIT = 10.0


def session() -> str:
    """A session of its own per test: a store fixture is shared by the whole run."""
    return f"s-{uuid.uuid4().hex[:8]}"


@contextmanager
def joined_participants(
    store_url: str, adapter: type[StoreAdapter]
) -> Iterator[Callable[..., AdapterClient]]:
    """``join(participant_id)``: a client of one fresh session; all are closed at the end."""
    name = session()
    opened: list[AdapterClient] = []

    def join(participant_id: str, url: str = store_url, **changes: object) -> AdapterClient:
        client = AdapterClient(url, adapter, **changes).open()  # type: ignore[arg-type]
        opened.append(client)
        client.join(name, participant_id, participant_id.title())
        return client

    try:
        yield join
    finally:
        for client in opened:
            client.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Recorder(ClientListener):
    """Every listener event, reduced to what every kind of client must agree on."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def request_sent(self, client: ClientCore, pending: PendingRequest) -> None:
        self.events.append(("sent", type(pending.request).__name__))

    def request_done(
        self, client: ClientCore, pending: PendingRequest, reply: Reply | None, done_ns: int
    ) -> None:
        assert done_ns >= pending.sent_ns
        self.events.append(("done", type(pending.request).__name__, type(reply).__name__))

    def update_received(self, client: ClientCore, update: Update, received_ns: int) -> None:
        self.events.append(("update", update.key, update.value, update.updated_by.id))

    def connection_closed(self, client: ClientCore, closed_ns: int, by_client: bool) -> None:
        self.events.append(("closed", by_client))


class Deliveries:
    """An observer callback that keeps (value, updatedBy id) in arrival order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str]] = []

    def __call__(self, value: str | None, updated_by: Participant) -> None:
        self.seen.append((value, updated_by.id))


def scripted_session(url: str, session_name: str) -> list[tuple[object, ...]]:
    """One fixed script through ``sync_client(url)``: what its listener saw."""
    recorder = Recorder()
    with sync_client(url, listeners=(recorder,)).open() as watcher, sync_client(url) as writer:
        watcher.join(session_name, "bob", "Bob")
        writer.join(session_name, "alice", "Alice")
        observer = watcher.observe("k")
        writer.set("k", "one")
        writer.set("k", None)
        wait_until(lambda: sum(e[0] == "update" for e in recorder.events) == 2, "updates")
        assert watcher.get("k") is None
        watcher.stop_observing(observer)
    return recorder.events


GEVENT_SCRIPT = """
from gevent import monkey; monkey.patch_all()
import json, sys, gevent
from harness.adapters import AdapterClient, resolve
target, url, name = sys.argv[1:]
adapter = resolve(url, target)
seen = []
alice = AdapterClient(url, adapter).open(); alice.join(name, "alice")
bob = AdapterClient(url, adapter).open(); bob.join(name, "bob")
observer = bob.observe("k", lambda value, by: seen.append([value, by.id]))
for value in ("one", None, "two"):
    alice.set("k", value)
with gevent.Timeout(10):
    while len(seen) < 3:
        gevent.sleep(0.01)
bob.stop_observing(observer)
alice.set("k", "after stop")
gevent.sleep(0.2)
print(json.dumps({"seen": seen, "get": bob.get("k"), "violation": str(bob.violation)}))
alice.close(); bob.close()
"""


def run_under_gevent(target: str, url: str, session_name: str) -> dict[str, object]:
    """Write, observe and stop through adapter ``module:Class`` in a monkey-patched process."""
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT, target, url, session_name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def valid_swarm(url: str, run_dir: Path, *extra: str) -> dict[str, Any]:
    """A 10-participant, 15-second swarm against ``url`` that must end valid; its run.json.

    ``extra`` options come last, so they may also override these (``--run-time``).
    """
    done = subprocess.run(
        [
            sys.executable, "-m", "harness", "swarm", "--url", url,
            "--users", "10", "--run-time", "15s", "--out", str(run_dir), *extra,
        ],
        capture_output=True,
        text=True,
        timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "verdict: VALID" in done.stdout
    info: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
    assert info["complete"] is True and info["verdict"] == "valid"
    return info
