"""Every error code of docs/protocol.md section 5, provoked over a real socket."""

from __future__ import annotations

import pytest

from harness.client.aio import connect
from harness.errors import ConnectionLost, StoreError
from harness.protocol import ErrorCode, Join
from harness.server.aio import ReferenceServer
from harness.server.embedded import EmbeddedServer

JOIN = {"type": "join", "id": 1, "session": "s", "participant": {"id": "p", "name": ""}}

# (cause, frame, id the error must carry): R5.1 says null when no integer id was readable.
MALFORMED = [
    ("not JSON", '{"type": "get", "id": 1,', None),
    ("escaped lone surrogate (R1.1)", '{"type":"get","id":1,"key":"\\ud800"}', None),
    ("array", "[1, 2]", None),
    ("string", '"join"', None),
    ("number", "42", None),
    ("null", "null", None),
    ("binary frame", b'{"type":"get","id":1,"key":"k"}', None),
    ("id missing", {"type": "get", "key": "k"}, None),
    ("id a string", {"type": "get", "id": "7", "key": "k"}, None),
    ("id a float", {"type": "get", "id": 7.5, "key": "k"}, None),
    ("id an integral float", {"type": "get", "id": 7.0, "key": "k"}, None),
    ("id a bool", {"type": "get", "id": True, "key": "k"}, None),
    ("id null", {"type": "get", "id": None, "key": "k"}, None),
    ("unknown type", {"type": "delete", "id": 7, "key": "k"}, 7),
    ("type missing", {"id": 7, "key": "k"}, 7),
    ("type not a string", {"type": 3, "id": 7}, 7),
]


