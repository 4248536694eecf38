"""The spec and the suite link both ways: every requirement has a case, every case a
requirement, and the suite's table of requirements says what the spec says."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from harness.conformance.case import register
from harness.conformance.requirements import REQUIREMENTS, Level
from harness.conformance.runner import select_cases

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
REQUIREMENT_LINE = re.compile(r"^- \*\*(R\d+\.\d+)\*\*( \(SHOULD\))?", re.MULTILINE)


def spec_requirements() -> dict[str, Level]:
    found = REQUIREMENT_LINE.findall(SPEC.read_text(encoding="utf-8"))
    return {number: Level.SHOULD if should else Level.MUST for number, should in found}


def test_the_spec_lists_requirements() -> None:
    assert len(spec_requirements()) >= 25


def test_suite_table_matches_the_spec() -> None:
    spec = spec_requirements()
    assert sorted(REQUIREMENTS) == sorted(spec)
    assert {r.id: r.level for r in REQUIREMENTS.values()} == spec


def test_every_requirement_has_a_case() -> None:
    covered = {case.requirement for case in select_cases()}
    assert sorted(set(spec_requirements()) - covered) == []


def test_every_case_cites_a_requirement_of_the_spec() -> None:
    spec = spec_requirements()
    for case in select_cases():
        assert case.requirement in spec, case.id
        assert case.id.startswith(f"{case.requirement}-")


def test_case_ids_are_unique_and_stable_in_shape() -> None:
    ids = [case.id for case in select_cases()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"R\d+\.\d+-[a-z0-9][a-z0-9-]*", i) for i in ids)


def test_a_case_citing_a_missing_requirement_is_refused() -> None:
    async def nothing(ctx: object) -> None:
        return None

    for bad_id in ("R9.9-no-such-requirement", "bad id", "R3.5-utf8-4byte-over"):
        try:
            register(bad_id, "a bad case", nothing)  # type: ignore[arg-type]
        except ValueError as exc:
            assert bad_id in str(exc)
        else:
            raise AssertionError(f"{bad_id!r} was registered")


COVERAGE = SPEC.with_name("coverage.md")
COVERAGE_ROW = re.compile(r"^\| (R\d+\.\d+) \|(.*)\|$", re.MULTILINE)


def test_the_path_table_has_a_row_per_requirement_and_names_only_real_cases() -> None:
    rows = dict(COVERAGE_ROW.findall(COVERAGE.read_text(encoding="utf-8")))
    assert sorted(rows) == sorted(spec_requirements())
    ids = [case.id for case in select_cases()]
    for requirement, cells in rows.items():
        cells = cells.split("|")
        assert len(cells) == 5, f"{requirement}: {len(cells)} path columns"
        for name in re.findall(r"`([^`]+)`", "|".join(cells)):
            pattern = re.compile(fnmatch.translate(name))
            assert any(pattern.match(i) for i in ids), f"{requirement} names no case {name!r}"
