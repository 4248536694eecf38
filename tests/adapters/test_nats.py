"""The NATS JetStream KV adapter against a real nats-server (tests/nats_server.py),
through AdapterClient."""

from __future__ import annotations

import asyncio
import json
import signal
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
from nats_server import NatsServer

from harness.adapters import AdapterClient, AsyncAdapterClient, async_client, resolve, sync_client
from harness.adapters.nats import NatsKvAdapter, decode_token, encode_token
from harness.adapters.natsproto import Msg, NatsConnection
from harness.errors import ConnectionLost, HarnessUsageError, RequestTimeout, StoreError
from harness.protocol import ErrorCode, Participant


@pytest.fixture
def participants(nats_url: str) -> Iterator[Callable[..., AdapterClient]]:
    """Open and join clients of one fresh session; each is closed at teardown."""
    with joined_participants(nats_url, NatsKvAdapter) as join:
        yield join


def raw_last(nats_url: str, subject: str) -> Msg:
    """The subject's last message as the stream holds it, past the adapter."""
    parts = urlsplit(nats_url)
    connection = NatsConnection(parts.hostname or "", parts.port or 0, connect_timeout=5)
    connection.connect(lambda reason: None)
    try:
        request = json.dumps({"last_by_subj": subject}).encode()
        return connection.request("$JS.API.DIRECT.GET.KV_harness-test", request, 5)
    finally:
        connection.close()


def test_scheme_picks_the_nats_adapter(nats_url):
    assert resolve(nats_url) is NatsKvAdapter
    assert isinstance(sync_client(nats_url), AdapterClient)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("nats://127.0.0.1:port/b", "port is not a number"),
        ("nats://127.0.0.1:4222/a.b", "bucket name allows only"),
        ("nats://127.0.0.1:4222/a/b", "bucket name allows only"),
    ],
)
def test_bad_urls_get_one_line(url, problem):
    with pytest.raises(HarnessUsageError, match=problem) as caught:
        AdapterClient(url, NatsKvAdapter)
    assert "\n" not in str(caught.value)


def test_set_get_delete_round_trip(participants, nats_url):
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
    # A delete is a KV delete marker, carrying its writer like any write.
    marker = raw_last(nats_url, f"$KV.harness-test.{alice.session}.k")
    assert marker.headers["KV-Operation"] == "DEL"
    assert marker.headers["Store-Updated-By"] == "alice"


def test_writes_carry_the_writer_in_a_header(participants, nats_url):
    alice = participants("alice")
    alice.set("k", '{"v": "not me"}')
    stored = raw_last(nats_url, f"$KV.harness-test.{alice.session}.k")
    assert stored.data == b'{"v": "not me"}'
    assert stored.headers["Store-Updated-By"] == "alice"
    assert stored.headers["Store-Updated-By-Name"] == "Alice"
    assert participants("bob").get("k") == '{"v": "not me"}'


def test_updates_name_the_writer_by_id_and_name(nats_url):
    name = session()
    with (
        AdapterClient(nats_url, NatsKvAdapter) as writer,
        AdapterClient(nats_url, NatsKvAdapter) as reader,
    ):
        writer.join(name, "alice 7", "Alice Ünïcødé: \r\n")
        reader.join(name, "bob")
        seen: list[Participant] = []
        reader.observe("k", lambda value, by: seen.append(by))
        writer.set("k", "v")
        writer.set("k", None)
        wait_until(lambda: len(seen) == 2, "both updates")
    assert seen == [Participant("alice 7", "Alice Ünïcødé: \r\n")] * 2


ODD_KEYS = ["a.b", "a=2Eb", "=", "*", ">", "a b", "é", "🙂", "\ud800", "a/b", "x" * 300, "."]


def test_keys_needing_encoding_round_trip_and_never_collide(participants):
    alice, bob = participants("alice"), participants("bob")
    for number, key in enumerate(ODD_KEYS):
        alice.set(key, f"v{number}")
    assert [bob.get(key) for key in ODD_KEYS] == [f"v{n}" for n in range(len(ODD_KEYS))]
    seen = Deliveries()
    bob.observe("a.b", seen)
    alice.set("a=2Eb", "not a.b")
    alice.set("a.b", "a.b again")
    wait_until(lambda: bool(seen.seen), "the write to a.b")
    time.sleep(0.1)  # room for a wrong delivery to show up
    assert seen.seen == [("a.b again", "alice")]


