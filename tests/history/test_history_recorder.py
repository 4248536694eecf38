"""History recording: every request and update as JSONL, readable after a crash."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness.client.aio import connect
from harness.errors import HistoryError, RequestTimeout
from harness.history.events import Closed, Violation
from harness.history.reader import read_history
from harness.history.recorder import HistoryRecorder
from harness.protocol import Get
from harness.server.aio import Connection, ReferenceServer

Run = Callable[[Awaitable[Any]], Any]


class SilentGetServer(ReferenceServer):
    """Never answers a get, so the client's request times out (outcome unknown)."""

    def handle_get(self, conn: Connection, request: Get) -> None:
        pass


def test_records_invoke_done_update_and_close(run: Run, server_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"

    async def scenario() -> None:
        with HistoryRecorder(path) as recorder:
            async with connect(server_url, listeners=[recorder]) as client:
                await client.join("s", "alice", "Alice")
                observer = await client.observe("k")
                await client.set("k", "v1")
                assert await client.get("k") == "v1"
                await client.stop_observing(observer)

    run(scenario())
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines[0]["ev"] == "header" and "/" in lines[0]["clock"]
    kinds = [(e["ev"], e.get("op"), e.get("result")) for e in lines[1:]]
    # The update follows the set's ok, but may arrive in a later read than the ok,
    # after the get was sent: its place among the get's events is the network's choice.
    position = kinds.index(("update", None, None))
    assert kinds[:position] + kinds[position + 1 :] == [
        ("invoke", "join", None),
        ("done", "join", "joined"),
        ("invoke", "observe", None),
        ("done", "observe", "observing"),
        ("invoke", "set", None),
        ("done", "set", "ok"),
        ("invoke", "get", None),
        ("done", "get", "value"),
        ("invoke", "stop", None),
        ("done", "stop", "ok"),
        ("closed", None, None),
    ]
    assert 6 <= position <= 8
    update = lines[1 + position]
    assert update["value"] == "v1" and update["by"] == "alice" and update["p"] == "alice"
    assert update["obs"] == lines[4]["obs"] and update["s"] == "s"
    times = [e["t"] for e in lines[1:]]
    assert times == sorted(times)
    assert lines[-1]["by_client"] is True
    assert len({e["conn"] for e in lines[1:]}) == 1


def test_a_timed_out_request_completes_as_unknown(run: Run) -> None:
    async def scenario() -> list[dict[str, Any]]:
        recorder = HistoryRecorder()
        async with SilentGetServer(port=0) as server:  # noqa: SIM117
            async with connect(server.url, listeners=[recorder], request_timeout=0.2) as client:
                await client.join("s", "alice")
                with pytest.raises(RequestTimeout):
                    await client.get("k")
        return recorder.events()

    events = run(scenario())
    done = [e for e in events if e["ev"] == "done" and e["op"] == "get"]
    assert [e["result"] for e in done] == ["unknown"]


def test_a_crash_keeps_every_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "crash.jsonl"
    script = f"""
import os
from harness.history.recorder import HistoryRecorder
from harness.client.core import ClientCore
from harness.protocol import PendingRequest, Set
recorder = HistoryRecorder({str(path)!r}, flush_events=1)
client = ClientCore("ws://127.0.0.1:1/")
for n in range(5):
    recorder.request_sent(client, PendingRequest(n, Set(n, "k", f"v{{n}}"), n))
os._exit(1)
"""
    subprocess.run([sys.executable, "-c", script], check=False, timeout=60, cwd=Path.cwd())
    history = read_history([path])
    assert [e.value for e in history.events] == [f"v{n}" for n in range(5)]


def test_reader_merges_files_and_keeps_clock_domains_apart(tmp_path: Path) -> None:
    paths = []
    for host in ("a", "b"):
        path = tmp_path / f"{host}.jsonl"
        path.write_text(
            f'{{"ev":"header","process":"{host}/1","clock":"{host}/boot"}}\n'
            f'{{"ev":"closed","t":1,"conn":"{host}-1"}}\n'
        )
        paths.append(path)
    history = read_history(paths)
    assert history.clocks == ["a/boot", "b/boot"]
    assert [e.domain for e in history.events] == [0, 1]


def test_reader_skips_a_line_cut_short_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text('{"ev":"header","clock":"c"}\n{"ev":"closed","t":1,"conn":"x"}\n{"ev":"upd')
    history = read_history([path])
    assert len(history.events) == 1
    assert history.truncated == [f"{path}: line 3"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '{"ev":"header","clock":"c"}\nnope\n{"ev":"closed","t":1,"conn":"x"}\n',
            "line 2: not JSON",
        ),
        ('{"ev":"closed","t":1,"conn":"x"}\n', "line 1: events before the header"),
        ('{"ev":"header","clock":"c"}\n{"ev":"bogus"}\n', "line 2: unknown event kind 'bogus'"),
        ('{"ev":"header","clock":"c"}\n{"ev":"update","t":"x"}\n', "line 2: update event"),
        ('{"ev":"header","clock":"c"}\n[1]\n', "line 2: not a JSON object"),
    ],
)
def test_reader_names_the_file_and_line_of_bad_input(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(HistoryError, match=problem) as caught:
        read_history([path])
    assert str(path) in str(caught.value)


def test_a_violation_is_recorded_quoting_its_frame_even_after_recording_stopped(
    run: Run, tmp_path: Path
) -> None:
    from faulty_servers import StopIgnoredServer

    from harness.server.embedded import EmbeddedServer

    path = tmp_path / "h.jsonl"

    async def scenario(url: str) -> None:
        with HistoryRecorder(path) as recorder:
            async with connect(url, listeners=[recorder]) as alice, connect(url) as bob:
                await alice.join("s", "alice")
                await bob.join("s", "bob")
                await alice.stop_observing(await alice.observe("k"))
                # A long swarm's history window closes; a violation still goes in.
                recorder.stop_recording(time.monotonic_ns())
                await bob.set("k", "v1")  # the server still delivers to alice's observer
                async with asyncio.timeout(10):
                    await alice.wait_closed()

    with EmbeddedServer(StopIgnoredServer) as server:
        run(scenario(server.url))
    events = read_history([path]).events
    assert [type(e) for e in events[-2:]] == [Closed, Violation]
    violation = events[-1]
    assert violation.kind == "update_after_stop" and violation.requirement == "R4.5"
    assert violation.participant == "alice" and (violation.observer, violation.key) == ("o1", "k")
    assert violation.frame is not None and orjson.loads(violation.frame)["value"] == "v1"
    assert "after stopObserving was acknowledged" in violation.reason
