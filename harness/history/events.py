"""The history format: what every participant did and saw, as JSONL, for the checker.

    recorder = HistoryRecorder("history.jsonl")       # or HistoryRecorder() to keep it in memory
    async with connect(url, listeners=[recorder]) as client:
        ...
    recorder.close()
    verdict = check(read_history(["history.jsonl"]))

One JSON object per line. The first line of a file is a ``header`` naming the
process and its clock domain; then, porcupine-style, every request is an
``invoke`` and a ``done`` (``result`` ok / value / observing / joined / error,
or ``unknown`` when no reply came: a timeout or a lost connection, where the
server may or may not have applied it), every update is an ``update``, every
connection end is a ``closed``, and every frame that broke the spec is a
``violation`` quoting it (``kind``, ``requirement``, ``reason``, ``frame``).
Times ``t`` are ``time.monotonic_ns()``: comparable between processes of one
Linux boot (the clock domain names host and boot id), never across machines, so
the checker compares times only within one domain. Files from many processes (a
swarm's workers) are read together.

Lines are written whole and flushed every ``flush_events`` events or
``flush_interval`` seconds, so a crash loses at most the last moments and never
leaves a half-written line that the reader would mistake for data.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import orjson

from harness.errors import HistoryError as HistoryError

FORMAT_VERSION = 1
#: A violation event quotes this many characters of the frame at most.
FRAME_QUOTE_CHARS = 4000


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        # Without a boot id, only this process's own events can be compared in time.
        return f"pid{os.getpid()}-{time.time_ns()}"


def header_event(process: str | None = None) -> dict[str, Any]:
    host = socket.gethostname()
    return {
        "ev": "header",
        "format": FORMAT_VERSION,
        "process": process or f"{host}/{os.getpid()}",
        "host": host,
        "pid": os.getpid(),
        "clock": f"{host}/{_boot_id()}",
        "wall_ns": time.time_ns(),
        "mono_ns": time.monotonic_ns(),
    }


def update_fields(frame: str) -> dict[str, Any]:
    """``obs`` and ``key`` of an offending update frame, so the checker can place it."""
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict) or data.get("type") != "update":
        return {}
    fields = {"obs": data.get("observerId"), "key": data.get("key")}
    return {name: value for name, value in fields.items() if isinstance(value, str)}


_STR, _INT, _OPT = (str,), (int,), (str, type(None))
REQUIRED_FIELDS: dict[str, list[tuple[str, tuple[type, ...]]]] = {
    "invoke": [("t", _INT), ("conn", _STR), ("req", _INT), ("op", _STR)],
    "done": [("t", _INT), ("conn", _STR), ("req", _INT), ("result", _STR)],
    "update": [("t", _INT), ("conn", _STR), ("obs", _STR), ("key", _STR), ("value", _OPT)],
    "closed": [("t", _INT), ("conn", _STR)],
    "violation": [("t", _INT), ("conn", _STR), ("reason", _STR)],
}
