"""The pytest front end of the conformance suite.

    pytest conformance --store-url ws://127.0.0.1:8765/ [--session-prefix P]
        [--request-timeout S] [--token T | --token-secret SECRET]

With no --store-url the cases run against an embedded reference server (the
fixture is in test_conformance.py). The
cases themselves live in the installed package (harness.conformance), so this
front end and ``store-harness conformance`` run the same code.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("store-harness conformance")
    group.addoption("--store-url", help="server to test (default: an embedded reference server)")
    group.addoption("--session-prefix", default="conformance", help="prefix of session names")
    group.addoption("--request-timeout", type=float, default=5.0, help="seconds per reply")
    group.addoption("--token", default=None, help="token to send in every join, as given")
    group.addoption(
        "--token-secret",
        default=None,
        help="the server's HS256 token secret: mint a token per join, run the R2.4 access cases",
    )
    group.addoption("--settle", type=float, default=0.1, help="seconds to wait for strays")
