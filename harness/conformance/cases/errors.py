"""Section 5 of the spec, errors: R5.1 to R5.4."""

from __future__ import annotations

from harness.conformance.case import case, register
from harness.conformance.context import CaseContext
from harness.protocol import ErrorCode


@case("R5.1-error-carries-request-id", "an error reply carries the failed request's id")
async def error_carries_id(ctx: CaseContext) -> None:
    raw = await ctx.raw("alice")
    await raw.request(ctx.join_message(1, ctx.session(), "alice"), "joined")
    for request_id, frame in (
        (4242, '{"type":"get","id":4242,"key":""}'),
        (0, '{"type":"set","id":0,"key":"k","value":5}'),
        (77, '{"type":"teleport","id":77}'),
    ):
        reply = await raw.request(frame, "an error reply")
        ctx.check_equal(reply.get("type"), "error", f"reply to {frame}")
        ctx.check_equal(reply.get("id"), request_id, f"id of the error reply to {frame}")


@case("R5.1-null-id-when-unreadable", "an error for a frame with no readable id carries id null")
async def null_id(ctx: CaseContext) -> None:
    raw = await ctx.raw("alice")
    await raw.request(ctx.join_message(1, ctx.session(), "alice"), "joined")
    for frame in ("{not json", '{"type":"get","key":"k"}', '{"type":"get","id":"7","key":"k"}'):
        reply = await raw.request(frame, "an error reply")
        ctx.check_equal(reply.get("type"), "error", f"reply to {frame}")
        ctx.check(
            "id" in reply and reply["id"] is None,
            f"the error for {frame} has an id",
            expected="id null",
            got=reply,
        )


PRECEDENCE: list[tuple[str, str, bool, ErrorCode]] = [
    # tag, frame, joined first, expected code
    ("bad-request-before-not-joined", '{"type":"teleport","id":60}', False, ErrorCode.BAD_REQUEST),
    (
        "not-joined-before-invalid-key",
        '{"type":"set","id":60,"key":"","value":5}',
        False,
        ErrorCode.NOT_JOINED,
    ),
    (
        "invalid-key-before-invalid-value",
        '{"type":"set","id":60,"key":"","value":5}',
        True,
        ErrorCode.INVALID_KEY,
    ),
    (
        "invalid-key-before-too-large",
        '{"type":"set","id":60,"key":3,"value":"%s"}',
        True,
        ErrorCode.INVALID_KEY,
    ),
]


def _precedence(tag: str, frame: str, join_first: bool, code: ErrorCode) -> None:
    async def precedence(ctx: CaseContext) -> None:
        client = await ctx.connect("alice")
        if join_first:
            await ctx.join(client, ctx.session(), "alice", "Alice")
        text = frame.replace("%s", "x" * (ctx.limits.max_value_bytes + 1))
        await ctx.expect_raw_error(
            client, text, code, f"a request with several faults: {tag}", reply_id=60
        )

    register(f"R5.2-{tag}", f"{code} wins when a request has several faults", precedence)


for _args in PRECEDENCE:
    _precedence(*_args)


