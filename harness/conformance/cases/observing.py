"""Section 4 of the spec, observing: R4.1, R4.2, R4.4 to R4.6 and R4.8.

Where a case must show that an update did *not* come, it writes a later
sentinel value to the same key first: updates of a key arrive in the order
applied (R4.3), so a forbidden update would show up before the sentinel. The
short settle wait after that only catches strays that come later still.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.conformance.case import case, register
from harness.conformance.cases.limits import sized_value
from harness.conformance.context import CaseContext
from harness.protocol import DEFAULT_LIMITS, ErrorCode


@case("R4.1-writer-notified", "the writer's own observer of the key is notified")
async def writer_notified(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    observed = await ctx.observe(client, "k")
    await client.set("k", "mine")
    await ctx.expect_updates(observed, ["mine"], "the writer's own observer")


@case("R4.1-other-participants-notified", "observers on other connections are notified")
async def others_notified(ctx: CaseContext) -> None:
    session = ctx.session()
    writer = await ctx.joined("alice", session)
    observers = [await ctx.joined(f"p{i}", session) for i in range(3)]
    observed = [await ctx.observe(c, "k") for c in observers]
    await writer.set("k", "v1")
    await writer.set("k", "v2")
    for i, one in enumerate(observed):
        await ctx.expect_updates(one, ["v1", "v2"], f"p{i}'s observer")


@case("R4.1-no-initial-value", "observe delivers no update for the current value")
async def no_initial_value(ctx: CaseContext) -> None:
    session = ctx.session()
    writer = await ctx.joined("alice", session)
    await writer.set("k", "existing")
    observer = await ctx.joined("bob", session)
    observed = await ctx.observe(observer, "k")
    await writer.set("k", "sentinel")
    await ctx.expect_updates(observed, ["sentinel"], "an observer of a key that had a value")


@case("R4.1-key-scoping", "observers of other keys get nothing, even of prefixed keys")
async def key_scoping(ctx: CaseContext) -> None:
    session = ctx.session()
    writer = await ctx.joined("alice", session)
    observer = await ctx.joined("bob", session)
    poll = await ctx.observe(observer, "poll")
    poll_2 = await ctx.observe(observer, "poll-2")
    await writer.set("poll-2", "a")
    await writer.set("POLL", "b")
    await writer.set("pol", "c")
    await writer.set("poll", "sentinel")
    await ctx.expect_updates(poll, ["sentinel"], "the observer of 'poll'")
    await ctx.expect_updates(poll_2, ["a"], "the observer of 'poll-2'")


@case("R4.1-exactly-once", "each of 30 writes reaches each observer once")
async def exactly_once(ctx: CaseContext) -> None:
    session = ctx.session()
    writer = await ctx.joined("alice", session)
    observer = await ctx.joined("bob", session)
    observed = await ctx.observe(observer, "k")
    values = [f"v{i}" for i in range(30)]
    for value in values:
        await writer.set("k", value)
    await ctx.expect_updates(observed, values, "an observer of 30 writes")


@case("R4.2-update-fields", "an update names its observer, key, value and the writer")
async def update_fields(ctx: CaseContext) -> None:
    # observerId and key are checked by the client's core against the observers it holds.
    session = ctx.session()
    writer = await ctx.joined("alice", session, participant="alice-7", name="Alice Ünïcødé")
    observer = await ctx.joined("bob", session, participant="bob-3", name="Bob")
    observed = await ctx.observe(observer, "k")
    mine = await ctx.observe(writer, "k")
    await writer.set("k", "v")
    await observer.set("k", None)
    await ctx.expect_updates(observed, ["v", None], "bob's observer")
    await ctx.expect_updates(mine, ["v", None], "alice's observer")
    who = [(by.id, by.name) for _, by in observed.updates]
    expected = [("alice-7", "Alice Ünïcødé"), ("bob-3", "Bob")]
    ctx.check_equal(who, expected, "updatedBy of bob's updates")
    ctx.check_equal([(b.id, b.name) for _, b in mine.updates], expected, "updatedBy of alice's")


def _intact_values(limit: int) -> dict[str, str]:
    """Values a store may cut short or re-encode on the way to an observer (R4.2)."""
    return {
        f"{limit} ASCII bytes": sized_value("a", limit),
        f"{limit} bytes of 2-byte characters": sized_value("é", limit),
        f"{limit} bytes of 3-byte characters": sized_value("€", limit),
        f"{limit} bytes of 4-byte characters": sized_value("😀", limit),
        "escapes and separators": 'say "hi" \\ \n\t\x00 \u2028\u2029 \ufeff',
        "combining marks": "e\u0301 Zoe\u0308 \u0928\u093f",
    }


@case(
    "R4.2-update-carries-written-value-intact", "long and non-ASCII values reach observers intact"
)
async def update_value_intact(ctx: CaseContext) -> None:
    # Every path a value travels: the writer's own observer, another connection's
    # observer, a get on either connection and one from a connection opened afterwards.
    session = ctx.session()
    writer = await ctx.joined("alice", session)
    reader = await ctx.joined("bob", session)
    # A store with no value limit gets values as long as the store protocol's default limit.
    value_limit = ctx.limits.max_value_bytes if ctx.has_limits else DEFAULT_LIMITS.max_value_bytes
    values = _intact_values(value_limit)
    expectations = []
    for n, (what, value) in enumerate(values.items()):
        key = f"k{n}"
        mine, theirs = await ctx.observe(writer, key), await ctx.observe(reader, key)
        await writer.set(key, value)
        expectations += [
            (mine, [value], f"the writer's own observer of {what}"),
            (theirs, [value], f"another connection's observer of {what}"),
        ]
        ctx.check_equal(await reader.get(key), value, f"another connection's get of {what}")
        ctx.check_equal(await writer.get(key), value, f"the writer's get of {what}")
    await ctx.expect_each(expectations)
    latecomer = await ctx.joined("carol", session)
    for n, (what, value) in enumerate(values.items()):
        ctx.check_equal(await latecomer.get(f"k{n}"), value, f"a new connection's get of {what}")


@case("R4.4-several-observers-one-connection", "two observers of one key each get every update")
async def several_observers(ctx: CaseContext) -> None:
    session = ctx.session()
    client = await ctx.joined("alice", session)
    first = await ctx.observe(client, "k")
    second = await ctx.observe(client, "k")
    other = await ctx.observe(client, "j")
    ctx.check(
        first.observer_id != second.observer_id,
        "two observers got the same observerId",
        expected="distinct ids",
        got=first.observer_id,
    )
    writer = await ctx.joined("bob", session)
    await writer.set("k", "v1")
    await client.set("k", "v2")
    await writer.set("j", "w")
    await ctx.expect_updates(first, ["v1", "v2"], "the first observer of 'k'")
    await ctx.expect_updates(second, ["v1", "v2"], "the second observer of 'k'")
    await ctx.expect_updates(other, ["w"], "the observer of 'j'")
    await client.stop_observing(first.observer_id)
    await writer.set("k", "v3")
    await ctx.expect_updates(
        second, ["v1", "v2", "v3"], "the second observer after the first stops"
    )
    ctx.check_equal(first.values, ["v1", "v2"], "the stopped first observer's updates")


@case("R4.5-stop-ends-deliveries", "no update follows stopObserving's ok")
async def stop_ends(ctx: CaseContext) -> None:
    session = ctx.session()
    client = await ctx.joined("alice", session)
    stopped = await ctx.observe(client, "k")
    witness = await ctx.observe(await ctx.joined("bob", session), "k")
    await client.set("k", "before")
    await ctx.expect_updates(stopped, ["before"], "the observer before it stops")
    await client.stop_observing(stopped.observer_id)
    await client.set("k", "after")
    await ctx.expect_updates(witness, ["before", "after"], "a witness observer")
    ctx.check_equal(stopped.values, ["before"], "updates of the stopped observer")


def _unknown_observer_case(tag: str, title: str) -> None:
    async def unknown(ctx: CaseContext) -> None:
        client = await ctx.joined("alice", ctx.session())
        if tag == "never-issued":
            observer_id = "no-such-observer-7f3a"
        else:
            observer_id = await client.observe("k")
            await client.stop_observing(observer_id)
        await ctx.expect_error(
            ErrorCode.UNKNOWN_OBSERVER, client.stop_observing(observer_id), f"stopObserving {title}"
        )

    register(f"R4.5-{tag}-observer", f"UNKNOWN_OBSERVER for stopObserving {title}", unknown)


_unknown_observer_case("never-issued", "an id never issued")
_unknown_observer_case("already-stopped", "an observer already stopped")


@case(
    "R4.5-observer-id-missing-or-not-string", "UNKNOWN_OBSERVER when observerId is missing or bad"
)
async def observer_id_bad(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    for frame in (
        '{"type":"stopObserving","id":50}',
        '{"type":"stopObserving","id":50,"observerId":1}',
    ):
        await ctx.expect_raw_error(client, frame, ErrorCode.UNKNOWN_OBSERVER, frame, reply_id=50)


@case("R4.5-other-connections-observer", "stopObserving another connection's observer is refused")
async def other_connections_observer(ctx: CaseContext) -> None:
    session = ctx.session()
    owner = await ctx.joined("alice", session)
    observed = await ctx.observe(owner, "k")
    intruder = await ctx.joined("mallory", session)
    await ctx.expect_error(
        ErrorCode.UNKNOWN_OBSERVER,
        intruder.stop_observing(observed.observer_id),
        "stopObserving another connection's observer",
    )
    await intruder.set("k", "still-observed")
    await ctx.expect_updates(observed, ["still-observed"], "the owner's observer")


@case("R4.6-disconnect-keeps-writes", "a closed connection's writes stay; others keep observing")
async def disconnect_keeps_writes(ctx: CaseContext) -> None:
    session = ctx.session()
    leaver = await ctx.joined("alice", session)
    stayer = await ctx.joined("bob", session)
    observed = await ctx.observe(stayer, "k")
    await ctx.observe(leaver, "k")
    await leaver.set("k", "written-before-leaving")
    await leaver.set("other", "also-kept")
    await leaver.close()
    # The server may notice the close a moment after the client does.
    for _ in range(3):
        await ctx.settle()
        got = [await stayer.get("k"), await stayer.get("other")]
        ctx.check_equal(got, ["written-before-leaving", "also-kept"], "gets after the writer left")
    await stayer.set("k", "later")
    await ctx.expect_updates(
        observed, ["written-before-leaving", "later"], "the remaining observer"
    )


@case("R4.6-reconnect-observes-afresh", "a new connection of the same participant starts clean")
async def reconnect(ctx: CaseContext) -> None:
    session = ctx.session()
    first = await ctx.joined("alice", session)
    old_id = await first.observe("k")
    await first.close()
    again = await ctx.joined("alice-again", session, participant="alice")
    await ctx.expect_error(
        ErrorCode.UNKNOWN_OBSERVER,
        again.stop_observing(old_id),
        "stopping a closed connection's observer from a new connection",
    )
    observed = await ctx.observe(again, "k")
    await again.set("k", "v")
    await ctx.expect_updates(observed, ["v"], "the new connection's observer")


async def _frames_until_reply(ctx: CaseContext, raw: Any, reply_id: int) -> list[dict[str, Any]]:
    """Frames the raw connection receives, up to and including the reply to ``reply_id``."""
    frames = []
    while True:
        frame = await raw.receive(f"the reply to request {reply_id}")
        frames.append(frame)
        if frame.get("id") == reply_id and frame.get("type") != "update":
            return frames


def _check_observing_first(ctx: CaseContext, frames: list[dict[str, Any]], what: str) -> None:
    """The observing reply is the last frame; no update came before it (R4.8)."""
    reply = frames[-1]
    ctx.check(
        reply.get("type") == "observing",
        f"observe {what} was not answered with observing",
        expected="observing",
        got=reply,
    )
    early = [f for f in frames[:-1] if f.get("type") == "update"]
    ctx.check(
        not early,
        f"an update came before the observing reply that announced its observer ({what})",
        expected="the observing reply first, then updates for its observer",
        got=early[0] if early else "",
    )


@case(
    "R4.8-observing-before-own-write", "observing precedes the update of a write pipelined after it"
)
async def observing_before_own_write(ctx: CaseContext) -> None:
    raw = await ctx.raw("alice")
    await raw.request(ctx.join_message(1, ctx.session(), "alice"), "the joined reply")
    await raw.send({"type": "observe", "id": 2, "key": "k"})
    await raw.send({"type": "set", "id": 3, "key": "k", "value": "v"})
    frames = await _frames_until_reply(ctx, raw, 2)
    _check_observing_first(ctx, frames, "pipelined with a set of its key")
    rest = await _frames_until_reply(ctx, raw, 3)
    if not any(f.get("type") == "update" for f in frames + rest):
        rest.append(await raw.receive("the update of the pipelined set"))
    updates = [f for f in frames + rest if f.get("type") == "update"]
    ctx.check_equal([u.get("value") for u in updates], ["v"], "updates of the pipelined set")


@case(
    "R4.8-observing-before-concurrent-writes",
    "observing precedes every update while another participant writes the key",
)
async def observing_before_concurrent_writes(ctx: CaseContext) -> None:
    session = ctx.session()
    writer = await ctx.joined("bob", session)
    raw = await ctx.raw("alice")
    await raw.request(ctx.join_message(1, session, "alice"), "the joined reply")
    writes = asyncio.gather(*(writer.set("k", f"w{i}") for i in range(50)))
    try:
        for request_id in range(2, 7):
            await raw.send({"type": "observe", "id": request_id, "key": "k"})
            frames = await _frames_until_reply(ctx, raw, request_id)
            # Updates for observers announced earlier may interleave; only one for the
            # observer this reply announces may not come first.
            observer_id = frames[-1].get("observerId")
            early = [f for f in frames[:-1] if f.get("observerId") == observer_id]
            ctx.check(
                not early,
                f"an update for observer {observer_id!r} came before the observing reply "
                "that announced it",
                expected="the observing reply first, then updates for its observer",
                got=early[0] if early else "",
            )
    finally:
        await writes
