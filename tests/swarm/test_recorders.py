"""A worker ships its files to the master only when the master cannot read them itself,
and the master puts each chunk where it belongs, and nowhere else."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

from harness.run.chunks import chunks_from, receive_chunk

# In a child process: importing the swarm's modules imports locust, which patches gevent.
SCRIPT = """
import json, sys
from pathlib import Path
from harness.swarm.recorders import Recorders
from harness.swarm.reporting import LocustReporter

run_dir, run_id = Path(sys.argv[1]), sys.argv[2]
from locust import events
sent = []
recorders = Recorders(
    run_dir, "worker-1", LocustReporter(events.request), run_id=run_id,
    send=lambda name, chunk: sent.append([name, chunk["path"], chunk["offset"], chunk["size"]]),
)
recorders.close()
print(json.dumps(sent))
"""


def shipped(run_dir: Path, run_id: str) -> list[str]:
    """The files a worker with ``run_dir`` sent the master of run ``run_id``, at its close."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run_dir), run_id],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    sent = json.loads(done.stdout.splitlines()[-1])
    assert all(name == "harness_files" for name, *_ in sent)
    for _, path, offset, size in sent:  # every byte of each file, in order
        assert offset + size <= (run_dir / path).stat().st_size
    return sorted({path for _, path, _, _ in sent})


def test_a_worker_sharing_the_masters_run_directory_ships_nothing(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r-1"}))
    assert shipped(tmp_path, "r-1") == []


def test_a_worker_on_another_machine_ships_its_history_and_latency(tmp_path: Path) -> None:
    # Another machine: the same path holds no run.json of this run (or another run's).
    assert shipped(tmp_path, "r-1") == ["history/worker-1.jsonl", "latency/worker-1.jsonl"]
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "an-older-run"}))
    assert len(shipped(tmp_path, "r-1")) == 2


def chunk(path: str, offset: int, data: bytes) -> dict[str, object]:
    return {"path": path, "offset": offset, "data": zlib.compress(data)}


def test_the_master_appends_chunks_in_order_and_skips_one_sent_twice(tmp_path: Path) -> None:
    assert receive_chunk(tmp_path, chunk("history/w.jsonl", 0, b"a\nb\n")) is None
    assert receive_chunk(tmp_path, chunk("history/w.jsonl", 2, b"b\nc\n")) is None  # overlaps
    assert receive_chunk(tmp_path, chunk("history/w.jsonl", 6, b"d\n")) is None
    assert (tmp_path / "history" / "w.jsonl").read_bytes() == b"a\nb\nc\nd\n"


def test_a_chunk_past_the_end_or_outside_the_run_directory_is_a_problem(tmp_path: Path) -> None:
    problem = receive_chunk(tmp_path, chunk("history/w.jsonl", 10, b"x\n"))
    assert problem is not None and "offset 10" in problem
    assert not (tmp_path / "history" / "w.jsonl").exists()
    for path in ("../escape.jsonl", "/etc/passwd", "run.json", "history/../../x"):
        problem = receive_chunk(tmp_path, chunk(path, 0, b"x\n"))
        assert problem is not None and "outside history/ and latency/" in problem, path
    assert not (tmp_path.parent / "escape.jsonl").exists()


def test_a_growing_file_goes_in_whole_lines_and_the_rest_once_it_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_bytes(b"one\ntwo\nthr")  # the writer is mid-line
    [first] = chunks_from(path, "history/w.jsonl", 0, final=False)
    assert (first["offset"], first["size"], zlib.decompress(first["data"])) == (0, 8, b"one\ntwo\n")
    assert list(chunks_from(path, "history/w.jsonl", 8, final=False)) == []
    [last] = chunks_from(path, "history/w.jsonl", 8, final=True)
    assert zlib.decompress(last["data"]) == b"thr"
    run_dir = tmp_path / "run"
    for sent in (first, last):
        assert receive_chunk(run_dir, sent) is None
    assert (run_dir / "history" / "w.jsonl").read_bytes() == path.read_bytes()
