"""The reference server's access check (R2.4): token_secret, `serve --token-secret` and
STORE_HARNESS_TOKEN_SECRET; the secret is never printed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.cli import main
from harness.client.aio import connect
from harness.errors import HarnessUsageError, StoreError
from harness.protocol import ErrorCode
from harness.protocol.auth import SECRET_ENV, mint_token
from harness.server.aio import ReferenceServer
from harness.server.embedded import LISTENING_LINE, EmbeddedServer

SECRET = "serve-test-secret-0123456789abcdefghij"


def join(participant: str, session: str = "s", token: object = None) -> dict[str, object]:
    frame: dict[str, object] = {
        "type": "join",
        "id": 1,
        "session": session,
        "participant": {"id": participant, "name": ""},
    }
    if token is not None:
        frame["token"] = token
    return frame


def test_without_a_secret_every_well_formed_join_is_admitted(wire, run):
    async def scenario():
        async with wire() as w:
            assert (await w.request(join("alice", token="anything")))["type"] == "joined"

    run(scenario())


def test_with_a_secret_a_bad_token_is_unauthorized_then_closed_with_1008(wire, run):
    async def scenario(url: str):
        for token in (None, "letmein", mint_token(SECRET, "other", "alice")):
            async with wire(url) as w:
                reply = await w.refused(join("alice", token=token), "UNAUTHORIZED", 1)
                assert SECRET not in reply["message"]
                assert await w.close_code() == 1008
        async with wire(url) as w:
            assert (await w.request(join("alice", token=mint_token(SECRET, "s", "alice"))))[
                "type"
            ] == "joined"
            assert (await w.set("k", "v"))["type"] == "ok"

    with EmbeddedServer(token_secret=SECRET) as server:
        run(scenario(server.url))


def test_invalid_join_fields_are_still_bad_request_before_the_access_check(wire, run):
    async def scenario(url: str):
        async with wire(url) as w:
            await w.refused(join("alice", token=5), "BAD_REQUEST", 1)  # R2.2 before R2.4
            await w.refused(join("", token=None), "BAD_REQUEST", 1)

    with EmbeddedServer(token_secret=SECRET) as server:
        run(scenario(server.url))


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(HarnessUsageError, match="32 bytes"):
        ReferenceServer(token_secret="short")


def test_serve_refuses_a_short_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--token-secret", "tiny-secret"]) == 2
    err = capsys.readouterr().err
    assert "32 bytes" in err and "tiny-secret" not in err


def _serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`store-harness serve` in a child process; its listening line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


def _stop(process: subprocess.Popen[str]) -> str:
    """Stop the child; everything else it printed."""
    process.terminate()
    rest, _ = process.communicate(timeout=10)
    return rest


@pytest.mark.parametrize("via", ["environment", "option"])
def test_serve_checks_tokens_and_never_prints_the_secret(run, via: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    args: list[str] = []
    if via == "environment":
        env[SECRET_ENV] = SECRET
    else:
        args = ["--token-secret", SECRET]

    async def scenario(url: str) -> None:
        async with connect(url) as refused:
            with pytest.raises(StoreError) as error:
                await refused.join("s", "alice")
            assert error.value.code is ErrorCode.UNAUTHORIZED
            await refused.wait_closed()
            assert refused.close_code == 1008
        async with connect(url) as admitted:
            await admitted.join("s", "alice", token=mint_token(SECRET, "s", "alice"))
            await admitted.set("k", "v")

    process, line = _serve(args, env)
    try:
        match = LISTENING_LINE.search(line)
        assert match, line
        assert "(access check: on)" in line
        run(scenario(match.group(1)))
    finally:
        output = line + _stop(process)
    assert SECRET not in output


def test_an_empty_environment_variable_leaves_the_check_off() -> None:
    process, line = _serve([], dict(os.environ, **{SECRET_ENV: ""}))
    _stop(process)
    assert "(access check: off)" in line
