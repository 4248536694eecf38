"""Section 2 of the spec: joining a session (R2.1 to R2.5), with token access (R2.4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import jwt
import orjson

from harness.client.aio import StoreClient
from harness.conformance.case import case, register
from harness.conformance.context import CaseContext
from harness.errors import CaseSkipped, ConnectionLost, StoreError
from harness.protocol import CLOSE_UNAUTHORIZED, ErrorCode
from harness.protocol.auth import mint_token

#: A token no real access check should accept: R2.4 is judged only when it is refused.
BOGUS_TOKEN = "store-harness-conformance:deliberately-invalid-token"


@case("R2.1-joined-echoes-session-participant-limits", "joined echoes the join and gives limits")
async def joined_echoes(ctx: CaseContext) -> None:
    client = await ctx.connect("alice")
    session = ctx.session("Ünïcødé ✓")
    joined = await ctx.join(client, session, "alice-1", "Alice Ünïcødé 😀")
    ctx.check_equal(joined.session, session, "session echoed in joined")
    ctx.check_equal(joined.participant.id, "alice-1", "participant id echoed in joined")
    ctx.check_equal(joined.participant.name, "Alice Ünïcødé 😀", "participant name echoed")
    ctx.measure("maxKeys", joined.limits.max_keys)
    ctx.measure("maxValueBytes", joined.limits.max_value_bytes)


@case("R2.1-empty-participant-name", "a participant name may be the empty string")
async def empty_name(ctx: CaseContext) -> None:
    client = await ctx.connect("alice")
    joined = await ctx.join(client, ctx.session(), "alice", "")
    ctx.check_equal(joined.participant.name, "", "participant name echoed in joined")


def _bad_join(tag: str, title: str, change: dict[str, Any]) -> None:
    async def bad_join(ctx: CaseContext) -> None:
        client = await ctx.connect("alice")
        message = ctx.join_message(1, ctx.session(), "alice") | change
        message = {k: v for k, v in message.items() if v is not _DROP}
        frame = orjson.dumps(message).decode()
        await ctx.expect_raw_error(client, frame, ErrorCode.BAD_REQUEST, title, reply_id=1)
        # The refused join must leave the connection able to join properly.
        await ctx.join(client, ctx.session(), "alice", "Alice")

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
        await ctx.join(client, ctx.session(), "alice", "Alice")

    register(
        f"R2.3-{request_type.lower()}-before-join",
        f"{request_type} before a join earns NOT_JOINED",
        before_join,
    )


for _type in ("set", "get", "observe", "stopObserving"):
    _before_join(_type)


def _check_unauthorized(ctx: CaseContext, error: StoreError, what: str) -> None:
    """The refusal is UNAUTHORIZED, and its message does not give the secret away (R2.4)."""
    ctx.check_equal(error.code, ErrorCode.UNAUTHORIZED, f"error code for {what}")
    _check_no_secret(ctx, error.message, f"the UNAUTHORIZED message for {what}")


def _check_no_secret(ctx: CaseContext, text: str, where: str) -> None:
    secret = ctx.options.token_secret
    # The whole secret, or a long run of it: a message that quotes part of the key
    # has leaked it as surely as one that quotes all of it.
    if secret and any(secret[i : i + 16] in text for i in range(0, max(1, len(secret) - 15))):
        ctx.fail(
            f"{where} contains the server's token secret",
            expected="a message that never contains the secret",
            got="a message holding the secret (not quoted here, so reports stay safe to share)",
        )


async def _expect_closed_unauthorized(ctx: CaseContext, client: StoreClient) -> None:
    """After UNAUTHORIZED the server closes the connection with 1008 (R2.4)."""
    try:
        async with asyncio.timeout(ctx.options.request_timeout):
            await client.wait_closed()
    except TimeoutError:
        ctx.fail("the connection stayed open after UNAUTHORIZED", expected="close 1008", got="open")
    ctx.check_equal(client.close_code, CLOSE_UNAUTHORIZED, "close code after UNAUTHORIZED")
    _check_no_secret(ctx, client.close_reason, "the close reason after UNAUTHORIZED")


@case("R2.4-refused-join-unauthorized-then-closed", "a refused join earns UNAUTHORIZED, close 1008")
async def refused_join(ctx: CaseContext) -> None:
    client = await ctx.connect("mallory")
    try:
        await client.join(ctx.session(), "mallory", "Mallory", token=BOGUS_TOKEN)
    except StoreError as exc:
        _check_unauthorized(ctx, exc, "a refused token")
    except ConnectionLost as exc:
        ctx.fail(
            "the connection closed before the join was answered", expected="UNAUTHORIZED", got=exc
        )
    else:
        raise CaseSkipped("the server admitted a bogus token, so it has no access check to test")
    await _expect_closed_unauthorized(ctx, client)


# --- Token access (R2.4): each case needs the server's secret to mint its tokens. ------

#: Tokens that expired this long ago are expired under any clock-skew allowance.
LONG_AGO_S = 3600.0


def _secret(ctx: CaseContext) -> str:
    if ctx.options.token_secret is None:
        raise CaseSkipped(
            "no --token-secret given: the access cases mint tokens with the server's secret"
        )
    return ctx.options.token_secret


def _unsigned(session: str, participant: str) -> str:
    """A token with the right claims and "alg": "none": no signature at all."""
    claims = {"session": session, "participant": participant, "exp": int(time.time() + 3600)}
    return jwt.encode(claims, None, algorithm="none")


def _access_case(
    tag: str, title: str, make_token: Callable[[str, str, str], str | None], what: str
) -> None:
    """A join as "mallory" whose token ``make_token(secret, session, participant)`` gives
    must be refused with UNAUTHORIZED and the connection closed with 1008."""

    async def refused(ctx: CaseContext) -> None:
        secret = _secret(ctx)
        session = ctx.session()
        token = make_token(secret, session, "mallory")
        client = await ctx.connect("mallory")
        ctx.note(f"joining with {what}")
        try:
            await client.join(session, "mallory", "Mallory", token=token)
        except StoreError as exc:
            _check_unauthorized(ctx, exc, what)
        except ConnectionLost as exc:
            ctx.fail(
                "the connection closed before the join was answered",
                expected="UNAUTHORIZED",
                got=exc,
            )
        else:
            ctx.fail(f"a join with {what} was admitted", expected="UNAUTHORIZED", got="joined")
        await _expect_closed_unauthorized(ctx, client)

    register(f"R2.4-{tag}", f"UNAUTHORIZED and close 1008 for {title}", refused)


_access_case("missing-token", "a join without a token", lambda *_: None, "no token")
_access_case(
    "expired-token",
    "an expired token",
    lambda secret, session, who: mint_token(secret, session, who, 60, now=time.time() - LONG_AGO_S),
    "a token that expired an hour ago",
)
_access_case(
    "wrong-signature",
    "a token signed with another secret",
    lambda secret, session, who: mint_token("not-" + secret, session, who),
    "a token signed with another secret",
)
_access_case(
    "unsigned-token",
    'an unsigned token ("alg": "none")',
    lambda secret, session, who: _unsigned(session, who),
    'an unsigned token ("alg": "none")',
)
_access_case(
    "token-for-another-session",
    "a token minted for another session",
    lambda secret, session, who: mint_token(secret, session + "-other", who),
    "a token for another session",
)
_access_case(
    "token-for-another-participant",
    "a token minted for another participant id",
    lambda secret, session, who: mint_token(secret, session, "alice"),
    "a token for another participant id",
)


@case("R2.4-valid-token-admitted", "a join with a token minted for it is admitted")
async def valid_token(ctx: CaseContext) -> None:
    secret = _secret(ctx)
    session = ctx.session()
    client = await ctx.connect("alice")
    joined = await client.join(
        session, "alice", "Alice", token=mint_token(secret, session, "alice")
    )
    ctx.check_equal(joined.session, session, "session echoed in joined")
    await client.set("k", "admitted")
    ctx.check_equal(await client.get("k"), "admitted", "get after a join with a valid token")


@case("R2.5-one-participant-two-connections", "a participant joined twice has two scopes")
async def two_connections(ctx: CaseContext) -> None:
    # observerIds are scoped per connection (R2.5): the laptop may be issued the very id
    # the phone holds, and then that id names the laptop's own observer on the laptop.
    session = ctx.session()
    phone = await ctx.joined("alice-phone", session, participant="alice")
    laptop = await ctx.joined("alice-laptop", session, participant="alice")
    observed = await ctx.observe(phone, "k")
    await ctx.expect_error(
        ErrorCode.UNKNOWN_OBSERVER,
        laptop.stop_observing(observed.observer_id),
        "stopObserving the phone's observer from the laptop, which holds no observer",
    )
    laptop_observed = await ctx.observe(laptop, "other")
    if laptop_observed.observer_id == observed.observer_id:
        ctx.note(
            f"both connections hold observerId {observed.observer_id!r}: ids are per connection"
        )
    await laptop.set("k", "from-laptop")
    await ctx.expect_updates(observed, ["from-laptop"], "the phone's observer")
    ctx.check_equal(laptop_observed.values, [], "updates to the laptop's observer of another key")
    await laptop.stop_observing(laptop_observed.observer_id)
    await phone.set("k", "from-phone")
    await phone.set("other", "after-the-laptop-stopped")
    await ctx.expect_updates(
        observed,
        ["from-laptop", "from-phone"],
        "the phone's observer after the laptop stopped its own",
    )
    ctx.check_equal(laptop_observed.values, [], "updates to the laptop's stopped observer")
