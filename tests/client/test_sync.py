from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from harness.client.core import ClientListener
from harness.client.sync import StoreClient, connect
from harness.errors import ConnectionLost, ProtocolViolation, RequestTimeout, StoreError
from harness.history.recorder import HistoryRecorder
from harness.protocol import ErrorCode, Participant, request_name
from harness.server.aio import ReferenceServer
from harness.server.embedded import EmbeddedServer


def test_blocking_round_trip_and_updates(server_url):
    with connect(server_url) as alice, connect(server_url) as bob:
        alice.join("s", "alice", "Alice")
        bob.join("s", "bob", "Bob")
        got = threading.Event()
        seen = []
        observer = bob.observe("BLOCK_CHAT", lambda v, by: (seen.append((v, by)), got.set()))
        alice.set("BLOCK_CHAT", "true")
        assert got.wait(5)
        assert seen == [("true", Participant("alice", "Alice"))]
        assert bob.get("BLOCK_CHAT") == "true"
        bob.stop_observing(observer)
        with pytest.raises(StoreError) as caught:
            bob.stop_observing(observer)
        assert caught.value.code is ErrorCode.UNKNOWN_OBSERVER


def test_updates_iterator_ends_on_timeout(server_url):
    with connect(server_url) as client:
        client.join("s", "p")
        stream = client.updates(timeout=0.5)
        client.observe("k")
        client.set("k", "1")
        client.set("k", None)
        assert [u.value for u in stream] == ["1", None]


def test_pending_requests_fail_when_the_server_goes_away():
    embedded = EmbeddedServer().start()
    client = connect(embedded.url, request_timeout=5).open()
    client.join("s", "p")
    embedded.stop()
    with pytest.raises(ConnectionLost):
        client.get("k")
    assert client.closed


class _SilentServer(ReferenceServer):
    def handle_get(self, conn, request):  # never answers a get
        pass


def test_request_timeout_is_reported_as_unknown():
    outcomes = []

    class Outcomes(ClientListener):
        def request_done(self, client, pending, reply, done_ns):
            outcomes.append((request_name(pending.request), reply))

    with (
        EmbeddedServer(_SilentServer) as embedded,
        connect(embedded.url, request_timeout=0.3, listeners=[Outcomes()]) as client,
    ):
        client.join("s", "p")
        with pytest.raises(RequestTimeout):
            client.get("k")
        assert outcomes[-1] == ("get", None)  # unknown, not failed
        # The server skipped a reply, so the next reply answers the wrong request.
        with pytest.raises(ProtocolViolation, match="request order"):
            client.set("k", "v")


def test_a_close_by_the_client_is_recorded_as_by_client(server_url):
    recorder = HistoryRecorder()
    with connect(server_url, listeners=[recorder]) as client:
        client.join("s", "p")
        client.observe("k")
        before = client.closing_ns
    closed = [e for e in recorder.events() if e["ev"] == "closed"]
    assert before is None
    assert len(closed) == 1
    assert closed[0]["by_client"] is True
    assert closed[0]["t"] == client.closing_ns
    client.close()  # closing again changes nothing
    assert [e for e in recorder.events() if e["ev"] == "closed"] == closed


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(ConnectionLost, match="could not connect"):
        StoreClient("ws://127.0.0.1:9/", connect_timeout=2).open()


