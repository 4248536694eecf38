"""Habit 1 of STYLE.md: the protocol core is shared by every front end, so it does no I/O."""

from __future__ import annotations

import ast

from probe import ROOT, loaded_by

FORBIDDEN = ("asyncio", "websockets", "gevent", "locust")


def test_importing_the_protocol_core_pulls_in_no_io_framework():
    imports = "harness.protocol, harness.protocol.schema, harness.run.values"
    assert loaded_by(imports, FORBIDDEN) == []


def test_the_probe_would_notice_an_io_import():
    # Guards the test above against passing vacuously (say, a probe that never imports).
    assert "asyncio" in loaded_by("harness.protocol, asyncio", FORBIDDEN)


def test_the_client_core_does_no_io():
    # websockets' own sans-I/O protocol pulls in socket and threading through its
    # metadata imports, so the probe names what the core must never load itself:
    # an event loop, gevent, locust, or either front end.
    forbidden = ("asyncio", "gevent", "locust", "harness.client.aio", "harness.client.sync")
    assert loaded_by("harness.client.core", forbidden) == []
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
