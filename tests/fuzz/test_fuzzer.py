"""The fuzzer end to end over real loopback sockets: quiet on the reference, loud on a bug."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness.cli import main
from harness.fuzz import Frame, fuzz, read_frames, replay
from harness.fuzz.oracle import nesting_depth
from harness.fuzz.strategies import Deep, render
from harness.server.aio import Connection, ReferenceServer
from harness.server.embedded import EmbeddedServer


class NestingCrashServer(ReferenceServer):
    """Validates every frame with a recursive walk that gives up past 50 levels.

    Models a server whose input sanitiser recurses with a hard depth guard that
    raises instead of refusing: the reference's catch-all then closes the
    connection with 1011, so one deep frame kills a participant's session.
    """

    max_depth = 50

    def handle_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, str):
            try:
                data = orjson.loads(frame)
            except orjson.JSONDecodeError:
                data = None
            _walk(data, 0, self.max_depth)
        super().handle_frame(conn, frame)


def _walk(value: Any, depth: int, limit: int) -> None:
    if depth > limit:
        raise RecursionError(f"nesting deeper than {limit}")
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    for child in children:
        _walk(child, depth + 1, limit)


@pytest.fixture
def faulty() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(NestingCrashServer) as server:
        yield server


def test_reference_server_survives_a_bounded_run(server_url: str, run: Callable) -> None:
    result = run(fuzz(server_url, frames=300, seconds=None, seed=1))
    assert result.finding is None, result.finding.describe()
    assert result.frames_sent >= 300
    assert result.batches > 1


def test_deep_nesting_crash_is_found_shrunk_and_replayed(
    faulty: EmbeddedServer, run: Callable, tmp_path: Path
) -> None:
    result = run(fuzz(faulty.url, frames=400, seconds=None, seed=1, shrink_seconds=20))
    assert result.finding is not None
    assert result.finding.kind == "closed"
    assert "1011" in result.finding.detail
    assert 1 <= len(result.frames) <= 3
    assert result.original_size >= len(result.frames)
    assert result.reproduced is True
    assert max(nesting_depth(f.data) for f in result.frames) > NestingCrashServer.max_depth
    path = tmp_path / "failure.jsonl"
    path.write_text("".join(f.to_line() + "\n" for f in result.frames), encoding="utf-8")
    assert run(replay(faulty.url, read_frames(path))) is not None


def test_frame_lists_round_trip_through_replay_lines() -> None:
    frames = [
        Frame.text('{"type":"get","id":1,"key":"\\ud800"}'),
        Frame.text("é\x00😀"),
        Frame(b'{"type":"set"\xff}'),
        Frame(b"\x00\x01\xfe", binary=True),
    ]
    assert [Frame.from_line(f.to_line()) for f in frames] == frames
    assert '{"binary":' in frames[3].to_line()


# --- the command ---------------------------------------------------------------------


def test_cli_exit_0_when_nothing_is_found(server_url: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["fuzz", "--url", server_url, "--frames", "60", "--seed", "3"]) == 0
    assert "nothing found" in capsys.readouterr().out


def test_cli_exit_1_writes_a_replay_file_that_replays(
    faulty: EmbeddedServer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "f.jsonl"
    args = ["fuzz", "--url", faulty.url, "--frames", "400", "--seed", "1", "--out", str(out)]
    assert main([*args, "--shrink-seconds", "20"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert read_frames(out)
    assert main(["fuzz", "--url", faulty.url, "--replay", str(out)]) == 1
    assert "still fails" in capsys.readouterr().out


def test_cli_replay_passes_on_a_healthy_server(
    server_url: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "deep.jsonl"
    deep = render({"type": "get", "id": 1, "key": "k", "x": Deep(60)})
    out.write_text(Frame.text(deep).to_line() + "\n", encoding="utf-8")
    assert main(["fuzz", "--url", server_url, "--replay", str(out)]) == 0
    assert "passes now" in capsys.readouterr().out


def test_cli_exit_2_on_an_unreachable_server(capsys: pytest.CaptureFixture) -> None:
    # A port nothing listens on: bind one, note it, close it.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["fuzz", "--url", f"ws://127.0.0.1:{port}/", "--timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert "unreachable" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "options", [["--frames", "0"], ["--batch", "0"], ["--seconds", "-1"], ["--url-less"]]
)
def test_cli_exit_2_on_bad_options(options: list[str], capsys: pytest.CaptureFixture) -> None:
    argv = (
        ["fuzz", "--url", "http://x/"]
        if options == ["--url-less"]
        else ["fuzz", "--url", "ws://127.0.0.1:9/", *options]
    )
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_cli_exit_2_on_a_malformed_replay_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    assert main(["fuzz", "--url", "ws://127.0.0.1:9/", "--replay", str(bad)]) == 2


def test_fuzz_can_be_awaited_from_a_running_loop(server_url: str) -> None:
    async def main_task() -> int:
        result = await fuzz(server_url, frames=20, seconds=None, seed=5)
        return result.frames_sent

    assert asyncio.run(main_task()) >= 20
