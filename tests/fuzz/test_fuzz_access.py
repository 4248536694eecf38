"""The fuzzer against a store that checks join tokens (R2.4), and its access options."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from handshake_server import Recording
from raw_server import raw_server

from harness.access import Access
from harness.cli import main
from harness.fuzz import dump_frames, read_frames, replay
from harness.fuzz.frames import Frame
from harness.fuzz.runner import BatchRunner
from harness.protocol import Limits
from harness.server.embedded import EmbeddedServer

SECRET = "fuzz-access-test-secret-0123456789abcdef"


def test_the_fuzzer_joins_with_tokens_where_it_joins(capsys: pytest.CaptureFixture[str]) -> None:
    with EmbeddedServer(token_secret=SECRET) as server:
        # The preflight, every audit and each batch's well-formed join carry a minted
        # token; joins the fuzzer makes up carry none and are refused, as R2.4 allows.
        code = main(["fuzz", "--url", server.url, "--frames", "200", "--token-secret", SECRET])
    out = capsys.readouterr().out
    assert code == 0, out
    accepted = re.search(r"nothing found: \d+ frames in \d+ batches \((\d+) joins accepted\)", out)
    assert accepted is not None and int(accepted.group(1)) > 0, out


def test_a_replay_file_holds_no_token_and_replays_with_one(tmp_path: Path) -> None:
    """A batch that joins with the run's token is saved with a placeholder, and replayed
    with the token filled in again: the join is accepted both times."""
    access = Access(token_secret=SECRET)
    with EmbeddedServer(token_secret=SECRET) as server:
        batch = [
            Frame.text('{"type":"join","id":1,"session":"$session","participant":'
                       '{"id":"fuzz","name":"Fuzz"},"token":"$token"}'),
            Frame.text('{"type":"set","id":2,"key":"k","value":"v"}'),
        ]  # fmt: skip
        saved = tmp_path / "replay.jsonl"
        saved.write_text(dump_frames(batch), encoding="utf-8")
        text = saved.read_text(encoding="utf-8")
        assert "$token" in text and "eyJ" not in text  # no JWT, only the placeholder
        frames = read_frames(str(saved))
        assert asyncio.run(replay(server.url, frames, timeout=2.0, access=access)) is None

        async def joins_accepted(given: Access) -> int:
            runner = BatchRunner(server.url, Limits(), timeout=2.0, access=given)
            await runner.run(frames)  # without a token its audit cannot join either
            return runner.joins_accepted

        # The token is what gets the join accepted: without one it is refused.
        assert asyncio.run(joins_accepted(access)) == 1
        assert asyncio.run(joins_accepted(Access())) == 0


def test_without_a_token_the_fuzzer_cannot_run_and_says_unauthorized(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with EmbeddedServer(token_secret=SECRET) as server:
        assert main(["fuzz", "--url", server.url, "--frames", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "UNAUTHORIZED" in err[0] and "--token-secret" in err[0]


def test_the_fuzzers_connections_send_the_header_and_subprotocol(tmp_path) -> None:
    recording = Recording()
    with raw_server(recording, subprotocols=["store.v1"]) as url:
        # The scripted store answers joins only, so the fuzz finds a failure (exit 1);
        # what matters here is how every connection opened.
        main(["fuzz", "--url", url, "--frames", "3", "--timeout", "0.3",
              "--shrink-seconds", "0", "--out", str(tmp_path / "f.jsonl"),
              "--header", "X-Fuzz: yes", "--subprotocol", "store.v1"])  # fmt: skip
    assert len(recording.requests) >= 2  # the preflight and the batch's connection
    assert all(r["X-Fuzz"] == "yes" for r in recording.requests)
    assert set(recording.subprotocols) == {"store.v1"}