def test_works_under_gevent_monkey_patching(server_url):
    script = textwrap.dedent(
        f"""
        from gevent import monkey; monkey.patch_all()
        import gevent
        from harness.client.sync import connect

        def participant(i):
            with connect({server_url!r}) as c:
                c.join("g", f"p{{i}}")
                for n in range(50):
                    c.set(f"k{{i}}", str(n))
                return c.get(f"k{{i}}")

        jobs = [gevent.spawn(participant, i) for i in range(20)]
        gevent.joinall(jobs, timeout=30)
        print(sorted(set(j.value for j in jobs)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['49']"


# --- gevent mode: each test runs a monkey-patched client in its own process ----------

_GEVENT_PRELUDE = """
from gevent import monkey; monkey.patch_all()
import json
import gevent
from harness.client.core import ClientListener
from harness.client.sync import connect
from harness.protocol import request_name


class Outcomes(ClientListener):
    def __init__(self):
        self.done = []

    def request_done(self, client, pending, reply, done_ns):
        self.done.append([request_name(pending.request), None if reply is None else "reply"])


def gevent_mode(client):
    assert client._hub is not None, "the client should read in gevent's hub"
    return client
"""


def _run_under_gevent(body: str, url: str) -> dict[str, Any]:
    """Run ``body`` (``URL`` set) in a gevent-patched child; returns the JSON it printed."""
    script = _GEVENT_PRELUDE + f"URL = {url!r}\n" + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_gevent_mode_timeout_is_reported_as_unknown_once():
    with EmbeddedServer(_SilentServer) as embedded:
        result = _run_under_gevent(
            """
            from harness.errors import ProtocolViolation, RequestTimeout
            outcomes = Outcomes()
            client = gevent_mode(connect(URL, request_timeout=0.3, listeners=[outcomes]).open())
            client.join("s", "p")
            try:
                client.get("k")
            except RequestTimeout:
                timed_out = True
            after_timeout = list(outcomes.done)
            try:  # the server skipped a reply, so the next one answers the wrong request
                client.set("k", "v")
            except ProtocolViolation as exc:
                violation = "request order" in str(exc)
            client.close()
            print(json.dumps({
                "timed_out": timed_out, "after_timeout": after_timeout,
                "violation": violation, "outcomes": outcomes.done,
                "closed": client.closed, "close_code": client.close_code,
            }))
            """,
            embedded.url,
        )
    assert result["timed_out"]
    assert result["after_timeout"] == [["join", "reply"], ["get", None]]
    assert result["violation"]
    # The get stays reported once, as unknown; the set, answered by no valid reply, too.
    assert result["outcomes"] == [["join", "reply"], ["get", None], ["set", None]]
    assert result["closed"] and result["close_code"] == 1002


class _DroppingServer(ReferenceServer):
    def handle_get(self, conn, request):  # "slow" is never answered; "drop" cuts the line
        if request.key == "drop":
            conn.websocket.transport.abort()


def test_gevent_mode_connection_loss_fails_pending_requests():
    with EmbeddedServer(_DroppingServer) as embedded:
        result = _run_under_gevent(
            """
            from harness.errors import ConnectionLost
            outcomes = Outcomes()
            client = gevent_mode(connect(URL, request_timeout=10, listeners=[outcomes]).open())
            client.join("s", "p")
            updates = client.updates()

            def get(key):
                try:
                    client.get(key)
                except ConnectionLost as exc:
                    return str(exc)

            slow = gevent.spawn(get, "slow")
            gevent.sleep(0.1)
            dropped = gevent.spawn(get, "drop")
            gevent.joinall([slow, dropped], timeout=5)
            try:
                client.set("k", "v")
            except ConnectionLost:
                refused = True
            print(json.dumps({
                "errors": [slow.value, dropped.value], "refused": refused,
                "outcomes": outcomes.done, "closed": client.closed,
                "updates": list(updates),
            }))
            client.close()
            """,
            embedded.url,
        )
    assert result["errors"] == ["connection closed without a close frame"] * 2
    assert result["refused"] and result["closed"]
    assert result["outcomes"] == [["join", "reply"], ["get", None], ["get", None], ["set", None]]
    assert result["updates"] == []  # the iterator ended with the connection


def test_gevent_mode_updates_reach_callbacks_and_the_iterator(server_url):
    result = _run_under_gevent(
        """
        seen = []
        with connect(URL) as alice, connect(URL) as bob:
            gevent_mode(bob)
            alice.join("s", "alice", "Alice")
            bob.join("s", "bob", "Bob")
            stream = bob.updates()
            in_hub = gevent.get_hub()
            observer = bob.observe(
                "k", lambda value, by: seen.append([value, by.id, gevent.getcurrent() is in_hub])
            )
            alice.set("k", "1")
            alice.set("k", None)
            streamed = [next(stream).value, next(stream).value]
            bob.stop_observing(observer)
            alice.set("k", "2")  # no longer observed
            value = bob.get("k")
        print(json.dumps({
            "seen": seen, "streamed": streamed, "value": value, "rest": list(stream),
        }))
        """,
        server_url,
    )
    assert result["seen"] == [["1", "alice", True], [None, "alice", True]]
    assert result["streamed"] == ["1", None]
    assert result["value"] == "2"
    assert result["rest"] == []  # closing ended the iterator


def test_gevent_mode_greenlets_share_a_client_and_partial_writes_keep_order(server_url):
    result = _run_under_gevent(
        """
        class Trickle:
            # The OS socket, refusing every other send and taking 7 bytes at most: frames
            # wait in the client's unsent bytes and must still go out whole, in order.
            def __init__(self, raw):
                self.raw, self.sends = raw, 0

            def send(self, data):
                self.sends += 1
                if self.sends % 2:
                    raise BlockingIOError
                return self.raw.send(bytes(data[:7]))

            def recv(self, size):
                return self.raw.recv(size)

        outcomes = Outcomes()
        with connect(URL, listeners=[outcomes]) as client:
            gevent_mode(client)
            client.join("s", "p")
            client._raw = Trickle(client._raw)

            def worker(i):
                values = []
                for n in range(20):
                    client.set(f"k{i}", f"{i}-{n}" * 10)
                    values.append(client.get(f"k{i}"))
                return values

            jobs = [gevent.spawn(worker, i) for i in range(8)]
            gevent.joinall(jobs, timeout=30)
            values = [job.value for job in jobs]
            sends = client._raw.sends
        print(json.dumps({"values": values, "outcomes": len(outcomes.done), "sends": sends}))
        """,
        server_url,
    )
    assert result["values"] == [[f"{i}-{n}" * 10 for n in range(20)] for i in range(8)]
    assert result["outcomes"] == 1 + 8 * 20 * 2
    assert result["sends"] > 8 * 20 * 2  # the trickle did split frames
