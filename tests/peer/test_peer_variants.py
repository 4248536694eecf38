"""The standing false-alarm check (issue 11): the harness's three jobs pass an
independent Node.js server and each of its legal but unusual variants.

Every slow test runs the real `store-harness` command in a subprocess and requires exit
0; a failure quotes the command and the tail of its output, which names the case,
oracle rule or anomaly and the frame. The fast tests prove each variant really does the
unusual thing it is named for, so the slow ones cannot pass by testing the plain server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from peer_server import TOKEN_SECRET, VARIANTS, PeerServer, unavailable
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

StartPeer = Callable[..., PeerServer]

FUZZ_SEEDS = (1, 2, 3, 4, 5)
FUZZ_SECONDS = 10
#: A finding is shrunk for at most this long, so a failing run still ends soon.
FUZZ_SHRINK_SECONDS = 20
#: Generous bounds that only stop a hung command; they judge nothing about speed.
CONFORMANCE_TIMEOUT_S = 300
FUZZ_TIMEOUT_S = FUZZ_SECONDS + FUZZ_SHRINK_SECONDS + 120
SWARM_TIMEOUT_S = 300
TAIL_LINES = 40

variant_names = pytest.mark.parametrize("variant", list(VARIANTS))


def harness_command() -> list[str]:
    """The installed `store-harness` script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("store-harness")
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness"]


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def describe(
    args: list[str], code: int | None, output: str, peer: PeerServer, files: tuple[Path, ...] = ()
) -> str:
    """The failed command, its output's tail, the files that hold its verdict, the peer's log."""
    text = [
        f"`store-harness {' '.join(args)}` exited {code}, expected 0",
        f"--- output (last {TAIL_LINES} lines) ---",
        tail(output),
    ]
    for path in files:
        if path.is_file():
            text += [f"--- {path.name} ---", tail(path.read_text(errors="replace"))]
    return "\n".join([*text, "--- peer server stderr ---", peer.stderr_tail()])


# --- the variants do what they are named for ----------------------------------------


@pytest.fixture
def joined(peer_server: StartPeer) -> Iterator[Callable[..., ClientConnection]]:
    """Connect to a peer variant and join; closes every connection at teardown."""
    peers: dict[tuple[str, ...], PeerServer] = {}
    stack = contextlib.ExitStack()

    def join(flags: tuple[str, ...], session: str = "s", who: str = "alice") -> ClientConnection:
        if flags not in peers:
            peers[flags] = peer_server(flags)
        ws = stack.enter_context(connect(peers[flags].url, open_timeout=10))
        ws.send(json.dumps({"type": "join", "id": 1, "session": session,
                            "participant": {"id": who, "name": who.title()}}))  # fmt: skip
        assert receive(ws)["type"] == "joined"
        return ws

    with stack:
        yield join


def receive(ws: ClientConnection) -> dict[str, Any]:
    frame = ws.recv(timeout=10)
    assert isinstance(frame, str)
    message = json.loads(frame)
    assert isinstance(message, dict)
    return message


def request(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(message))
    return receive(ws)


def test_per_connection_observer_ids_repeat_across_connections(joined: Any) -> None:
    flags = VARIANTS["observer-ids-per-connection"]
    phone, laptop = joined(flags), joined(flags)
    observe = {"type": "observe", "id": 2, "key": "k"}
    assert request(phone, observe)["observerId"] == request(laptop, observe)["observerId"]


def test_default_observer_ids_differ_across_connections(joined: Any) -> None:
    phone, laptop = joined(()), joined(())
    observe = {"type": "observe", "id": 2, "key": "k"}
    assert request(phone, observe)["observerId"] != request(laptop, observe)["observerId"]


def test_extra_fields_on_frames_and_nested_objects(joined: Any) -> None:
    ws = joined(VARIANTS["extra-fields"])
    observing = request(ws, {"type": "observe", "id": 2, "key": "k"})
    assert observing["server"] == "peer"
    ws.send(json.dumps({"type": "set", "id": 3, "key": "k", "value": "v"}))
    frames = [receive(ws), receive(ws)]
    update = next(f for f in frames if f["type"] == "update")
    assert update["server"] == "peer" and update["updatedBy"]["peer"] is True
    error = request(ws, {"type": "get", "id": 4})
    assert error["code"] == "INVALID_KEY" and error["server"] == "peer"


def test_delayed_replies_let_an_update_overtake_its_ok(joined: Any) -> None:
    ws = joined(VARIANTS["delayed-replies"])
    assert request(ws, {"type": "observe", "id": 2, "key": "k"})["type"] == "observing"
    ws.send(json.dumps({"type": "set", "id": 3, "key": "k", "value": "v"}))
    # The update leaves at once and the ok only after the delay (R1.3 binds replies only).
    assert [receive(ws)["type"], receive(ws)["type"]] == ["update", "ok"]


def pipelined(url: str, messages: list[dict[str, Any]], replies: int) -> list[str]:
    """Send ``messages`` in one TCP write, so the server reads them in one go; the types
    of the first ``replies`` frames that come back."""
    parts = urlsplit(url)
    protocol = ClientProtocol(parse_uri(url))
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        protocol.send_request(protocol.connect())
        sock.sendall(b"".join(protocol.data_to_send()))
        while protocol.handshake_exc is None and protocol.state is State.CONNECTING:
            protocol.receive_data(sock.recv(65536))
        assert protocol.state is State.OPEN, protocol.handshake_exc
        for message in messages:
            protocol.send_text(json.dumps(message).encode())
        sock.sendall(b"".join(protocol.data_to_send()))
        types: list[str] = []
        while len(types) < replies:
            data = sock.recv(65536)
            assert data, f"the server closed the connection after {types}"
            protocol.receive_data(data)
            frames = [e for e in protocol.events_received() if isinstance(e, Frame)]
            types += [json.loads(f.data)["type"] for f in frames if f.opcode is Opcode.TEXT]
    return types[:replies]


