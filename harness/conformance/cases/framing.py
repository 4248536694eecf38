"""Section 1 of the spec: transport and framing (R1.1 to R1.7)."""

from __future__ import annotations

import asyncio

from harness.conformance.case import case
from harness.conformance.context import CaseContext
from harness.errors import ConnectionLost
from harness.protocol import CLOSE_FRAME_TOO_LARGE, ErrorCode


@case("R1.1-replies-are-json-text", "every reply to the basic requests is one JSON text frame")
async def replies_are_text(ctx: CaseContext) -> None:
    # The judging is the context's: any binary frame or schema break fails the case.
    client = await ctx.joined("alice", ctx.session())
    observer = await client.observe("k")
    await client.set("k", "v")
    await client.get("k")
    await client.stop_observing(observer)


@case("R1.2-reply-echoes-id", "each reply carries its request's id, whatever integer it is")
async def reply_echoes_id(ctx: CaseContext) -> None:
    raw = await ctx.raw("alice")
    ids = [987654321, 0, -7, 2**53 - 1]
    reply = await raw.request(ctx.join_message(ids[0], ctx.session(), "alice"), "the joined reply")
    ctx.check_equal(reply.get("id"), ids[0], "id of the joined reply")
    for request_id in ids[1:]:
        reply = await raw.request({"type": "get", "id": request_id, "key": "k"}, "a value reply")
        ctx.check_equal(reply.get("id"), request_id, "id of the value reply")


#: The interoperable integers of I-JSON (RFC 7493 section 2.2): ids beyond may be rounded.
MAX_SAFE_ID = 2**53 - 1


@case(
    "R1.2-out-of-range-id-keeps-connection",
    "an id beyond ±(2^53-1) may earn any answer, but the connection stays usable",
)
async def out_of_range_id(ctx: CaseContext) -> None:
    raw = await ctx.raw("alice")
    await raw.request(ctx.join_message(1, ctx.session(), "alice"), "the joined reply")
    for request_id in (MAX_SAFE_ID + 2, -(MAX_SAFE_ID + 2), 2**64 + 1):
        frame = f'{{"type":"get","id":{request_id},"key":"k"}}'
        # Any reply or error conforms (R1.2); only the frame's shape is judged (R1.4).
        await raw.request(frame, f"an answer to a get with id {request_id}")
    reply = await raw.request({"type": "get", "id": 5, "key": "k"}, "a value reply")
    ctx.check(
        reply.get("type") == "value" and reply.get("id") == 5,
        "after requests with ids outside ±(2^53-1), a get with id 5 was not answered as one",
        expected='{"type":"value","id":5,...}',
        got=reply,
    )


@case("R1.2-updates-carry-no-id", "update notifications carry no id")
async def updates_carry_no_id(ctx: CaseContext) -> None:
    raw = await ctx.raw("alice")
    await raw.request(ctx.join_message(1, session := ctx.session(), "alice"), "joined")
    await raw.request({"type": "observe", "id": 2, "key": "k"}, "observing")
    writer = await ctx.joined("bob", session)
    await writer.set("k", "v")
    update = await raw.receive("the update")
    ctx.check_equal(update.get("type"), "update", "type of the frame after a write")
    ctx.check("id" not in update, "an update carried an id", expected="no id", got=update)


@case("R1.3-pipelined-replies-in-order", "replies to 60 pipelined requests come in request order")
async def pipelined_in_order(ctx: CaseContext) -> None:
    # The client's core rejects a reply that overtakes an earlier one, quoting it.
    client = await ctx.joined("alice", ctx.session())
    requests = []
    for i in range(20):
        requests += [
            client.set(f"k{i % 5}", f"v{i}"),
            client.get(f"k{i % 5}"),
            client.observe("k0"),
        ]
    results = await asyncio.gather(*requests)
    for i in range(20):
        ctx.check_equal(results[3 * i + 1], f"v{i}", f"pipelined get #{i} after its set")


