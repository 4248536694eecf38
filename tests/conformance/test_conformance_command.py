"""`store-harness conformance`: exit codes 0 / 1 / 2, reports on disk, the matrix page."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from faulty_servers import StopIgnoredServer
from websockets.asyncio.server import ServerConnection, serve

from harness.cli import main
from harness.conformance.reports import REPORT_FILES
from harness.server.embedded import EmbeddedServer

Run = Callable[[Awaitable[Any]], Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_exit_0_against_the_reference(server_url: str, tmp_path: Path) -> None:
    assert main(["conformance", "--url", server_url, "--report-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(REPORT_FILES)


def test_exit_1_against_a_faulty_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with EmbeddedServer(StopIgnoredServer) as faulty:
        args = ["conformance", "--url", faulty.url, "--report-dir", str(tmp_path)]
        assert main([*args, "--request-timeout", "2", "--session-prefix", "ci-42"]) == 1
    out = capsys.readouterr().out
    assert "R4.5-stop-ends-deliveries" in out
    data = orjson.loads((tmp_path / "conformance.json").read_bytes())
    failed = {c["id"]: c for c in data["cases"] if c["grade"] == "failed"}
    case = failed["R4.5-stop-ends-deliveries"]
    assert case["expected"] and case["got"]
    assert any("ci-42-" in line["text"] for line in case["transcript"])


def test_exit_2_when_unreachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"ws://127.0.0.1:{free_port()}/"
    started = time.monotonic()
    assert main(["conformance", "--url", url, "--report-dir", str(tmp_path)]) == 2
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreachable" in err[0] and url in err[0]
    assert orjson.loads((tmp_path / "conformance.json").read_bytes())["cannot_run"]


def test_exit_2_when_the_server_never_answers(run: Run, tmp_path: Path) -> None:
    async def silent(websocket: ServerConnection) -> None:
        await websocket.wait_closed()

    async def scenario() -> tuple[int, float, str]:
        async with serve(silent, "127.0.0.1", 0) as ws_server:
            port = ws_server.sockets[0].getsockname()[1]
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "harness",
                "conformance",
                "--url",
                f"ws://127.0.0.1:{port}/",
                "--report-dir",
                str(tmp_path),
                "--request-timeout",
                "3",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=Path(__file__).resolve().parents[2],
            )
            _, err = await asyncio.wait_for(process.communicate(), 50)
            return process.returncode or 0, time.monotonic() - started, err.decode()

    # The 50 s bound above is the requirement (well within a minute), not a speed test:
    # waiting out every case's timeout in turn would take far longer.
    code, _, err = run(scenario())
    assert code == 2
    assert "did not answer a join" in err


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (["--url", "http://127.0.0.1:1/"], "no adapter for scheme 'http'"),
        (["--url", "ws://127.0.0.1:1/", "--request-timeout", "0"], "--request-timeout"),
        (["--url", "ws://127.0.0.1:1/", "--case", "R9.*"], "no case matches"),
    ],
)
def test_exit_2_on_bad_options(
    extra: list[str], complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conformance", "--report-dir", str(tmp_path), *extra]) == 2
    assert complaint in capsys.readouterr().err


def test_several_servers_get_a_matrix(server_url: str, tmp_path: Path) -> None:
    with EmbeddedServer(StopIgnoredServer) as faulty:
        args = ["conformance", "--url", server_url, "--url", faulty.url, "--case", "R4.5-*"]
        assert main([*args, "--report-dir", str(tmp_path)]) == 1
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) == 2
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == sorted(REPORT_FILES)
    matrix = (tmp_path / "matrix.html").read_text(encoding="utf-8")
    assert f"{folders[1].name}/conformance.html#case-R4.5-stop-ends-deliveries" in matrix
    assert "class='cell failed'" in matrix and "class='cell passed'" in matrix
