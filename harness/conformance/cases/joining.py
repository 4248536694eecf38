"""Section 2 of the spec: joining a session (R2.1 to R2.5)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from harness.conformance.context import CaseContext
from harness.conformance.model import CaseSkipped, case, register
from harness.errors import ConnectionLost, StoreError
from harness.protocol import CLOSE_UNAUTHORIZED, ErrorCode

#: A token no real access check should accept: R2.4 is judged only when it is refused.
BOGUS_TOKEN = "store-harness-conformance:deliberately-invalid-token"


@case("R2.1-joined-echoes-session-participant-limits", "joined echoes the join and gives limits")
async def joined_echoes(ctx: CaseContext) -> None:
    client = await ctx.connect("alice")
    session = ctx.session("Ünïcødé ✓")
    joined = await client.join(session, "alice-1", "Alice Ünïcødé 😀", token=ctx.options.token)
    ctx.check_equal(joined.session, session, "session echoed in joined")
    ctx.check_equal(joined.participant.id, "alice-1", "participant id echoed in joined")
    ctx.check_equal(joined.participant.name, "Alice Ünïcødé 😀", "participant name echoed")
    ctx.measure("maxKeys", joined.limits.max_keys)
    ctx.measure("maxValueBytes", joined.limits.max_value_bytes)


@case("R2.1-empty-participant-name", "a participant name may be the empty string")
async def empty_name(ctx: CaseContext) -> None:
    client = await ctx.connect("alice")
    joined = await client.join(ctx.session(), "alice", "", token=ctx.options.token)
    ctx.check_equal(joined.participant.name, "", "participant name echoed in joined")


def _bad_join(tag: str, title: str, change: dict[str, Any]) -> None:
    async def bad_join(ctx: CaseContext) -> None:
        client = await ctx.connect("alice")
        message = ctx.join_message(1, ctx.session(), "alice") | change
        message = {k: v for k, v in message.items() if v is not _DROP}
        frame = orjson.dumps(message).decode()
        await ctx.expect_raw_error(client, frame, ErrorCode.BAD_REQUEST, title, reply_id=1)
        # The refused join must leave the connection able to join properly.
        await client.join(ctx.session(), "alice", "Alice", token=ctx.options.token)

    register(f"R2.2-join-{tag}", f"BAD_REQUEST for a join with {title}", bad_join)


_DROP = object()

_bad_join("session-missing", "no session", {"session": _DROP})
_bad_join("session-empty", "an empty session", {"session": ""})
_bad_join("session-not-string", "a numeric session", {"session": 42})
_bad_join("participant-missing", "no participant", {"participant": _DROP})
_bad_join("participant-not-object", "a string participant", {"participant": "alice"})
_bad_join(
    "participant-id-empty", "an empty participant id", {"participant": {"id": "", "name": "A"}}
)
_bad_join(
    "participant-id-not-string", "a numeric participant id", {"participant": {"id": 7, "name": "A"}}
)
_bad_join(
    "participant-name-not-string",
    "a null participant name",
    {"participant": {"id": "a", "name": None}},
)
_bad_join("token-not-string", "a numeric token", {"token": 12345})


@case("R2.2-second-join-refused", "a second join on a joined connection earns BAD_REQUEST")
async def second_join(ctx: CaseContext) -> None:
    session = ctx.session()
    client = await ctx.joined("alice", session)
    await client.set("k", "first")
    other = ctx.session("other")
    await ctx.expect_error(
        ErrorCode.BAD_REQUEST, client.join(other, "mallory", "M"), "a second join"
    )
    # The connection must still be in its first session.
    ctx.check_equal(await client.get("k"), "first", "get in the first session after a second join")


def _before_join(request_type: str) -> None:
    async def before_join(ctx: CaseContext) -> None:
        client = await ctx.connect("alice")
        requests = {
            "set": '{"type":"set","id":5,"key":"k","value":"v"}',
            "get": '{"type":"get","id":5,"key":"k"}',
            "observe": '{"type":"observe","id":5,"key":"k"}',
            "stopObserving": '{"type":"stopObserving","id":5,"observerId":"o1"}',
        }
        frame = requests[request_type]
        await ctx.expect_raw_error(
            client, frame, ErrorCode.NOT_JOINED, f"{request_type} before join", reply_id=5
        )
        await client.join(ctx.session(), "alice", "Alice", token=ctx.options.token)

    register(
        f"R2.3-{request_type.lower()}-before-join",
        f"{request_type} before a join earns NOT_JOINED",
        before_join,
    )


for _type in ("set", "get", "observe", "stopObserving"):
    _before_join(_type)


@case("R2.4-refused-join-unauthorized-then-closed", "a refused join earns UNAUTHORIZED, close 1008")
async def refused_join(ctx: CaseContext) -> None:
    client = await ctx.connect("mallory")
    try:
        await client.join(ctx.session(), "mallory", "Mallory", token=BOGUS_TOKEN)
    except StoreError as exc:
        ctx.check_equal(exc.code, ErrorCode.UNAUTHORIZED, "error code for a refused token")
    except ConnectionLost as exc:
        ctx.fail(
            "the connection closed before the join was answered", expected="UNAUTHORIZED", got=exc
        )
    else:
        raise CaseSkipped("the server admitted a bogus token, so it has no access check to test")
    try:
        async with asyncio.timeout(ctx.options.request_timeout):
            await client.wait_closed()
    except TimeoutError:
        ctx.fail("the connection stayed open after UNAUTHORIZED", expected="close 1008", got="open")
    ctx.check_equal(client.close_code, CLOSE_UNAUTHORIZED, "close code after UNAUTHORIZED")


@case("R2.5-one-participant-two-connections", "a participant joined twice has two scopes")
async def two_connections(ctx: CaseContext) -> None:
    session = ctx.session()
    phone = await ctx.joined("alice-phone", session, participant="alice")
    laptop = await ctx.joined("alice-laptop", session, participant="alice")
    observed = await ctx.observe(phone, "k")
    laptop_observed = await ctx.observe(laptop, "other")
    await laptop.set("k", "from-laptop")
    await ctx.expect_updates(observed, ["from-laptop"], "the phone's observer")
    ctx.check_equal(laptop_observed.values, [], "updates to the laptop's observer of another key")
    await ctx.expect_error(
        ErrorCode.UNKNOWN_OBSERVER,
        laptop.stop_observing(observed.observer_id),
        "stopObserving the phone's observer from the laptop",
    )
    await phone.set("k", "from-phone")
    await ctx.expect_updates(observed, ["from-laptop", "from-phone"], "the phone's observer")
