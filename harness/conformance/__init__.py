"""The conformance suite: every requirement of docs/protocol.md as a graded case.

    result = await run_suite("ws://127.0.0.1:8765/", SuiteOptions(session_prefix="ci"))
    write_reports(result, Path("out"))

Cases live in :mod:`harness.conformance.cases` (one module per spec section),
each with a stable ID that starts with the requirement it checks.
"""

from harness.conformance.case import CASES, Case, CaseResult, Grade, SuiteResult
from harness.conformance.context import SuiteOptions
from harness.conformance.reports import write_matrix, write_reports
from harness.conformance.runner import SuiteCannotRun, run_case, run_suite, select_cases

__all__ = [
    "CASES",
    "Case",
    "CaseResult",
    "Grade",
    "SuiteCannotRun",
    "SuiteOptions",
    "SuiteResult",
    "run_case",
    "run_suite",
    "select_cases",
    "write_matrix",
    "write_reports",
]
