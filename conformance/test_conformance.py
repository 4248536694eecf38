"""One pytest test per conformance case, graded as store-harness grades it.

A failed required case fails the test with its detail and transcript; a
non-strict one (a SHOULD not met) passes with a warning; a skipped case skips.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.conformance.case import Case, Grade
from harness.conformance.context import SuiteOptions
from harness.conformance.reports.text import failure_text
from harness.conformance.runner import (
    SuiteCannotRun,
    check_options,
    check_suite_options,
    preflight,
    run_case,
    select_cases,
)
from harness.errors import HarnessUsageError
from harness.protocol import Limits
from harness.server.embedded import EmbeddedServer

CASES = select_cases()


@dataclass(frozen=True)
class Target:
    url: str
    options: SuiteOptions
    limits: Limits


@pytest.fixture(scope="session")
def conformance_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    config = request.config
    options = SuiteOptions(
        config.getoption("--session-prefix"),
        config.getoption("--request-timeout"),
        config.getoption("--token"),
        config.getoption("--settle"),
        config.getoption("--token-secret"),
    )
    try:
        check_suite_options(options)
    except HarnessUsageError as exc:
        pytest.exit(f"the conformance suite could not run: {exc}", returncode=2)
    url = config.getoption("--store-url")
    server = None
    if url is None:
        # With a secret the embedded server checks tokens too, so the access cases run.
        server = EmbeddedServer(token_secret=options.token_secret).start()
        url = server.url
    try:
        check_options(url, options)
        limits = asyncio.run(preflight(url, options))
    except (SuiteCannotRun, HarnessUsageError) as exc:
        if server is not None:
            server.stop()
        pytest.exit(f"the conformance suite could not run: {exc}", returncode=2)
    yield Target(url, options, limits)
    if server is not None:
        server.stop()


class ShouldNotMet(UserWarning):
    """A SHOULD requirement is not met: the server is non-strict, not failing."""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, conformance_target: Target) -> None:
    target = conformance_target
    result = asyncio.run(run_case(case, target.url, target.options, target.limits))
    if result.grade == Grade.SKIPPED:
        pytest.skip(result.detail)
    if result.grade == Grade.NON_STRICT:
        warnings.warn(ShouldNotMet(f"{case.id}: {result.detail}"), stacklevel=1)
    if result.grade in (Grade.FAILED, Grade.ERROR):
        pytest.fail(
            f"{case.id} ({case.requirement} {result.level}): {failure_text(result)}", pytrace=False
        )
