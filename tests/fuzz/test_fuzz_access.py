"""The fuzzer against a store that checks join tokens (R2.4), and its access options."""

from __future__ import annotations

import pytest
from handshake_server import Recording
from raw_server import raw_server

from harness.cli import main
from harness.server.embedded import EmbeddedServer

SECRET = "fuzz-access-test-secret-0123456789abcdef"


def test_the_fuzzer_joins_with_tokens_where_it_joins(capsys: pytest.CaptureFixture[str]) -> None:
    with EmbeddedServer(token_secret=SECRET) as server:
        # The preflight and every audit join with a minted token; the fuzzed joins carry
        # none and are refused, which R2.4 allows.
        code = main(["fuzz", "--url", server.url, "--frames", "40", "--token-secret", SECRET])
    assert code == 0, capsys.readouterr()
    assert "nothing found" in capsys.readouterr().out


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