@case("R1.4-every-reply-type-matches-schema", "every reply type and an update match the schema")
async def every_type_matches_schema(ctx: CaseContext) -> None:
    session = ctx.session()
    client = await ctx.joined("alice", session, name="Alice Ünïcødé")
    observer = await client.observe("k")
    await client.set("k", "v")
    await client.set("k", None)
    await client.get("k")
    await client.send_raw("not json")
    await client.stop_observing(observer)
    await ctx.expect_error(ErrorCode.INVALID_KEY, client.get(""), "get of an empty key")
    await ctx.settle()


@case("R1.5-unknown-fields-ignored", "requests with extra fields work as without them")
async def unknown_fields_ignored(ctx: CaseContext) -> None:
    raw = await ctx.raw("alice")
    join = ctx.join_message(1, ctx.session(), "alice") | {"device": "phone", "v": 2}
    join["participant"] = join["participant"] | {"avatar": "a.png"}
    reply = await raw.request(join, "joined")
    ctx.check_equal(reply.get("type"), "joined", "reply to a join with extra fields")
    requests = [
        {"type": "set", "id": 2, "key": "k", "value": "v", "ttl": 30},
        {"type": "get", "id": 3, "key": "k", "consistent": True},
        {"type": "observe", "id": 4, "key": "k", "initial": True},
    ]
    expected = ["ok", "value", "observing"]
    for request, reply_type in zip(requests, expected, strict=True):
        reply = await raw.request(request, reply_type)
        ctx.check_equal(reply.get("type"), reply_type, f"reply to a {request['type']} with extras")
    ctx.check_equal(reply.get("id"), 4, "id of the observing reply")
    stop = {"type": "stopObserving", "id": 5, "observerId": reply.get("observerId"), "x": []}
    reply = await raw.request(stop, "ok")
    ctx.check_equal(reply.get("type"), "ok", "reply to a stopObserving with extras")


@case(
    "R1.6-oversized-frame-closes-only-that-connection",
    "a 1 MiB frame is refused or closes (1009) only its own connection",
    slow=True,
)
async def oversized_frame(ctx: CaseContext) -> None:
    session = ctx.session()
    bystander = await ctx.joined("bob", session)
    observed = await ctx.observe(bystander, "k")
    sender = await ctx.joined("alice", session)
    frame = '{"type":"set","id":99,"key":"big","value":"' + "x" * (1 << 20) + '"}'
    try:
        error = await sender.send_raw(frame, reply_id=99)
        ctx.check_equal(error.code, ErrorCode.VALUE_TOO_LARGE, "error for a 1 MiB value")
    except ConnectionLost as exc:
        ctx.check_equal(exc.close_code, CLOSE_FRAME_TOO_LARGE, "close code for an oversized frame")
    writer = await ctx.joined("carol", session)
    await writer.set("k", "after")
    ctx.check_equal(await bystander.get("k"), "after", "the bystander's get after the big frame")
    await ctx.expect_updates(observed, ["after"], "the bystander's observer")


@case("R1.7-lone-surrogate-refused", "a value holding an escaped lone surrogate is refused")
async def lone_surrogate(ctx: CaseContext) -> None:
    raw = await ctx.raw("alice")
    await raw.request(ctx.join_message(1, ctx.session(), "alice"), "the joined reply")
    frame = '{"type":"set","id":900,"key":"k","value":"\\ud800"}'
    reply = await raw.request(frame, "the answer to a set whose value is a lone surrogate")
    if reply.get("type") == "error" and reply.get("code") == ErrorCode.BAD_REQUEST:
        ctx.check(
            reply.get("id") in (900, None),
            "the BAD_REQUEST for a lone surrogate carries neither the request's id nor null",
            expected="id 900 or null (R5.1)",
            got=reply,
        )
        return
    if reply.get("type") == "ok":
        ctx.fail(
            "the server accepted a value holding an escaped lone surrogate (answered ok to "
            "request 900); this is allowed (RFC 8259 section 8.2), but refusing it with "
            "BAD_REQUEST is recommended",
            expected="error BAD_REQUEST (recommended)",
            got=reply,
        )
    ctx.fail(
        "a set whose value is a lone surrogate was answered neither with BAD_REQUEST "
        "(recommended) nor with ok (allowed)",
        expected="error BAD_REQUEST, or ok",
        got=reply,
    )