@pytest.mark.parametrize("joined", [False, True], ids=["before-join", "after-join"])
@pytest.mark.parametrize(
    ("frame", "request_id"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_frame_is_bad_request_and_connection_stays_usable(
    wire, run, frame, request_id, joined
):
    async def scenario():
        async with wire() as w:
            if joined:
                await w.join()
            await w.refused(frame, "BAD_REQUEST", request_id)
            # R5.4: the connection still answers, and its join state is unchanged.
            if joined:
                assert (await w.set("k", "v"))["type"] == "ok"
            else:
                await w.join()

    run(scenario())


def _join(**changes: object) -> dict[str, object]:
    frame = {**JOIN, "participant": dict(JOIN["participant"])}  # type: ignore[arg-type]
    for name, value in changes.items():
        target, _, field = name.partition("__")
        holder = frame["participant"] if field else frame
        key = field or target
        if value is _MISSING:
            holder.pop(key)  # type: ignore[union-attr]
        else:
            holder[key] = value  # type: ignore[index]
    return frame


_MISSING = object()

INVALID_JOINS = {
    "session missing": _join(session=_MISSING),
    "session empty": _join(session=""),
    "session a number": _join(session=5),
    "participant missing": _join(participant=_MISSING),
    "participant a string": _join(participant="bob"),
    "participant an array": _join(participant=["bob"]),
    "participant.id missing": _join(participant__id=_MISSING),
    "participant.id empty": _join(participant__id=""),
    "participant.id a number": _join(participant__id=7),
    "participant.name missing": _join(participant__name=_MISSING),
    "participant.name a number": _join(participant__name=3),
    "participant.name null": _join(participant__name=None),
    "token a number": _join(token=5),
    "token null": _join(token=None),
}


@pytest.mark.parametrize("frame", INVALID_JOINS.values(), ids=INVALID_JOINS.keys())
def test_invalid_join_field_is_bad_request_and_leaves_connection_unjoined(wire, run, frame):
    async def scenario():
        async with wire() as w:
            await w.refused(frame, "BAD_REQUEST", 1)
            await w.refused({"type": "get", "id": 2, "key": "k"}, "NOT_JOINED", 2)
            await w.join()

    run(scenario())


def test_join_echoes_session_participant_and_limits(wire, run):
    async def scenario():
        async with wire() as w:
            frame = _join(participant={"id": "alice", "name": "Alice"}, token="t", extra=[1])
            reply = await w.request(frame)
            assert reply["type"] == "joined" and reply["id"] == 1
            assert reply["session"] == "s"
            assert reply["participant"] == {"id": "alice", "name": "Alice"}
            assert reply["limits"] == {"maxKeys": 100, "maxValueBytes": 1024}

    run(scenario())


def test_second_join_is_bad_request_and_keeps_first_identity(wire, run):
    async def scenario():
        async with wire() as w, wire() as observer:
            await w.join("s", "alice")
            await observer.join("s", "bob")
            await observer.observe("k")
            second = _join(id=2, session="other", participant={"id": "mallory", "name": ""})
            await w.refused(second, "BAD_REQUEST", 2)
            assert (await w.set("k", "v"))["type"] == "ok"
            update = await observer.receive()
            assert update["updatedBy"]["id"] == "alice"

    run(scenario())


def test_extra_fields_are_ignored(wire, run):
    async def scenario():
        async with wire() as w:
            await w.join()
            reply = await w.request({"type": "set", "id": 3, "key": "k", "value": "v", "x": {}})
            assert reply == {"type": "ok", "id": 3}
            reply = await w.request({"type": "get", "id": 4, "key": "k", "value": "other"})
            assert reply == {"type": "value", "id": 4, "key": "k", "value": "v"}

    run(scenario())


BEFORE_JOIN = [
    {"type": "set", "id": 5, "key": "k", "value": "v"},
    {"type": "get", "id": 5, "key": "k"},
    {"type": "observe", "id": 5, "key": "k"},
    {"type": "stopObserving", "id": 5, "observerId": "o1"},
    # R5.2: NOT_JOINED outranks the field checks.
    {"type": "set", "id": 5, "key": "", "value": 3},
    {"type": "stopObserving", "id": 5},
]


@pytest.mark.parametrize("frame", BEFORE_JOIN, ids=lambda f: f"{f['type']}-{len(f)}")
def test_request_before_join_is_not_joined(wire, run, frame):
    async def scenario():
        async with wire() as w:
            await w.refused(frame, "NOT_JOINED", 5)

    run(scenario())


@pytest.mark.parametrize(
    "observer_id", [_MISSING, 5, None, ["o1"]], ids=["missing", "number", "null", "array"]
)
def test_stop_observing_without_string_observer_id(wire, run, observer_id):
    async def scenario():
        async with wire() as w:
            await w.join()
            frame: dict[str, object] = {"type": "stopObserving", "id": 9}
            if observer_id is not _MISSING:
                frame["observerId"] = observer_id
            await w.refused(frame, "UNKNOWN_OBSERVER", 9)

    run(scenario())


def test_stop_observing_an_inactive_observer(wire, run):
    async def scenario():
        async with wire() as w, wire() as other:
            await w.join("s", "p")
            await other.join("s", "p")  # same session and participant: still not w's observer
            theirs = await other.observe("k")
            mine = await w.observe("k")

            def stop(observer_id: str, request_id: int) -> dict[str, object]:
                return {"type": "stopObserving", "id": request_id, "observerId": observer_id}

            await w.refused(stop("never-issued", 1), "UNKNOWN_OBSERVER", 1)
            await w.refused(stop(theirs, 2), "UNKNOWN_OBSERVER", 2)
            assert await w.request(stop(mine, 3)) == {"type": "ok", "id": 3}
            await w.refused(stop(mine, 4), "UNKNOWN_OBSERVER", 4)
            # The refused stop left the other connection's observer running.
            await w.set("k", "v")
            update = await other.receive()
            assert (update["observerId"], update["value"]) == (theirs, "v")

    run(scenario())


BAD_KEYS = {"missing": _MISSING, "empty": "", "number": 5, "null": None, "array": ["k"]}


@pytest.mark.parametrize("kind", ["set", "get", "observe"])
@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_invalid_key(wire, run, kind, key):
    async def scenario():
        async with wire() as w:
            await w.join()
            # The value is bad too: R5.2 ranks INVALID_KEY first.
            frame: dict[str, object] = {"type": kind, "id": 11, "value": 12}
            if key is not _MISSING:
                frame["key"] = key
            await w.refused(frame, "INVALID_KEY", 11)

    run(scenario())


BAD_VALUES = {"missing": _MISSING, "number": 5, "bool": False, "object": {}, "array": ["v"]}


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_invalid_value(wire, run, value):
    async def scenario():
        async with wire() as w:
            await w.join()
            frame: dict[str, object] = {"type": "set", "id": 13, "key": "k"}
            if value is not _MISSING:
                frame["value"] = value
            await w.refused(frame, "INVALID_VALUE", 13)
            assert await w.get("k") is None

    run(scenario())


@pytest.mark.parametrize(
    "char", ["a", "é", "€", "😀"], ids=["1-byte", "2-byte", "3-byte", "4-byte"]
)
def test_value_size_is_counted_in_utf8_bytes(wire, run, char):
    width = len(char.encode())
    at_limit = "a" * (1024 - width) + char
    over = "a" * (1025 - width) + char
    assert len(at_limit.encode()) == 1024 and len(over.encode()) == 1025

    async def scenario():
        async with wire() as w:
            await w.join()
            assert (await w.set("k", at_limit))["type"] == "ok"
            assert await w.get("k") == at_limit
            await w.refused(
                {"type": "set", "id": 14, "key": "k", "value": over}, "VALUE_TOO_LARGE", 14
            )
            assert await w.get("k") == at_limit  # R5.3

    run(scenario())


def test_value_too_large_outranks_key_limit(wire, run):
    async def scenario():
        async with wire() as w:
            await w.join()
            for n in range(100):
                assert (await w.set(f"k{n}", "v"))["type"] == "ok"
            frame = {"type": "set", "id": 15, "key": "new", "value": "€" * 342}
            await w.refused(frame, "VALUE_TOO_LARGE", 15)
            frame["value"] = "v"
            await w.refused(frame, "KEY_LIMIT_EXCEEDED", 15)

    run(scenario())


def test_failed_requests_change_nothing_and_notify_nobody(wire, run):
    async def scenario():
        async with wire() as w, wire() as observer:
            await w.join()
            await observer.join()
            await observer.observe("k")
            assert (await w.set("k", "before"))["type"] == "ok"
            assert (await observer.receive())["value"] == "before"
            await w.refused({"type": "set", "id": 20, "key": "k", "value": 5}, "INVALID_VALUE", 20)
            await w.refused({"type": "set", "id": 21, "key": "k"}, "INVALID_VALUE", 21)
            await w.refused(
                {"type": "set", "id": 22, "key": "k", "value": "x" * 1025}, "VALUE_TOO_LARGE", 22
            )
            await w.refused({"type": "set", "key": "k", "value": "y"}, "BAD_REQUEST", None)
            assert await w.get("k") == "before"
            # The next update the observer sees must be this one: nothing came in between.
            assert (await w.set("k", "after"))["type"] == "ok"
            assert (await observer.receive())["value"] == "after"

    run(scenario())


class TokenServer(ReferenceServer):
    """Admits only joins carrying the token 'letmein'."""

    def authorize(self, join: Join) -> str | None:
        return None if join.token == "letmein" else "a valid token is required"


@pytest.mark.parametrize("token", [None, "wrong"])
def test_unauthorized_join_is_answered_then_closed_with_1008(wire, run, token):
    async def scenario(url: str):
        async with wire(url) as w:
            frame = _join(id=30) if token is None else _join(id=30, token=token)
            await w.refused(frame, "UNAUTHORIZED", 30)
            assert await w.close_code() == 1008
        async with connect(url) as client:
            joined = await client.join("s", "p", token="letmein")
            assert joined.session == "s"

    with EmbeddedServer(TokenServer) as server:
        run(scenario(server.url))


def test_unauthorized_with_the_asyncio_client(run):
    async def scenario(url: str):
        async with connect(url) as client:
            with pytest.raises(StoreError) as refused:
                await client.join("s", "p", token="nope")
            assert refused.value.code is ErrorCode.UNAUTHORIZED
            await client.wait_closed()
            assert client.close_code == 1008
            with pytest.raises(ConnectionLost):
                await client.get("k")

    with EmbeddedServer(TokenServer) as server:
        run(scenario(server.url))
