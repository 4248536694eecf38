"""Habit 1 of STYLE.md: the protocol core is shared by every front end, so it does no I/O."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("asyncio", "websockets", "gevent", "locust")


def test_importing_the_protocol_core_pulls_in_no_io_framework():
    probe = (
        "import sys, harness.protocol, harness.protocol.schema, harness.run.values\n"
        f"print(','.join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_probe_would_notice_an_io_import():
    # Guards the test above against passing vacuously (say, a probe that never imports).
    probe = (
        "import sys, harness.protocol, asyncio\n"
        f"print(','.join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "asyncio"


def test_the_client_core_does_no_io():
    # websockets' own sans-I/O protocol pulls in socket and threading through its
    # metadata imports, so the probe names what the core must never load itself:
    # an event loop, gevent, locust, or either front end.
    forbidden = ("asyncio", "gevent", "locust", "harness.client.aio", "harness.client.sync")
    probe = (
        "import sys, harness.client.core\n"
        f"print(','.join(sorted(m for m in {forbidden!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    # And its own source imports no I/O module at all.
    source = (ROOT / "harness" / "client" / "core.py").read_text()
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"asyncio", "socket", "threading", "selectors", "gevent", "ssl"}
