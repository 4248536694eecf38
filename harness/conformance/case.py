"""Cases, grades and results: the data every other conformance module shares.

A case is an async function of a :class:`~harness.conformance.context.CaseContext`.
It passes by returning, fails by raising :class:`CaseFailed` (or by any
protocol violation the context saw), skips by raising :class:`CaseSkipped`,
and is informational when registered so: it measures and never judges.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from harness.conformance.requirements import REQUIREMENTS, Level
from harness.exits import EXIT_CANNOT_RUN, exit_code

if TYPE_CHECKING:
    from harness.conformance.context import CaseContext

CaseFunction = Callable[["CaseContext"], Awaitable[None]]


class Grade(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NON_STRICT = "non-strict"
    INFORMATIONAL = "informational"
    SKIPPED = "skipped"
    #: The harness itself broke while running the case: not the server's fault.
    ERROR = "error"


_CASE_ID = re.compile(r"^R\d+\.\d+-[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    title: str
    function: CaseFunction
    informational: bool = False
    #: Some cases need more than a few round trips (floods, races); their guard scales.
    slow: bool = False

    @property
    def requirement(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def level(self) -> Level:
        return REQUIREMENTS[self.requirement].level


#: Every case, in registration order (which is spec order: the case modules follow it).
CASES: dict[str, Case] = {}


def register(
    case_id: str,
    title: str,
    function: CaseFunction,
    *,
    informational: bool = False,
    slow: bool = False,
) -> Case:
    if not _CASE_ID.match(case_id):
        raise ValueError(f"case id {case_id!r} must look like 'R3.5-some-words'")
    if case_id in CASES:
        raise ValueError(f"case id {case_id!r} is registered twice")
    if case_id.split("-", 1)[0] not in REQUIREMENTS:
        raise ValueError(f"case {case_id!r} cites a requirement the spec does not have")
    case = Case(case_id, title, function, informational, slow)
    CASES[case_id] = case
    return case


def case(
    case_id: str, title: str, *, informational: bool = False, slow: bool = False
) -> Callable[[CaseFunction], CaseFunction]:
    """Decorator form of :func:`register`."""

    def decorate(function: CaseFunction) -> CaseFunction:
        register(case_id, title, function, informational=informational, slow=slow)
        return function

    return decorate


@dataclass(slots=True)
class TranscriptLine:
    at_ms: float
    connection: str
    direction: str  # "sent", "received", "note"
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "at_ms": round(self.at_ms, 3),
            "connection": self.connection,
            "direction": self.direction,
            "text": self.text,
        }


@dataclass(slots=True)
class CaseResult:
    case_id: str
    requirement: str
    title: str
    level: str
    grade: Grade
    duration_s: float
    detail: str = ""
    expected: str = ""
    got: str = ""
    measurements: dict[str, Any] = field(default_factory=dict)
    transcript: list[TranscriptLine] = field(default_factory=list)
    omitted_frames: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "requirement": self.requirement,
            "title": self.title,
            "level": self.level,
            "grade": str(self.grade),
            "duration_s": round(self.duration_s, 4),
            "detail": self.detail,
            "expected": self.expected,
            "got": self.got,
            "measurements": self.measurements,
            "transcript": [line.to_json() for line in self.transcript],
            "omitted_frames": self.omitted_frames,
        }


@dataclass(slots=True)
class SuiteResult:
    url: str
    started: str
    duration_s: float
    limits: dict[str, int]
    options: dict[str, Any]
    results: list[CaseResult]
    #: What the store does not promise, so no case judged it (a store adapter's
    #: Capabilities.skipped_checks; empty for the store protocol).
    not_promised: list[str] = field(default_factory=list)
    #: Set when the suite could not run at all (exit code 2).
    cannot_run: str = ""

    def count(self, grade: Grade) -> int:
        return sum(1 for r in self.results if r.grade == grade)

    @property
    def exit_code(self) -> int:
        if self.cannot_run or self.count(Grade.ERROR):
            return EXIT_CANNOT_RUN
        return exit_code(bool(self.count(Grade.FAILED)))

    def summary(self) -> dict[str, int]:
        return {str(grade): self.count(grade) for grade in Grade}

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.url,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "limits": self.limits,
            "options": self.options,
            "not_promised": self.not_promised,
            "cannot_run": self.cannot_run,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "cases": [r.to_json() for r in self.results],
        }
