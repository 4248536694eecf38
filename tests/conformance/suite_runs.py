"""Test helpers: run the conformance suite against a server class, and the catch table.

    python tests/conformance/suite_runs.py     # prints which cases catch which fault

The table is what the README shows; it is computed, never written by hand.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from pathlib import Path

from harness.conformance.case import Grade, SuiteResult
from harness.conformance.context import SuiteOptions
from harness.conformance.runner import run_suite, select_cases
from harness.server.aio import ReferenceServer
from harness.server.embedded import EmbeddedServer

#: Faulty servers fail by timing out on what never comes; a short timeout keeps that quick.
FAULT_OPTIONS = SuiteOptions(session_prefix="faulty", request_timeout=0.5, settle=0.05)


def run_against(
    factory: type[ReferenceServer] | None = None,
    options: SuiteOptions = FAULT_OPTIONS,
    patterns: Iterable[str] = (),
) -> SuiteResult:
    """Start ``factory`` (the reference server by default) and run the suite against it."""
    server = EmbeddedServer(factory) if factory is not None else EmbeddedServer()
    with server:
        return asyncio.run(run_suite(server.url, options, select_cases(patterns)))


def caught_by(result: SuiteResult) -> list[str]:
    """The cases that judged against the server: failed, or non-strict for a SHOULD."""
    return [r.case_id for r in result.results if r.grade in (Grade.FAILED, Grade.NON_STRICT)]


def catch_table(results: dict[str, tuple[type[ReferenceServer], SuiteResult]]) -> str:
    """Markdown: one row per fault, its bug, and the cases that catch it."""
    lines = [
        "| fault | the bug | rejected by | cases that catch it |",
        "|---|---|---|---|",
    ]
    for name, (server_class, result) in results.items():
        bug = " ".join((server_class.__doc__ or "").split()).split(". ")[0].rstrip(".")
        cases = caught_by(result)
        verdict = "failed (MUST)" if result.exit_code == 1 else "non-strict (SHOULD)"
        if not cases:
            verdict = "**not caught**"
        shown = ", ".join(f"`{c}`" for c in cases[:6])
        more = f" and {len(cases) - 6} more" if len(cases) > 6 else ""
        lines.append(f"| `{name}` | {bug.replace('|', '/')} | {verdict} | {shown}{more} |")
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from faulty_servers import FAULTY_SERVERS

    results = {}
    for name, server_class in FAULTY_SERVERS.items():
        results[name] = (server_class, run_against(server_class))
        print(f"{name}: {len(caught_by(results[name][1]))} cases", file=sys.stderr)
    print(catch_table(results))


if __name__ == "__main__":
    main()
