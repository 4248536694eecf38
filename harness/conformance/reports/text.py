"""The machine-readable reports: JSON, JUnit XML and a Markdown summary for CI jobs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import orjson

from harness import __version__
from harness.conformance.case import CaseResult, Grade, SuiteResult
from harness.conformance.requirements import REQUIREMENTS, SECTIONS

GRADE_MARK = {
    Grade.PASSED: "✅",
    Grade.FAILED: "❌",
    Grade.NON_STRICT: "⚠️",
    Grade.INFORMATIONAL: "ℹ️",
    Grade.SKIPPED: "⏭️",
    Grade.ERROR: "💥",
}


def verdict(result: SuiteResult) -> str:
    if result.cannot_run:
        return "COULD NOT RUN"
    return {0: "PASSED", 1: "FAILED"}.get(result.exit_code, "HARNESS ERROR")


def render_json(result: SuiteResult) -> str:
    data = {"tool": "store-harness", "version": __version__, **result.to_json()}
    data["requirements"] = [
        {"id": r.id, "level": str(r.level), "summary": r.summary} for r in REQUIREMENTS.values()
    ]
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


def failure_text(case: CaseResult, transcript_lines: int = 40) -> str:
    parts = [case.detail]
    if case.expected:
        parts.append(f"expected: {case.expected}")
    if case.got:
        parts.append(f"got: {case.got}")
    if case.transcript:
        parts.append("transcript (last frames):")
        for line in case.transcript[-transcript_lines:]:
            parts.append(
                f"  {line.at_ms:9.1f} ms {line.connection:>12} {line.direction:8} {line.text}"
            )
    return "\n".join(parts)


def render_junit(results: list[SuiteResult]) -> str:
    root = ET.Element("testsuites", name="store-harness conformance")
    for result in results:
        counts = Counter(r.grade for r in result.results)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"conformance {result.url}",
            tests=str(len(result.results)),
            failures=str(counts[Grade.FAILED]),
            errors=str(counts[Grade.ERROR]),
            skipped=str(counts[Grade.SKIPPED]),
            time=f"{result.duration_s:.3f}",
            timestamp=result.started,
        )
        for case in result.results:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=f"conformance.R{case.requirement[1:].split('.')[0]}",
                name=case.case_id,
                time=f"{case.duration_s:.4f}",
            )
            if case.grade == Grade.FAILED:
                failure = ET.SubElement(element, "failure", message=case.detail.splitlines()[0])
                failure.text = failure_text(case)
            elif case.grade == Grade.ERROR:
                error = ET.SubElement(element, "error", message="internal harness error")
                error.text = case.detail
            elif case.grade == Grade.SKIPPED:
                ET.SubElement(element, "skipped", message=case.detail)
            elif case.grade == Grade.NON_STRICT:
                out = ET.SubElement(element, "system-out")
                out.text = f"non-strict (a SHOULD is not met): {failure_text(case)}"
            elif case.measurements:
                out = ET.SubElement(element, "system-out")
                out.text = orjson.dumps(case.measurements).decode()
        if result.cannot_run:
            ET.SubElement(suite, "system-err").text = f"could not run: {result.cannot_run}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: SuiteResult) -> str:
    lines = [f"## Store protocol conformance: {verdict(result)}", ""]
    lines.append(
        f"Server `{result.url}` · {len(result.results)} cases in {result.duration_s:.1f} s"
    )
    if result.limits:
        lines[-1] += f" · limits {result.limits}"
    if result.not_promised:
        lines += [
            "",
            "Not promised by this store, so not judged: " + "; ".join(result.not_promised),
        ]
    if result.cannot_run:
        lines += ["", f"**The suite could not run:** {result.cannot_run}"]
        return "\n".join(lines) + "\n"
    lines += ["", "| " + " | ".join(f"{GRADE_MARK[g]} {g}" for g in Grade) + " |"]
    lines += [
        "|" + "---|" * len(Grade),
        "| " + " | ".join(str(result.count(g)) for g in Grade) + " |",
    ]
    for grade, heading in (
        (Grade.FAILED, "Failed (required)"),
        (Grade.ERROR, "Harness errors"),
        (Grade.NON_STRICT, "Non-strict (a SHOULD is not met)"),
    ):
        chosen = [r for r in result.results if r.grade == grade]
        if chosen:
            lines += ["", f"### {heading}", "", "| case | what went wrong |", "|---|---|"]
            lines += [f"| `{r.case_id}` | {_cell(r.detail)[:300]} |" for r in chosen]
    lines += ["", "### By spec section", "", "| section | cases | passed | failed | other |"]
    lines.append("|---|---|---|---|---|")
    for number, title in SECTIONS.items():
        cases = [r for r in result.results if r.requirement[1:].split(".")[0] == number]
        passed = sum(1 for r in cases if r.grade == Grade.PASSED)
        failed = sum(1 for r in cases if r.grade == Grade.FAILED)
        other = len(cases) - passed - failed
        lines.append(f"| {number}. {title} | {len(cases)} | {passed} | {failed} | {other} |")
    measured = [r for r in result.results if r.grade == Grade.INFORMATIONAL and r.measurements]
    if measured:
        lines += ["", "### Measured (informational)", ""]
        lines += [f"- `{r.case_id}`: {orjson.dumps(r.measurements).decode()}" for r in measured]
    return "\n".join(lines) + "\n"