@pytest.mark.parametrize("text", [*ODD_KEYS, "", "plain-key_1", "==3D", "%41"])
def test_the_key_encoding_is_reversible_and_dot_free(text):
    token = encode_token(text)
    assert decode_token(token) == text
    assert "." not in token and all(c.isascii() and (c.isalnum() or c in "-_/=") for c in token)


def test_sessions_never_share_keys(nats_url):
    name = session()
    with (
        AdapterClient(nats_url, NatsKvAdapter) as first,
        AdapterClient(nats_url, NatsKvAdapter) as other,
    ):
        first.join(f"{name}.a", "p1")
        other.join(name, "p2")
        first.set("b", "first")
        assert other.get("a.b") is None


def test_a_bucket_keeping_one_value_per_key_is_refused(nats_url):
    """Its watches would skip every update overwritten before delivery."""
    parts = urlsplit(nats_url)
    connection = NatsConnection(parts.hostname or "", parts.port or 0, connect_timeout=5)
    connection.connect(lambda reason: None)
    config = {"name": "KV_one", "subjects": ["$KV.one.>"], "max_msgs_per_subject": 1}
    created = connection.request("$JS.API.STREAM.CREATE.KV_one", json.dumps(config).encode(), 5)
    connection.close()
    assert b'"error"' not in created.data
    with pytest.raises(HarnessUsageError, match="keeps 1 value") as caught:
        AdapterClient(nats_url.rsplit("/", 1)[0] + "/one", NatsKvAdapter).open()
    assert "\n" not in str(caught.value)


def test_an_empty_key_is_refused_as_nats_has_no_empty_token(participants):
    alice = participants("alice")
    with pytest.raises(StoreError) as caught:
        alice.set("", "v")
    assert caught.value.code is ErrorCode.INVALID_KEY


def test_a_value_over_the_servers_max_payload_is_refused_not_sent(participants):
    alice = participants("alice")
    with pytest.raises(StoreError) as caught:
        alice.set("k", "x" * (1024 * 1024 + 1))
    assert caught.value.code is ErrorCode.VALUE_TOO_LARGE
    alice.set("k", "x" * 100_000)  # the connection is still good
    assert alice.get("k") == "x" * 100_000


def test_observer_sees_another_participants_writes_in_order(participants):
    alice, bob, carol = participants("alice"), participants("bob"), participants("carol")
    seen = Deliveries()
    bob.observe("k", seen)
    writes = [(f"v{n}", "alice" if n % 2 else "carol") for n in range(20)]
    writes += [(None, "alice"), (None, "carol"), ("last", "alice")]
    for value, writer in writes:
        (alice if writer == "alice" else carol).set("k", value)
    wait_until(lambda: len(seen.seen) == len(writes), "every write")
    # Each delete is an update with its deleter, an absent key's delete too (R3.2, R4.2).
    assert seen.seen == writes


def test_many_updates_arrive_whole_and_in_order(participants):
    """Enough bytes for JetStream's flow control to ask the watch for answers."""
    alice, bob = participants("alice"), participants("bob")
    seen = Deliveries()
    bob.observe("k", seen)
    values = [f"{n:06d}" + "x" * 4000 for n in range(600)]
    for value in values:
        alice.set("k", value)
    wait_until(lambda: len(seen.seen) == len(values), "every update")
    assert [value for value, _ in seen.seen] == values
    assert bob.violation is None and not bob.closed


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


def test_stop_first_delivers_what_was_acknowledged_before_it(participants):
    """JetStream acknowledges a write before its consumer delivers it; the observer was
    active when the write was applied, so stop() must not drop it (R4.1)."""
    alice, bob = participants("alice"), participants("bob")
    for n in range(30):
        seen = Deliveries()
        observer = bob.observe("k", seen)
        alice.set("k", f"v{n}")
        alice.set("k", None)
        bob.stop_observing(observer)
        assert seen.seen == [(f"v{n}", "alice"), (None, "alice")], n
    assert bob.violation is None and not bob.closed


