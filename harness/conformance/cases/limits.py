"""The store's limits: value size in UTF-8 (R3.5) and keys per session (R3.6, R3.7).

Sizes come from the limits the server advertised in its joined reply, never
from the spec's defaults.
"""

from __future__ import annotations

import asyncio

from harness.client.aio import StoreClient
from harness.conformance.case import case, register
from harness.conformance.context import CaseContext
from harness.protocol import ErrorCode, utf8_length

#: Name, one character of that UTF-8 width.
WIDTHS = (("ascii", "a"), ("utf8-2byte", "é"), ("utf8-3byte", "€"), ("utf8-4byte", "😀"))


def sized_value(char: str, size: int) -> str:
    """A value of exactly ``size`` UTF-8 bytes, as many ``char`` as fit, padded with ASCII."""
    width = len(char.encode())
    return char * (size // width) + "a" * (size % width)


def _size_case(tag: str, char: str, over: bool) -> None:
    async def size_case(ctx: CaseContext) -> None:
        limit = ctx.limits.max_value_bytes
        value = sized_value(char, limit + 1 if over else limit)
        assert utf8_length(value) == (limit + 1 if over else limit)
        client = await ctx.joined("alice", ctx.session())
        if over:
            await client.set("k", "before")
            what = f"a value of {limit + 1} bytes ({len(value)} characters)"
            await ctx.expect_error(ErrorCode.VALUE_TOO_LARGE, client.set("k", value), what)
            ctx.check_equal(await client.get("k"), "before", "get after the refused set")
        else:
            await client.set("k", value)
            ctx.check_equal(await client.get("k"), value, f"get of a {limit}-byte value")

    where = "one past" if over else "exactly at"
    register(
        f"R3.5-{tag}-{'over' if over else 'at'}",
        f"a value of {tag} characters {where} maxValueBytes",
        size_case,
    )


for _tag, _char in WIDTHS:
    _size_case(_tag, _char, over=False)
    _size_case(_tag, _char, over=True)


async def fill(client: StoreClient, count: int, prefix: str = "key") -> None:
    """Create ``count`` keys, pipelined in batches to keep the case quick."""
    for start in range(0, count, 25):
        batch = range(start, min(start + 25, count))
        await asyncio.gather(*(client.set(f"{prefix}-{i}", str(i)) for i in batch))


@case("R3.6-sequential-fill", "maxKeys keys are accepted and one more is refused")
async def sequential_fill(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    limit = ctx.limits.max_keys
    for i in range(limit):
        await client.set(f"key-{i}", str(i))
    await ctx.expect_error(
        ErrorCode.KEY_LIMIT_EXCEEDED, client.set("one-too-many", "x"), f"key number {limit + 1}"
    )
    ctx.check_equal(await client.get("one-too-many"), None, "get of the refused key")


@case("R3.6-overwrite-at-limit", "at the limit, overwriting an existing key succeeds")
async def overwrite_at_limit(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    await fill(client, ctx.limits.max_keys)
    await client.set("key-0", "overwritten")
    ctx.check_equal(await client.get("key-0"), "overwritten", "get of the overwritten key")


@case("R3.6-delete-frees-slot", "at the limit, a delete makes room for one new key")
async def delete_frees_slot(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    await fill(client, ctx.limits.max_keys)
    await client.delete("key-0")
    await client.set("new-key", "v")
    await ctx.expect_error(ErrorCode.KEY_LIMIT_EXCEEDED, client.set("newer", "v"), "a key past it")
    ctx.check_equal(await client.get("new-key"), "v", "get of the key created after a delete")


@case("R3.6-empty-string-counts", "a key holding the empty string counts toward the limit")
async def empty_string_counts(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    limit = ctx.limits.max_keys
    await fill(client, limit - 1)
    await client.set("empty", "")
    await ctx.expect_error(ErrorCode.KEY_LIMIT_EXCEEDED, client.set("x", "v"), "a key past it")


@case("R3.6-participants-count-together", "keys written by several participants share the limit")
async def participants_together(ctx: CaseContext) -> None:
    session = ctx.session()
    clients = [await ctx.joined(f"p{i}", session) for i in range(4)]
    limit = ctx.limits.max_keys
    for i in range(limit):
        await clients[i % 4].set(f"key-{i}", str(i))
    for i, client in enumerate(clients):
        await ctx.expect_error(
            ErrorCode.KEY_LIMIT_EXCEEDED, client.set(f"extra-{i}", "x"), f"p{i}'s key past it"
        )


@case("R3.7-limit-per-session", "a full session does not stop another session's writes")
async def limit_per_session(ctx: CaseContext) -> None:
    full = await ctx.joined("alice", ctx.session("full"))
    await fill(full, ctx.limits.max_keys)
    other = await ctx.joined("bob", ctx.session("other"))
    await fill(other, ctx.limits.max_keys, prefix="other")
    ctx.check_equal(await other.get("other-0"), "0", "get in the second session")
