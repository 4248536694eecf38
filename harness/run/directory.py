"""The run directory every load job writes, and how it is updated safely.

    RUN_DIR/run.json          what ran; "complete" stays false until it ends cleanly
    RUN_DIR/history/*.jsonl   operation histories, one file per process
    RUN_DIR/latency/*.jsonl   interval histograms, one file per process
    RUN_DIR/verdict.json      the consistency checker's verdict, when one ran (and verdict.txt)
    RUN_DIR/epoch.json        the server epoch, when the swarm restarts the server
    RUN_DIR/report/           the latency report (the swarm writes it)

Files are replaced atomically, so a kill at any instant leaves either the old
content or the new, never a torn file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from harness import __version__

RUN_JSON = "run.json"
VERDICT_JSON, VERDICT_TXT = "verdict.json", "verdict.txt"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers see the old file or the new, never part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.replace(path)


def write_json(path: Path, data: Any) -> None:
    write_atomically(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def write_text(path: Path, text: str) -> None:
    write_atomically(path, text.encode("utf-8"))


def write_run_json(run_dir: Path, info: dict[str, Any]) -> None:
    write_json(run_dir / RUN_JSON, info)


def write_verdict(run_dir: Path, verdict_json: dict[str, Any], text: str | None = None) -> None:
    """verdict.json, and verdict.txt when ``text`` is given (the checker's own rendering)."""
    write_json(run_dir / VERDICT_JSON, verdict_json)
    if text is not None:
        write_text(run_dir / VERDICT_TXT, text + "\n")


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """run.json, or a minimal stand-in when it is missing or unreadable."""
    try:
        return orjson.loads((run_dir / RUN_JSON).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {"tool": "store-harness", "version": __version__}
