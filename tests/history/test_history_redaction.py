"""Histories are shared like reports: a token a server's frame echoes loses its signature."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from harness.client.aio import connect
from harness.history.events import Violation
from harness.history.reader import read_history
from harness.history.recorder import HistoryRecorder
from harness.protocol.auth import mint_token

SECRET = "a-history-test-secret-0123456789abcdef"


def test_a_quoted_violation_frame_keeps_a_tokens_claims_but_not_its_signature(
    run, tmp_path: Path
) -> None:
    from faulty_servers import StopIgnoredServer

    from harness.server.embedded import EmbeddedServer

    token = mint_token(SECRET, "s", "bob")
    path = tmp_path / "h.jsonl"

    async def scenario(url: str) -> None:
        with HistoryRecorder(path) as recorder:
            async with connect(url, listeners=[recorder]) as alice, connect(url) as bob:
                await alice.join("s", "alice")
                await bob.join("s", "bob")
                await alice.stop_observing(await alice.observe("k"))
                # The server still delivers to the stopped observer: a violation quoting
                # an update whose value is a token.
                await bob.set("k", token)
                async with asyncio.timeout(10):
                    await alice.wait_closed()

    with EmbeddedServer(StopIgnoredServer) as server:
        run(scenario(server.url))
    text = path.read_text(encoding="utf-8")
    assert token.rsplit(".", 1)[1] not in text
    (violation,) = [e for e in read_history([path]).events if isinstance(e, Violation)]
    assert violation.frame is not None
    quoted = orjson.loads(violation.frame)["value"]
    assert quoted == token.rsplit(".", 1)[0] + ".(signature redacted)"