def test_per_key_queues_defer_updates_behind_later_replies(peer_server: StartPeer) -> None:
    messages = [
        {"type": "join", "id": 1, "session": "s", "participant": {"id": "a", "name": "A"}},
        {"type": "observe", "id": 2, "key": "k"},
        {"type": "set", "id": 3, "key": "k", "value": "v"},
        {"type": "get", "id": 4, "key": "other"},
    ]
    # The plain server fans out as it applies the write; the queued one a turn later.
    plain = peer_server(VARIANTS["default"])
    assert pipelined(plain.url, messages, 5)[2:] == ["ok", "update", "value"]
    queued = peer_server(VARIANTS["per-key-queues"])
    assert pipelined(queued.url, messages, 5)[2:] == ["ok", "value", "update"]


def test_alt_error_texts_differ_from_the_default(joined: Any) -> None:
    bad = {"type": "get", "id": 2}
    default = request(joined(()), bad)
    alt = request(joined(VARIANTS["alt-error-texts"]), bad)
    assert default["code"] == alt["code"] == "INVALID_KEY"
    assert default["message"] != alt["message"]


@pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")
def test_the_peer_exits_0_on_sigterm() -> None:
    with PeerServer() as peer:
        assert peer.running
        assert peer.stop() == 0


# --- the harness's three jobs, against every variant --------------------------------


class Batch:
    """Commands started together and awaited one by one, each by the test that judges it.

    The swarms and conformance runs of all variants share the machine at once instead
    of taking turns: each is bounded by its own work, not by the CPU, so together they
    take about as long as one.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs: dict[str, tuple[list[str], subprocess.Popen[str], Path, tuple[Path, ...]]] = {}

    def start(self, name: str, args: list[str], files: tuple[Path, ...] = ()) -> None:
        log = self.folder / f"{name}.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [*harness_command(), *args],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.runs[name] = (args, process, log, files)

    def require_success(self, name: str, peer: PeerServer, timeout: float) -> None:
        args, process, log, files = self.runs[name]
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        output = log.read_text(errors="replace") + ("" if code is not None else "\n(killed)")
        assert code == 0, describe(args, code, output, peer, files)
        assert peer.running, f"the peer server died during `{' '.join(args)}`"

    def stop(self) -> None:
        for _, process, _, _ in self.runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, PeerServer]]:
    """One peer server per variant, plus the access-checking one, for the whole module."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with contextlib.ExitStack() as stack:
        running = {name: stack.enter_context(PeerServer(flags)) for name, flags in VARIANTS.items()}
        running["access-check"] = stack.enter_context(PeerServer(token_secret=TOKEN_SECRET))
        yield running


@pytest.fixture(scope="module")
def conformance_runs(
    peers: dict[str, PeerServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Batch]:
    batch = Batch(tmp_path_factory.mktemp("conformance"))
    for name, peer in peers.items():
        report = batch.folder / name
        args = ["conformance", "--url", peer.url, "--report-dir", str(report), "--quiet"]
        if name == "access-check":
            args += ["--token-secret", TOKEN_SECRET]
        batch.start(name, args)
    yield batch
    batch.stop()


@pytest.fixture(scope="module")
def swarm_runs(
    peers: dict[str, PeerServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Batch]:
    batch = Batch(tmp_path_factory.mktemp("swarm"))
    for name in VARIANTS:
        out = batch.folder / name
        args = ["swarm", "--url", peers[name].url, "--users", "20", "--run-time", "20s"]
        # The verdict and run.json name the anomaly or violation; the output's tail is stats.
        batch.start(name, [*args, "--out", str(out)], (out / "verdict.txt", out / "run.json"))
    yield batch
    batch.stop()


@pytest.mark.slow
@variant_names
def test_conformance_passes(
    variant: str, peers: dict[str, PeerServer], conformance_runs: Batch
) -> None:
    conformance_runs.require_success(variant, peers[variant], CONFORMANCE_TIMEOUT_S)


@pytest.mark.slow
def test_conformance_passes_with_access_check(
    peers: dict[str, PeerServer], conformance_runs: Batch
) -> None:
    """The access cases of R2.4 against the peer's own HS256 check (node's crypto)."""
    conformance_runs.require_success("access-check", peers["access-check"], CONFORMANCE_TIMEOUT_S)


@pytest.mark.slow
@variant_names
def test_swarm_passes(variant: str, peers: dict[str, PeerServer], swarm_runs: Batch) -> None:
    swarm_runs.require_success(variant, peers[variant], SWARM_TIMEOUT_S)


@pytest.mark.slow
@variant_names
def test_fuzz_passes(variant: str, peers: dict[str, PeerServer], tmp_path: Path) -> None:
    """Five seeds at once, each its own process and sessions, against one server."""
    batch = Batch(tmp_path)
    for seed in FUZZ_SEEDS:
        args = ["fuzz", "--url", peers[variant].url, "--seconds", str(FUZZ_SECONDS),
                "--seed", str(seed), "--shrink-seconds", str(FUZZ_SHRINK_SECONDS),
                "--out", str(tmp_path / f"seed-{seed}.jsonl")]  # fmt: skip
        batch.start(f"seed-{seed}", args)
    deadline = time.monotonic() + FUZZ_TIMEOUT_S
    try:
        for seed in FUZZ_SEEDS:
            timeout = max(0.1, deadline - time.monotonic())
            batch.require_success(f"seed-{seed}", peers[variant], timeout)
    finally:
        batch.stop()
