from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from harness.client.base import ClientListener
from harness.client.sync import StoreClient, connect
from harness.errors import ConnectionLost, ProtocolViolation, RequestTimeout, StoreError
from harness.protocol import ErrorCode, Participant, request_name
from harness.recording import HistoryRecorder
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
