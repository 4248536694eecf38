"""Section 3 of the spec, writes and reads: R3.1 to R3.4 and R3.7 to R3.10."""

from __future__ import annotations

import asyncio

import orjson

from harness.conformance.case import case, register
from harness.conformance.context import CaseContext
from harness.protocol import ErrorCode


@case("R3.1-set-then-get", "a set value is what get returns")
async def set_then_get(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    await client.set("PINNED_MESSAGE", "hello")
    ctx.check_equal(await client.get("PINNED_MESSAGE"), "hello", "get after set")


@case("R3.1-overwrite", "a second set of a key replaces its value")
async def overwrite(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    await client.set("k", "one")
    await client.set("k", "two")
    ctx.check_equal(await client.get("k"), "two", "get after an overwrite")


@case("R3.1-get-absent-is-null", "get of a key never written returns null")
async def get_absent(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    ctx.check_equal(await client.get("never-written"), None, "get of an absent key")


VALUE_SAMPLES: dict[str, str] = {
    "json-null-text": "null",
    "json-number-text": "123",
    "json-object-text": '{"a": [1, true]}',
    "whitespace": "  \t\n ",
    "quotes-backslashes": 'say "hi" \\ \\u0041',
    "control-characters": "\x00\x01\x1f",
    "non-ascii": "Zürich · 東京 · 😀",
}


@case("R3.1-value-types", "string values come back exactly, whatever they hold")
async def value_types(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    for name, value in VALUE_SAMPLES.items():
        await client.set(name, value)
    for name, value in VALUE_SAMPLES.items():
        ctx.check_equal(await client.get(name), value, f"get of the {name} value")


@case("R3.1-key-types", "keys are any non-empty string, compared exactly")
async def key_types(ctx: CaseContext) -> None:
    client = await ctx.joined("alice", ctx.session())
    keys = ["k", "K", "k ", "poll/1", "😀", "é", "e\u0301", "x" * 200]
    for i, key in enumerate(keys):
        await client.set(key, str(i))
    for i, key in enumerate(keys):
        ctx.check_equal(await client.get(key), str(i), f"get of key {key!r}")


@case("R3.2-null-deletes", "a set with null deletes the key")
async def null_deletes(ctx: CaseContext) -> None:
    session = ctx.session()
    client = await ctx.joined("alice", session)
    other = await ctx.joined("bob", session)
    mine, theirs = await ctx.observe(client, "k"), await ctx.observe(other, "k")
    await client.set("k", "v")
    await client.delete("k")
    ctx.check_equal(await client.get("k"), None, "get after a delete")
    ctx.check_equal(await other.get("k"), None, "another connection's get after a delete")
    await ctx.expect_each(
        [
            (mine, ["v", None], "the writer's own observer"),
            (theirs, ["v", None], "another connection's observer"),
        ]
    )
    latecomer = await ctx.joined("carol", session)
    ctx.check_equal(await latecomer.get("k"), None, "a new connection's get after a delete")


@case("R3.2-empty-string-is-a-value", "the empty string is stored, not a delete")
async def empty_string(ctx: CaseContext) -> None:
    session = ctx.session()
    client = await ctx.joined("alice", session)
    observer = await ctx.joined("bob", session)
    observed = await ctx.observe(observer, "k")
    await client.set("k", "v")
    await client.set("k", "")
    ctx.check_equal(await client.get("k"), "", "get after setting the empty string")
    await ctx.expect_updates(observed, ["v", ""], "an observer of the key")


@case("R3.2-delete-absent-is-a-write", "deleting an absent key is accepted and notified")
async def delete_absent(ctx: CaseContext) -> None:
    session = ctx.session()
    client = await ctx.joined("alice", session)
    observer = await ctx.joined("bob", session)
    observed = await ctx.observe(observer, "k")
    await client.delete("k")
    await ctx.expect_updates(observed, [None], "an observer of the absent key")


def _invalid_key(request_type: str, tag: str, key_json: str | None) -> None:
    async def invalid_key(ctx: CaseContext) -> None:
        client = await ctx.joined("alice", ctx.session())
        key_field = "" if key_json is None else f',"key":{key_json}'
        value_field = ',"value":"v"' if request_type == "set" else ""
        frame = f'{{"type":"{request_type}","id":40{key_field}{value_field}}}'
        what = f"{request_type} with key {tag}"
        await ctx.expect_raw_error(client, frame, ErrorCode.INVALID_KEY, what, reply_id=40)
        if request_type == "set":
            ctx.check_equal(await client.get("k"), None, "get after the refused set")

    register(
        f"R3.3-{request_type}-key-{tag}",
        f"INVALID_KEY for {request_type} with a {tag} key",
        invalid_key,
    )


for _type in ("set", "get", "observe"):
    for _tag, _json in (("missing", None), ("empty", '""'), ("number", "5"), ("null", "null")):
        _invalid_key(_type, _tag, _json)


def _invalid_value(tag: str, value_json: str | None) -> None:
    async def invalid_value(ctx: CaseContext) -> None:
        client = await ctx.joined("alice", ctx.session())
        await client.set("k", "before")
        value_field = "" if value_json is None else f',"value":{value_json}'
        frame = f'{{"type":"set","id":41,"key":"k"{value_field}}}'
        await ctx.expect_raw_error(
            client, frame, ErrorCode.INVALID_VALUE, f"a {tag} value", reply_id=41
        )
        ctx.check_equal(await client.get("k"), "before", "get after the refused set")

    register(f"R3.4-value-{tag}", f"INVALID_VALUE for a set with a {tag} value", invalid_value)


for _tag, _json in (
    ("missing", None),
    ("number", "42"),
    ("boolean", "true"),
    ("object", '{"v":"x"}'),
    ("array", '["x"]'),
):
    _invalid_value(_tag, _json)


@case("R3.7-sessions-isolated", "sessions never see each other's keys or updates")
async def sessions_isolated(ctx: CaseContext) -> None:
    one, two = ctx.session("one"), ctx.session("two")
    alice = await ctx.joined("alice", one)
    bob = await ctx.joined("bob", two)
    bob_observed = await ctx.observe(bob, "k")
    alice_observed = await ctx.observe(alice, "k")
    await alice.set("k", "in-one")
    ctx.check_equal(await bob.get("k"), None, "get of the key in the other session")
    await bob.set("k", "in-two")
    ctx.check_equal(await alice.get("k"), "in-one", "get of the key in the first session")
    await ctx.expect_updates(alice_observed, ["in-one"], "the observer in the first session")
    await ctx.expect_updates(bob_observed, ["in-two"], "the observer in the second session")


@case("R3.8-read-after-ack", "a get sent after a set's ok sees that write, on any connection")
async def read_after_ack(ctx: CaseContext) -> None:
    session = ctx.session()
    writer = await ctx.joined("alice", session)
    reader = await ctx.joined("bob", session)
    for i in range(20):
        await writer.set("k", f"v{i}")
        ctx.check_equal(await writer.get("k"), f"v{i}", f"the writer's get after write #{i}")
        ctx.check_equal(
            await reader.get("k"), f"v{i}", f"another connection's get after write #{i}"
        )
    await writer.delete("k")
    ctx.check_equal(await reader.get("k"), None, "another connection's get after a delete")


@case("R3.9-last-write-wins", "after writes from several connections every get sees the last")
async def last_write_wins(ctx: CaseContext) -> None:
    session = ctx.session()
    clients = [await ctx.joined(f"p{i}", session) for i in range(3)]
    for round_number in range(5):
        for i, client in enumerate(clients):
            await client.set("k", f"r{round_number}-p{i}")
        values = await asyncio.gather(*(c.get("k") for c in clients))
        ctx.check_equal(values, [f"r{round_number}-p2"] * 3, f"gets after round {round_number}")


@case("R3.9-concurrent-writes-converge", "after concurrent writes all connections read one value")
async def concurrent_converge(ctx: CaseContext) -> None:
    session = ctx.session()
    clients = [await ctx.joined(f"p{i}", session) for i in range(4)]
    await asyncio.gather(
        *(c.set("k", f"p{i}-{n}") for n in range(10) for i, c in enumerate(clients))
    )
    values = await asyncio.gather(*(c.get("k") for c in clients))
    ctx.check(
        len(set(values)) == 1,
        "connections read different values after the writes settled",
        expected="one value on every connection",
        got=orjson.dumps(values).decode(),
    )
    ctx.check(
        values[0] is not None and values[0].endswith("-9"),
        "the value read is not any writer's last write",
        expected="some pN-9",
        got=values[0],
    )


#: Keys that a normalizing, case-folding or trimming store would merge (R3.10).
LOOKALIKE_KEYS = ("poll", "Poll", "POLL", "poll ", " poll", "é", "e\u0301", "ﬁ", "fi")


@case("R3.10-keys-compared-exactly", "look-alike keys are distinct on every path")
async def keys_compared_exactly(ctx: CaseContext) -> None:
    session = ctx.session()
    writer = await ctx.joined("alice", session)
    reader = await ctx.joined("bob", session)
    observed = {key: await ctx.observe(reader, key) for key in LOOKALIKE_KEYS}
    for key in LOOKALIKE_KEYS:
        await writer.set(key, f"value of {key!r}")
    for key in LOOKALIKE_KEYS:
        ctx.check_equal(
            await reader.get(key), f"value of {key!r}", f"another connection's get of {key!r}"
        )
    await ctx.expect_each(
        [(observed[k], [f"value of {k!r}"], f"the observer of {k!r}") for k in LOOKALIKE_KEYS]
    )


@case("R3.10-sessions-compared-exactly", "look-alike session names are distinct sessions")
async def sessions_compared_exactly(ctx: CaseContext) -> None:
    base = ctx.session("room")
    names = [base, base.upper(), base + " ", base.replace("room", "roo\u0301m")]
    clients = [await ctx.joined(f"p{i}", name) for i, name in enumerate(names)]
    observed = [await ctx.observe(client, "k") for client in clients]
    for i, client in enumerate(clients):
        await client.set("k", f"in session {i}")
    for i, client in enumerate(clients):
        ctx.check_equal(await client.get("k"), f"in session {i}", f"get in session {names[i]!r}")
    await ctx.expect_each(
        [
            (o, [f"in session {i}"], f"the observer in session {names[i]!r}")
            for i, o in enumerate(observed)
        ]
    )


@case("R3.10-participant-ids-echoed-exactly", "participant ids come back exactly in updatedBy")
async def participant_ids_exact(ctx: CaseContext) -> None:
    session = ctx.session()
    ids = ["Alice", "alice", "alice ", "Zoë", "Zoe\u0308"]
    writers = [await ctx.joined(f"w{i}", session, participant=pid) for i, pid in enumerate(ids)]
    observer = await ctx.joined("observer", session)
    observed = await ctx.observe(observer, "k")
    for i, writer in enumerate(writers):
        await writer.set("k", f"from {i}")
    await ctx.expect_updates(observed, [f"from {i}" for i in range(len(ids))], "the observer")
    ctx.check_equal(
        [by.id for _, by in observed.updates], ids, "updatedBy ids, in the order written"
    )