def test_stop_while_updates_stream_in_delivers_nothing_after(participants):
    """The bridge calls a delivery after stop() an R4.5 violation; none may come."""
    alice, bob = participants("alice"), participants("bob")
    for round_number in range(20):
        observer = bob.observe("k")
        for n in range(5):
            alice.set("k", f"{round_number}-{n}")
        bob.stop_observing(observer)
    alice.set("k", "after")
    assert bob.get("k") == "after"
    assert bob.violation is None and not bob.closed


def test_a_gap_in_the_consumer_sequence_ends_the_connection(participants):
    bob = participants("bob")
    bob.observe("k")
    watch = bob._states["obs-1"].handle
    # A heartbeat saying the consumer sent a delivery this watch never got.
    heartbeat = Msg("inbox", "", b"", {"Nats-Last-Consumer": "1"}, "100", "Idle Heartbeat")
    bob.adapter._delivered(watch, heartbeat)
    wait_until(lambda: bob.closed, "the connection to end")
    assert "an update was lost" in bob.close_reason
    with pytest.raises(ConnectionLost):
        bob.get("k")


def test_asyncio_client_through_the_adapter(nats_url, run):
    async def scenario() -> list[tuple[str | None, str]]:
        name = session()
        writer = async_client(nats_url)
        reader = async_client(nats_url)
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


def test_listener_sees_what_it_sees_on_the_native_client(nats_url, server_url):
    through_nats = scripted_session(nats_url, session())
    native = scripted_session(server_url, session())
    assert through_nats == native
    assert ("update", "k", "one", "alice") in through_nats
    assert through_nats[-1] == ("closed", True)


@pytest.fixture
def own_server(tmp_path) -> Iterator[NatsServer]:
    """A NATS server of the test's own, to pause or kill."""
    with NatsServer(tmp_path / "store") as nats:
        yield nats


def test_a_paused_server_gives_timeouts_not_hangs(own_server):
    recorder = Recorder()
    url = own_server.url()
    with AdapterClient(url, NatsKvAdapter, request_timeout=0.5, listeners=(recorder,)) as alice:
        alice.join(session(), "alice")
        alice.set("k", "one")
        own_server.signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            alice.set("k", "maybe")
        assert time.monotonic() - started < 5
        assert recorder.events[-1] == ("done", "Set", "NoneType")
        own_server.signal(signal.SIGCONT)
        alice.set("k", "surely")
        assert alice.get("k") == "surely"


def test_a_killed_server_gives_unknown_outcomes_and_ends_the_client(own_server):
    recorder = Recorder()
    alice = AdapterClient(own_server.url(), NatsKvAdapter, listeners=(recorder,)).open()
    alice.join(session(), "alice")
    alice.observe("k")
    alice.set("k", "one")
    own_server.signal(signal.SIGKILL)
    wait_until(lambda: alice.closed, "the lost connection to end the client")
    assert recorder.events[-1] == ("closed", False)
    assert "NATS" in alice.close_reason
    started = time.monotonic()
    with pytest.raises(ConnectionLost):
        alice.set("k", "two")
    assert time.monotonic() - started < 5
    assert recorder.events[-1] == ("done", "Set", "NoneType")


def test_no_server_fails_to_open_in_one_line(tmp_path):
    with NatsServer(tmp_path / "store") as nats:
        url = nats.url()
    with pytest.raises(ConnectionLost, match="cannot reach") as caught:
        AdapterClient(url, NatsKvAdapter).open()
    assert "\n" not in str(caught.value)


def test_runs_under_gevent(nats_url):
    assert run_under_gevent("harness.adapters.nats:NatsKvAdapter", nats_url, session()) == {
        "seen": [["one", "alice"], [None, "alice"], ["two", "alice"]],
        "get": "after stop",
        "violation": "None",
    }


@pytest.mark.slow
def test_a_swarm_against_nats_kv_is_valid(nats_url, tmp_path):
    info = valid_swarm(nats_url, tmp_path / "run")
    assert info["requests"]["SET"] > 0 and info["requests"]["NOTIFY"] > 0
