"""Reports of a run directory: HTML, JSON, Markdown and HdrHistogram ``.hgrm`` files.

    result = build_report("runs/demo", out_dir="reports", thresholds=gather(["notify.p99<50ms"]))
    result.failed  # a threshold or regression breached, or the consistency check failed

All formats render one figures dictionary (:func:`harness.reports.figures.build_figures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.errors import HarnessUsageError
from harness.latency.histograms import hgrm_text
from harness.latency.thresholds import Threshold
from harness.reports import html, markdown
from harness.reports.figures import Run, build_figures, load_run
from harness.reports.sweep import render_sweep
from harness.run.directory import write_text


@dataclass
class ReportResult:
    out_dir: Path
    files: list[Path]
    figures: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.figures["verdict"] == "failed"


def build_report(
    run_dir: str | Path,
    *,
    out_dir: str | Path = "reports",
    thresholds: Sequence[Threshold] = (),
    baseline_dir: str | Path | None = None,
    max_regression: float | None = None,
    at: Sequence[str] = ("p99",),
) -> ReportResult:
    """Write every report file for ``run_dir`` into ``out_dir``."""
    run = load_run(run_dir)
    baseline: Run | None = load_run(baseline_dir) if baseline_dir is not None else None
    figures = build_figures(run, list(thresholds), baseline, max_regression, list(at))
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessUsageError(f"cannot create output directory {out}: {exc.strerror}") from None
    files = [
        _write(out / "report.html", html.render(figures, out)),
        _write(out / "report.md", markdown.render(figures)),
        _write(out / "report.json", orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode()),
    ]
    for metric, histogram in run.totals.items():
        if histogram.get_total_count():
            files.append(_write(out / f"{metric}.hgrm", hgrm_text(histogram)))
    return ReportResult(out, files, figures)


def _write(path: Path, text: str) -> Path:
    write_text(path, text)  # the report lives in the run directory: atomic like the rest
    return path


__all__ = ["ReportResult", "build_report", "load_run", "render_sweep"]
