"""Every violation a client sees reaches its listeners once, pending request or not.

A scripted server answers requests properly and then, unasked, sends one frame
the spec forbids. Both front ends must call ``violation_seen`` with the frame and
the requirement, fail the connection with 1002, and record the close as theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from raw_server import raw_server
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.utils import accept_key

from harness.client import aio, sync
from harness.client.core import ClientCore, ClientListener
from harness.client.wire import Wire
from harness.errors import ProtocolViolation
from harness.history.recorder import HistoryRecorder

P = {"id": "q", "name": "Q"}


def _frame(**fields: object) -> str:
    return orjson.dumps(fields).decode()


def _update(observer_id: str, **overrides: object) -> str:
    fields: dict[str, object] = {
        "type": "update", "observerId": observer_id, "key": "k", "value": "v", "updatedBy": P
    }  # fmt: skip
    fields.update(overrides)
    return _frame(**{name: value for name, value in fields.items() if value is not None})


#: What the server sends, unasked, after answering ``set("send", KIND)``.
UNSOLICITED: dict[str, str | bytes] = {
    "update_for_unknown_observer": _update("o99"),
    "schema": _update("o1", updatedBy=None),
    "unsolicited_reply": _frame(type="ok", id=999),
    "not_json": "<html>502</html>",
    "binary": b"\x00binary",
    "invalid_utf8": b"\xff\xfe not UTF-8",  # sent as a text frame
}
#: kind -> (the violation's kind, its requirement, words its message must hold)
EXPECTED: dict[str, tuple[str, str, str]] = {
    "update_after_stop": (
        "update_after_stop",
        "R4.5",
        "update for observer 'o1' after stopObserving was acknowledged",
    ),
    "update_before_observing": (
        "update_before_observing",
        "R4.8",
        "before the 'observing' reply that announces it",
    ),
    "update_for_unknown_observer": (
        "update_for_unknown_observer",
        "R4.8",
        "which no 'observing' reply on this connection announced",
    ),
    "schema": ("protocol_violation", "R1.4", "'updatedBy' is missing"),
    "unsolicited_reply": ("protocol_violation", "R1.2", "while no request was pending"),
    "not_json": ("protocol_violation", "R1.1", "not valid JSON"),
    "binary": ("protocol_violation", "R1.1", "binary frame"),
    "invalid_utf8": ("protocol_violation", "R1.1", "not valid UTF-8"),
}


async def _script(ws: ServerConnection) -> None:
    """Answers join, observe (observer 'o1'), stopObserving and set; then misbehaves."""
    with contextlib.suppress(ConnectionClosed):
        async for text in ws:
            request = orjson.loads(text)
            kind, request_id = request["type"], request["id"]
            if kind == "join":
                await ws.send(
                    _frame(type="joined", id=request_id, session=request["session"],
                           participant=request["participant"],
                           limits={"maxKeys": 100, "maxValueBytes": 1024})
                )  # fmt: skip
            elif kind == "observe" and request["key"] == "early":
                await ws.send(_update("o2", key="early"))  # before its 'observing' (R4.8)
            elif kind == "observe":
                await ws.send(_frame(type="observing", id=request_id, observerId="o1"))
            elif kind == "stopObserving":
                await ws.send(_frame(type="ok", id=request_id))
                await ws.send(_update(request["observerId"]))  # after the ok (R4.5)
            else:
                await ws.send(_frame(type="ok", id=request_id))
                if request.get("key") == "send":
                    frame = UNSOLICITED[request["value"]]
                    # text=True sends bytes as a text frame, unchecked; None: as their type says.
                    await ws.send(frame, text=True if request["value"] == "invalid_utf8" else None)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with raw_server(_script, ping_interval=None) as found:
        yield found


class Seen(ClientListener):
    """The violations and closes a client reports, and whether a request was pending."""

    def __init__(self) -> None:
        self.violations: list[tuple[ProtocolViolation, int, int]] = []
        self.closes: list[tuple[int, bool]] = []
        self.done = threading.Event()

    def violation_seen(self, client: ClientCore, violation: ProtocolViolation, seen_ns: int):
        self.violations.append((violation, seen_ns, len(client.connection.pending)))

    def connection_closed(self, client: ClientCore, closed_ns: int, by_client: bool) -> None:
        self.closes.append((closed_ns, by_client))
        self.done.set()


def _provoke_sync(url: str, case: str, listeners: list[ClientListener]) -> None:
    client = sync.connect(url, request_timeout=5, listeners=listeners).open()
    try:
        client.join("s", "p")
        if case == "update_before_observing":
            with pytest.raises(ProtocolViolation):
                client.observe("early")  # the violation fails the pending observe
        elif case == "update_after_stop":
            client.stop_observing(client.observe("k"))
        else:
            client.observe("k")
            client.set("send", case)
        assert listeners[0].done.wait(5), "the client did not fail the connection"  # type: ignore[attr-defined]
        with pytest.raises(ProtocolViolation):
            client.get("k")  # the next request fails with the violation seen earlier
    finally:
        client.close()


def _provoke_aio(url: str, case: str, listeners: list[ClientListener]) -> None:
    async def scenario() -> None:
        async with aio.connect(url, request_timeout=5, listeners=listeners) as client:
            await client.join("s", "p")
            if case == "update_before_observing":
                with pytest.raises(ProtocolViolation):
                    await client.observe("early")
            elif case == "update_after_stop":
                await client.stop_observing(await client.observe("k"))
            else:
                await client.observe("k")
                await client.set("send", case)
            async with asyncio.timeout(5):
                await client.wait_closed()
            with pytest.raises(ProtocolViolation):
                await client.get("k")

    asyncio.run(scenario())


@pytest.mark.parametrize("front_end", ["aio", "sync"])
@pytest.mark.parametrize("case", list(EXPECTED))
def test_the_hook_sees_every_violation_once_with_its_frame_and_requirement(
    url: str, front_end: str, case: str
) -> None:
    seen, recorder = Seen(), HistoryRecorder()
    provoke = _provoke_sync if front_end == "sync" else _provoke_aio
    provoke(url, case, [seen, recorder])

    kind, requirement, words = EXPECTED[case]
    assert len(seen.violations) == 1, seen.violations
    violation, seen_ns, pending = seen.violations[0]
    assert (violation.kind, violation.requirement) == (kind, requirement), str(violation)
    assert words in str(violation) and requirement in str(violation)
    assert violation.frame is not None
    # Only the R4.8 case has a request out (the observe its update overtook).
    assert pending == (1 if case == "update_before_observing" else 0)
    # The client failed the connection: the close is the client's, from that instant.
    assert seen.closes == [(seen_ns, True)]

    events = recorder.events()
    recorded = [e for e in events if e["ev"] == "violation"]
    assert len(recorded) == 1
    assert recorded[0]["requirement"] == requirement and recorded[0]["kind"] == kind
    assert recorded[0]["t"] == seen_ns and recorded[0]["p"] == "p"
    frame = violation.frame
    text = frame.decode("utf-8", "backslashreplace") if isinstance(frame, bytes) else frame
    assert recorded[0]["frame"] == text
    closed = [e for e in events if e["ev"] == "closed"]
    assert closed == [{**closed[0], "by_client": True, "violation": True, "t": seen_ns}]


def test_the_hook_fires_in_gevent_mode_with_no_request_pending(url: str) -> None:
    script = textwrap.dedent(
        f"""
        from gevent import monkey; monkey.patch_all()
        import json
        import gevent
        from harness.client.core import ClientListener
        from harness.client.sync import connect

        class Seen(ClientListener):
            def __init__(self):
                self.seen = []
            def violation_seen(self, client, violation, seen_ns):
                self.seen.append([violation.kind, violation.requirement,
                                  len(client.connection.pending)])

        seen = Seen()
        client = connect({url!r}, request_timeout=5, listeners=[seen]).open()
        assert client._hub is not None, "the client should read in gevent's hub"
        client.join("s", "p")
        client.stop_observing(client.observe("k"))
        for _ in range(500):
            if client.closed:
                break
            gevent.sleep(0.01)
        print(json.dumps({{"seen": seen.seen, "closed": client.closed,
                           "code": client.close_code}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result == {"seen": [["update_after_stop", "R4.5", 0]], "closed": True, "code": 1002}


def _open_wire() -> Wire:
    """A Wire whose opening handshake the 'server' below accepted."""
    wire = Wire("ws://127.0.0.1:9/", compression=False, max_frame_bytes=1 << 16)
    request = wire.opening_handshake().decode()
    key = next(
        line.split(":", 1)[1].strip()
        for line in request.split("\r\n")
        if line.lower().startswith("sec-websocket-key:")
    )
    accept = accept_key(key)
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    assert wire.receive(response.encode()) == [] and wire.handshake_done
    return wire


def test_a_frame_that_breaks_rfc_6455_is_a_violation_after_the_messages_before_it() -> None:
    wire = _open_wire()
    ok = b'{"type":"ok","id":1}'
    # A whole text frame, then one with opcode 3, which RFC 6455 reserves.
    assert wire.receive(bytes([0x81, len(ok)]) + ok + b"\x83\x00") == [ok.decode()]
    assert wire.violation is not None and wire.violation.requirement == "R1.1"
    assert "WebSocket protocol" in str(wire.violation)


def test_an_end_of_stream_without_a_close_frame_is_no_violation() -> None:
    wire = _open_wire()
    assert wire.receive(b"") == []
    assert wire.violation is None  # a crashed or restarted server: ConnectionLost, not R1.1
