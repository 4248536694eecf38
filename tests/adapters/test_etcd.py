"""The etcd adapter against a real etcd (tests/etcd_server.py), through AdapterClient."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from adapter_helpers import (
    WAIT,
    Deliveries,
    Recorder,
    joined_participants,
    run_under_gevent,
    scripted_session,
    session,
    valid_swarm,
    wait_until,
)

from harness.adapters import AdapterClient, AsyncAdapterClient, async_client, resolve, sync_client
from harness.adapters.etcd import EtcdAdapter
from harness.errors import ConnectionLost, HarnessUsageError, RequestTimeout, StoreError
from harness.protocol import ErrorCode, Participant


@pytest.fixture
def participants(etcd_url: str) -> Iterator[Callable[..., AdapterClient]]:
    """Open and join clients of one fresh session; each is closed at teardown."""
    with joined_participants(etcd_url, EtcdAdapter) as join:
        yield join


def raw_range(etcd_url: str, key: str) -> list[dict[str, str]]:
    """The etcd keys under ``key`` as etcd itself holds them, past the adapter."""
    parts = urlsplit(etcd_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    encoded = base64.b64encode(key.encode()).decode()
    connection.request("POST", "/v3/kv/range", json.dumps({"key": encoded}))
    reply = json.loads(connection.getresponse().read())
    connection.close()
    return reply.get("kvs", [])  # type: ignore[no-any-return]


def test_scheme_picks_the_etcd_adapter(etcd_url):
    assert resolve(etcd_url) is EtcdAdapter
    assert isinstance(sync_client(etcd_url), AdapterClient)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("etcd:///prefix", "expected etcd://HOST"),
        ("etcd://127.0.0.1:port/x", "port is not a number"),
        ("etcd://127.0.0.1:2379/x?a=1", "no query"),
    ],
)
def test_bad_urls_get_one_line(url, problem):
    with pytest.raises(HarnessUsageError, match=problem) as caught:
        AdapterClient(url, EtcdAdapter)
    assert "\n" not in str(caught.value)


def test_set_get_delete_round_trip(participants, etcd_url):
    alice = participants("alice")
    assert alice.get("k") is None
    alice.set("k", "one")
    assert alice.get("k") == "one"
    alice.set("k", "")  # the empty string is a value, not a delete (R3.2)
    assert alice.get("k") == ""
    alice.set("k", None)
    assert alice.get("k") is None
    alice.set("k", None)  # deleting an absent key is accepted (R3.2)
    assert alice.get("k") is None
    # The tombstone was removed, not left behind.
    assert raw_range(etcd_url, f"harness-test/{alice.session}/k") == []


def test_values_carry_the_writer_in_an_envelope(participants, etcd_url):
    alice = participants("alice")
    alice.set("k", '{"v": "not me"}')
    (kv,) = raw_range(etcd_url, f"harness-test/{alice.session}/k")
    assert json.loads(base64.b64decode(kv["value"])) == {
        "v": '{"v": "not me"}',
        "by": "alice",
        "name": "Alice",
    }
    assert participants("bob").get("k") == '{"v": "not me"}'


def test_a_value_etcd_refuses_as_too_large_is_a_store_error(participants):
    alice = participants("alice")
    # etcd's own request limit (--max-request-bytes, 1.5 MiB by default); the adapter
    # promises no limit of its own (value_limit=None) but reports etcd's refusal.
    with pytest.raises(StoreError) as refused:
        alice.set("k", "x" * 2_000_000)
    assert refused.value.code is ErrorCode.VALUE_TOO_LARGE
    assert alice.get("k") is None and not alice.closed


def test_the_empty_key_is_refused_and_any_code_point_is_a_key(participants):
    alice = participants("alice")
    for call in (lambda: alice.set("", "v"), lambda: alice.get(""), lambda: alice.observe("")):
        with pytest.raises(StoreError) as refused:
            call()
        assert refused.value.code is ErrorCode.INVALID_KEY
    # A lone surrogate is a code point like any other (R3.10): its key is its own.
    alice.set("k\udc80", "lone")
    alice.set("k\ufffd", "replacement")
    assert alice.get("k\udc80") == "lone" and alice.get("k\ufffd") == "replacement"
    assert not alice.closed


def test_sessions_never_share_keys(etcd_url):
    name = session()
    with (
        AdapterClient(etcd_url, EtcdAdapter) as first,
        AdapterClient(etcd_url, EtcdAdapter) as other,
    ):
        first.join(f"{name}/a", "p1")
        other.join(name, "p2")
        first.set("b", "first")
        assert other.get("a/b") is None


def test_observer_sees_another_participants_writes_in_order(participants):
    alice, bob = participants("alice"), participants("bob")
    seen = Deliveries()
    bob.observe("k", seen)
    writes = [f"v{n}" for n in range(20)] + [None, None, "last"]
    for value in writes:
        alice.set("k", value)
    wait_until(lambda: len(seen.seen) == len(writes), "every write")
    # Each delete is an update with its deleter, an absent key's delete too (R3.2, R4.2).
    assert seen.seen == [(value, "alice") for value in writes]


def test_updated_by_is_the_writer_as_it_joined(participants):
    alice, bob = participants("alice"), participants("bob")
    writers: list[Participant] = []
    bob.observe("k", lambda value, by: writers.append(by))
    alice.set("k", "v")
    alice.set("k", None)
    wait_until(lambda: len(writers) == 2, "both updates")
    assert writers == [Participant("alice", "Alice")] * 2  # R4.2: id and name


def test_observe_delivers_updates_only(participants):
    alice, bob = participants("alice"), participants("bob")
    alice.set("k", "before")
    seen = Deliveries()
    bob.observe("k", seen)
    alice.set("k", "after")
    wait_until(lambda: bool(seen.seen), "the write after observe")
    assert seen.seen == [("after", "alice")]


def test_stop_ends_deliveries(participants):
    alice, bob = participants("alice"), participants("bob")
    stopped, kept = Deliveries(), Deliveries()
    first = bob.observe("k", stopped)
    bob.observe("k", kept)
    alice.set("k", "one")
    wait_until(lambda: len(stopped.seen) == len(kept.seen) == 1, "both observers")
    bob.stop_observing(first)
    for value in ("two", "three", None):
        alice.set("k", value)
    wait_until(lambda: len(kept.seen) == 4, "the live observer")
    assert stopped.seen == [("one", "alice")]
    assert bob.violation is None and not bob.closed


class LaggingStream:
    """A watch stream whose lines reach the reader 20 ms late: a watch behind the put
    acknowledgements, as etcd's are under load (a 100-participant swarm lost updates so)."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.response = response

    def readline(self) -> bytes:
        line = self.response.readline()
        time.sleep(0.02)
        return line


