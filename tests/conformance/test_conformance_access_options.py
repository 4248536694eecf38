"""The conformance command takes every access option (harness.access), not only the token."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from handshake_server import Recording
from raw_server import raw_server

from harness.cli import main
from harness.server.embedded import EmbeddedServer

SECRET = "conformance-access-secret-0123456789abcdef"

#: A stand-in for a store's own token issuer: mints for the session and participant
#: it is given as arguments, and checks they match the environment it gets too.
ISSUER = f"""
import os, sys
from harness.protocol.auth import mint_token
session, participant = sys.argv[1], sys.argv[2]
assert os.environ["STORE_HARNESS_SESSION"] == session
assert os.environ["STORE_HARNESS_PARTICIPANT"] == participant
print(mint_token({SECRET!r}, session, participant))
"""


def test_tokens_from_a_token_command_admit_every_join(tmp_path: Path) -> None:
    issuer = tmp_path / "issuer.py"
    issuer.write_text(ISSUER, encoding="utf-8")
    report = tmp_path / "report"
    with EmbeddedServer(token_secret=SECRET) as server:
        code = main(
            ["conformance", "--url", server.url, "--report-dir", str(report), "--quiet",
             "--case", "R2.1-*", "--case", "R2.5-*", "--token-cmd", f"{sys.executable} {issuer}"]
        )  # fmt: skip
    data = orjson.loads((report / "conformance.json").read_bytes())
    assert code == 0, [(c["id"], c["detail"]) for c in data["cases"]]
    assert data["cases"] and {c["grade"] for c in data["cases"]} == {"passed"}
    assert data["options"]["access"]["token"] == "--token-cmd"


def test_headers_and_the_subprotocol_reach_the_store(tmp_path: Path) -> None:
    recording = Recording()
    with raw_server(recording, subprotocols=["store.v1"]) as url:
        main(
            ["conformance", "--url", url, "--report-dir", str(tmp_path), "--quiet",
             "--case", "R2.1-joined-*", "--header", "Authorization: Bearer hush",
             "--subprotocol", "store.v1"]
        )  # fmt: skip
    assert recording.requests and recording.subprotocols[0] == "store.v1"
    assert all(r["Authorization"] == "Bearer hush" for r in recording.requests)
    for report in tmp_path.iterdir():
        assert "hush" not in report.read_text(encoding="utf-8"), report