@case("R5.2-too-large-before-key-limit", "VALUE_TOO_LARGE wins over KEY_LIMIT_EXCEEDED")
async def too_large_before_limit(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    for i in range(ctx.limits.max_keys):
        await client.set(f"key-{i}", "v")
    big = "x" * (ctx.limits.max_value_bytes + 1)
    await ctx.expect_error(ErrorCode.VALUE_TOO_LARGE, client.set("new", big), "a too large new key")


@case("R5.3-failed-requests-change-nothing", "refused sets change nothing and notify no one")
async def failed_change_nothing(ctx: CaseContext) -> None:
    session = ctx.session()
    client = await ctx.joined("alice", session)
    watcher = await ctx.joined("bob", session)
    await client.set("k", "original")
    observed = await ctx.observe(watcher, "k")
    observed_new = await ctx.observe(watcher, "new")
    own = await ctx.observe(client, "k")
    big = "x" * (ctx.limits.max_value_bytes + 1)
    await ctx.expect_error(ErrorCode.VALUE_TOO_LARGE, client.set("k", big), "a too large value")
    if ctx.capabilities.wire_level:  # a store with its own protocol has no such frames
        await client.send_raw('{"type":"set","id":800,"key":"k","value":7}', reply_id=800)
        await client.send_raw('{"type":"set","id":801,"key":"k"}', reply_id=801)
    for i in range(ctx.limits.max_keys - 1):
        await client.set(f"fill-{i}", "v")
    await ctx.expect_error(ErrorCode.KEY_LIMIT_EXCEEDED, client.set("new", "v"), "a key past it")
    ctx.check_equal(await watcher.get("k"), "original", "get of the key after refused sets")
    ctx.check_equal(await watcher.get("new"), None, "get of the refused new key")
    await client.set("k", "sentinel")
    await client.delete("fill-0")
    await client.set("new", "sentinel")
    await ctx.expect_updates(observed, ["sentinel"], "an observer of the refused writes' key")
    await ctx.expect_updates(observed_new, ["sentinel"], "an observer of the refused new key")
    await ctx.expect_updates(own, ["sentinel"], "the refused writer's own observer of the key")


MALFORMED: list[tuple[str, str | bytes]] = [
    ("bad-json", '{"type":"get","id":1,'),
    ("not-object-array", '["get", 1, "k"]'),
    ("not-object-string", '"get"'),
    ("not-object-number", "42"),
    ("empty-frame", ""),
    ("binary-frame", b'{"type":"get","id":1,"key":"k"}'),
    ("unknown-type", '{"type":"teleport","id":9}'),
    ("type-missing", '{"id":9,"key":"k"}'),
    ("id-missing", '{"type":"get","key":"k"}'),
    ("id-string", '{"type":"get","id":"9","key":"k"}'),
    ("id-float", '{"type":"get","id":9.5,"key":"k"}'),
    ("id-boolean", '{"type":"get","id":true,"key":"k"}'),
    ("id-null", '{"type":"get","id":null,"key":"k"}'),
]


def _malformed(tag: str, frame: str | bytes) -> None:
    async def malformed(ctx: CaseContext) -> None:
        client = await ctx.joined("alice", ctx.session())
        await client.set("k", "v")
        reply_id = 9 if tag in ("unknown-type", "type-missing") else None
        binary = isinstance(frame, bytes)
        await ctx.expect_raw_error(
            client, frame, ErrorCode.BAD_REQUEST, f"a {tag} frame", reply_id=reply_id, binary=binary
        )
        # The connection must stay usable, and twice over.
        ctx.check_equal(await client.get("k"), "v", f"get after a {tag} frame")
        await ctx.expect_raw_error(
            client,
            frame,
            ErrorCode.BAD_REQUEST,
            f"a second {tag} frame",
            reply_id=reply_id,
            binary=binary,
        )
        await client.set("k", "still-usable")
        ctx.check_equal(await client.get("k"), "still-usable", f"get after two {tag} frames")

    register(
        f"R5.4-{tag}", f"BAD_REQUEST for a {tag} frame; the connection stays usable", malformed
    )


for _tag, _frame in MALFORMED:
    _malformed(_tag, _frame)


@case("R5.4-malformed-before-join", "malformed frames before a join earn BAD_REQUEST, then join")
async def malformed_before_join(ctx: CaseContext) -> None:
    client = await ctx.connect("alice")
    await ctx.expect_raw_error(client, "nope", ErrorCode.BAD_REQUEST, "bad JSON before a join")
    await ctx.expect_raw_error(
        client, b"\x00\x01", ErrorCode.BAD_REQUEST, "binary before a join", binary=True
    )
    await ctx.join(client, ctx.session(), "alice", "Alice")