def test_stop_first_delivers_what_was_acknowledged_before_it(participants, monkeypatch):
    """etcd acknowledges a put before its watchers hear of it; the observer was active
    when the write was applied, so stop() must not drop it (R4.1)."""
    pump = EtcdAdapter._pump
    monkeypatch.setattr(
        EtcdAdapter, "_pump", lambda self, watch, response, deliver: pump(
            self, watch, LaggingStream(response), deliver
        )
    )  # fmt: skip
    alice, bob = participants("alice"), participants("bob")
    for n in range(10):
        seen = Deliveries()
        observer = bob.observe("k", seen)
        alice.set("k", f"v{n}")
        alice.set("k", None)
        bob.stop_observing(observer)
        assert seen.seen == [(f"v{n}", "alice"), (None, "alice")], n
    assert bob.violation is None and not bob.closed


def test_asyncio_client_through_the_adapter(etcd_url, run):
    async def scenario() -> list[tuple[str | None, str]]:
        name = session()
        writer = async_client(etcd_url)
        reader = async_client(etcd_url)
        assert isinstance(writer, AsyncAdapterClient)
        async with writer, reader:
            await writer.join(name, "alice")
            await reader.join(name, "bob")
            seen = Deliveries()
            await reader.observe("k", seen)
            await writer.set("k", "one")
            await writer.delete("k")
            assert await reader.get("k") is None
            deadline = time.monotonic() + WAIT
            while len(seen.seen) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return seen.seen

    assert run(scenario()) == [("one", "alice"), (None, "alice")]


