"""The conformance reports: JSON, HTML, JUnit XML and Markdown from one SuiteResult,
plus the matrix page comparing several servers."""

from __future__ import annotations

from pathlib import Path

from harness.conformance.case import SuiteResult
from harness.conformance.reports.page import render_html, render_matrix
from harness.conformance.reports.text import render_json, render_junit, render_markdown

REPORT_FILES = ("conformance.json", "conformance.html", "conformance.xml", "conformance.md")


def write_reports(result: SuiteResult, directory: Path) -> list[Path]:
    """Write the four report files of one server into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    contents = (
        render_json(result),
        render_html(result),
        render_junit([result]),
        render_markdown(result),
    )
    paths = []
    for name, text in zip(REPORT_FILES, contents, strict=True):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def write_matrix(results: list[tuple[str, SuiteResult]], directory: Path) -> Path:
    """The side-by-side page; ``results`` pairs each server's report folder with its result."""
    path = directory / "matrix.html"
    path.write_text(render_matrix(results), encoding="utf-8")
    return path


__all__ = ["REPORT_FILES", "write_matrix", "write_reports"]
