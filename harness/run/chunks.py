"""A worker's files, sent to the master in chunks as they grow (harness.swarm.recorders).

A chunk is ``{"path", "offset", "size", "data"}``: ``size`` bytes of the file at
``path`` (relative to the run directory, under history/ or latency/) from ``offset``,
compressed. Chunks hold whole lines while the file is still written, since the
writer may be mid-line; the last one, once the file is closed, holds whatever is left.
Here, apart from the swarm, so that the rule is testable without locust.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The locust message a worker's file chunks come in.
FILES_MESSAGE = "harness_files"
#: The most bytes of one file in one chunk.
CHUNK_BYTES = 8 << 20
#: Where in the run directory a chunk may go.
SHIPPED_FOLDERS = ("history", "latency")


def chunks_from(path: Path, relative: str, offset: int, *, final: bool) -> Iterator[dict[str, Any]]:
    """The chunks of ``path`` from ``offset``: one (the next CHUNK_BYTES at most) while
    the file grows, all the rest when ``final``."""
    while True:
        try:
            with open(path, "rb") as file:
                file.seek(offset)
                data = file.read(CHUNK_BYTES)
        except OSError:
            return
        if not final or len(data) == CHUNK_BYTES:
            data = data[: data.rfind(b"\n") + 1]
        if not data:
            return
        packed = zlib.compress(data, 1)
        yield {"path": relative, "offset": offset, "size": len(data), "data": packed}
        offset += len(data)
        if not final:
            return


def receive_chunk(run_dir: Path, chunk: dict[str, Any]) -> str | None:
    """Append a chunk where it belongs in the master's run directory; a problem to
    report, or None. Chunks come in order; the part of one already received is skipped."""
    relative = Path(str(chunk.get("path", "")))
    if (
        relative.is_absolute()
        or ".." in relative.parts
        or relative.parts[:1] not in [(folder,) for folder in SHIPPED_FOLDERS]
    ):
        return f"a worker sent a file chunk for {str(relative)!r}, outside history/ and latency/"
    target = run_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    data = zlib.decompress(chunk["data"])
    offset = int(chunk["offset"])
    size = target.stat().st_size if target.exists() else 0
    if offset > size:
        return f"{relative}: a chunk for offset {offset:,} came with only {size:,} bytes received"
    with open(target, "ab") as file:
        file.write(data[size - offset :])
    return None