def test_listener_sees_what_it_sees_on_the_native_client(etcd_url, server_url):
    through_etcd = scripted_session(etcd_url, session())
    native = scripted_session(server_url, session())
    assert through_etcd == native
    assert ("update", "k", "one", "alice") in through_etcd
    assert through_etcd[-1] == ("closed", True)


def test_overlapping_calls_on_one_client_take_turns(etcd_url, run):
    async def scenario() -> list[str | None]:
        async with async_client(etcd_url) as alice:
            await alice.join(session(), "alice")
            await asyncio.gather(*(alice.set(f"k{n}", str(n)) for n in range(20)))
            return list(await asyncio.gather(*(alice.get(f"k{n}") for n in range(20))))

    assert run(scenario()) == [str(n) for n in range(20)]


class Relay:
    """A TCP relay in front of etcd that can hold every byte or cut every connection."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait(WAIT)
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.flowing.set()
        self.listener.close()
        self.cut()


@pytest.fixture
def relay(etcd_url: str) -> Iterator[Relay]:
    relay = Relay(urlsplit(etcd_url).port or 0)
    yield relay
    relay.close()


def relayed(relay: Relay) -> str:
    return f"etcd://127.0.0.1:{relay.port}/harness-test"


def test_no_answer_in_time_is_an_unknown_outcome(participants, relay):
    recorder = Recorder()
    alice = participants("alice", relayed(relay), request_timeout=0.5, listeners=(recorder,))
    relay.flowing.clear()
    with pytest.raises(RequestTimeout):
        alice.set("k", "maybe")
    assert recorder.events[-1] == ("done", "Set", "NoneType")
    relay.flowing.set()
    # The held write now reaches etcd, on a connection the adapter already dropped: etcd
    # may apply it or cancel it (its outcome is unknown). Let that settle first.
    time.sleep(0.5)
    assert alice.get("k") in ("maybe", None)
    # A late answer is never read as the next call's: that one opens a fresh connection.
    alice.set("k", "surely")
    assert alice.get("k") == "surely"


def test_a_cut_connection_is_an_unknown_outcome_and_ends_the_client(participants, relay):
    recorder = Recorder()
    alice = participants("alice", relayed(relay), listeners=(recorder,))
    alice.set("k", "one")
    relay.cut()
    with pytest.raises(ConnectionLost):
        alice.set("k", "two")
    assert ("done", "Set", "NoneType") in recorder.events
    assert alice.closed and recorder.events[-1] == ("closed", False)


def test_close_during_a_call_ends_it_as_an_unknown_outcome(participants, relay):
    alice = participants("alice", relayed(relay))
    relay.flowing.clear()
    raised: list[BaseException] = []

    def call() -> None:
        try:
            alice.set("k", "maybe")
        except BaseException as exc:
            raised.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)  # the set is on its way and held by the relay
    alice.close()
    caller.join(WAIT)
    (error,) = raised
    # The store's connection ended under the call; the adapter itself did not fail.
    assert isinstance(error, ConnectionLost) and "adapter" not in str(error), error


def test_a_watch_stream_that_dies_ends_the_client(participants, relay):
    bob = participants("bob", relayed(relay))
    bob.observe("k")
    relay.cut()
    wait_until(lambda: bob.closed, "the lost watch to end the client")
    assert "etcd" in bob.close_reason
    with pytest.raises(ConnectionLost):
        bob.get("k")


def test_runs_under_gevent(etcd_url):
    result = run_under_gevent("harness.adapters.etcd:EtcdAdapter", etcd_url, session())
    assert result == {
        "seen": [["one", "alice"], [None, "alice"], ["two", "alice"]],
        "get": "after stop",
        "violation": "None",
    }


@pytest.mark.slow
def test_a_swarm_against_etcd_is_valid(etcd_url, tmp_path):
    info = valid_swarm(etcd_url, tmp_path / "run")
    # The verdict judged real traffic: writes went in and reached observers.
    assert info["requests"]["SET"] > 0 and info["requests"]["NOTIFY"] > 0
