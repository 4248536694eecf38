"""A swarm against a store that checks join tokens (R2.4): minted per participant, given
to locust in its environment, and kept out of every file the run writes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.commands import swarm as swarm_command
from harness.protocol.auth import SECRET_ENV
from harness.server.embedded import EmbeddedServer
from harness.swarm import config

SECRET = "swarm-access-test-secret-0123456789abcdef"
#: Any JWT with a signature: a minted token is one.
SIGNED_JWT = re.compile(rb"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{8,}")


def swarm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "swarm", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_a_swarm_with_the_token_secret_ends_valid_and_writes_no_credential(tmp_path: Path):
    run_dir = tmp_path / "run"
    with EmbeddedServer(token_secret=SECRET) as server:
        done = swarm(
            "--url", server.url, "--users", "6", "--spawn-rate", "6", "--run-time", "4s",
            "--out", str(run_dir), "--token-secret", SECRET,
            "--header", "X-Team: store-harness",
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "verdict: VALID" in done.stdout
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in written)
    assert any(p.suffix == ".jsonl" for p in written)  # the histories, joins included
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert not SIGNED_JWT.search(data), path
    for output in (done.stdout, done.stderr):
        assert SECRET not in output
        assert not SIGNED_JWT.search(output.encode())


@pytest.mark.slow
def test_a_swarm_without_a_token_exits_2_naming_unauthorized(tmp_path: Path):
    with EmbeddedServer(token_secret=SECRET) as server:
        done = swarm(
            "--url", server.url, "--users", "2", "--run-time", "2s", "--out", str(tmp_path),
        )  # fmt: skip
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "UNAUTHORIZED" in lines[0], done.stderr
    assert "--token-secret" in lines[0]  # says what to pass


def test_locust_gets_the_credentials_in_its_environment_not_its_command_line(tmp_path: Path):
    args = build_parser().parse_args(
        ["swarm", "--url", "ws://127.0.0.1:1/", "--token-secret", SECRET,
         "--header", "Authorization: Bearer hush", "--subprotocol", "store.v1",
         "--ca-file", "ca.pem"]
    )  # fmt: skip
    command = swarm_command.locust_command(args, "ws://127.0.0.1:1/", tmp_path)
    text = " ".join(command)
    assert SECRET not in text and "hush" not in text
    assert "--subprotocol store.v1" in text and "--ca-file ca.pem" in text
    env = config.locust_env(args)
    assert env[SECRET_ENV] == SECRET and "Authorization: Bearer hush" in env.values()


def test_the_locust_process_reads_the_access_options_back(monkeypatch: pytest.MonkeyPatch):
    from test_config import locust_parser

    args = build_parser().parse_args(
        ["swarm", "--token-secret", SECRET, "--header", "Cookie: a=b", "--insecure"]
    )
    for name, value in config.locust_env(args).items():
        monkeypatch.setenv(name, value)
    got = config.SwarmConfig.from_locust(locust_parser().parse_args(config.locust_args(args)))
    assert got.access.token_secret == SECRET
    assert got.access.headers == (("Cookie", "a=b"),)
    assert got.access.insecure is True


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--header", "no colon here"], "--header needs the form 'Name: value'"),
        (["--token-file", "/nonexistent/tokens.txt"], "--token-file"),
        (["--token", "t", "--token-secret", SECRET], "pass --token-secret or --token, not both"),
        (["--token-secret", "short"], "at least 32 bytes"),
        (["--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
    ],
)
def test_bad_access_options_are_one_line_usage_errors(
    flags: list[str], problem: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    from harness.cli import main

    assert main(["swarm", "--url", "ws://127.0.0.1:1/", "--out", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and problem in err[0], err
    assert "no colon here" not in err[0]  # a header may be a credential: never quoted
