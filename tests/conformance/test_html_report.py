"""The HTML reports open in headless Chromium without script errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import CHROMIUM, chromium
from faulty_servers import StopIgnoredServer
from suite_runs import run_against

from harness.conformance.reports import write_matrix, write_reports

#: Runs first in <head>: records every script error into the DOM for --dump-dom to show.
CATCH_ERRORS = """<script>
window.__errors = [];
window.onerror = function (message, source, line) { window.__errors.push(message + ' @' + line); };
</script>"""

#: Runs last: exercises the page's own functions, then writes what happened into the DOM.
EXERCISE = """<script>
document.addEventListener('DOMContentLoaded', function () {
  try {
    setOpen('details.case', true);
    setOpen('details.case', false);
    showOnlyProblems(true);
    showOnlyProblems(false);
    openFromHash();
  } catch (e) { window.__errors.push(String(e)); }
  var out = document.createElement('pre');
  out.id = 'harness-check';
  out.textContent = 'errors=' + JSON.stringify(window.__errors);
  document.body.appendChild(out);
});
</script>"""


def instrumented(page: Path) -> Path:
    html = page.read_text(encoding="utf-8")
    html = html.replace("<head>", "<head>" + CATCH_ERRORS, 1).replace(
        "</body>", EXERCISE + "</body>"
    )
    copy = page.with_name(f"checked-{page.name}")
    copy.write_text(html, encoding="utf-8")
    return copy


def dump_dom(page: Path, profile: Path) -> str:
    return chromium(page, profile, "--virtual-time-budget=2000", "--dump-dom").stdout


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (.ci/run installs it)")
    folder = tmp_path_factory.mktemp("html")
    # A run with failures, so the page holds open transcripts and expected/got tables.
    faulty = run_against(StopIgnoredServer, patterns=["R4.5-*", "R1.4-*", "R5.4-binary-frame"])
    reference = run_against(patterns=["R4.5-*", "R1.4-*", "R5.4-binary-frame"])
    write_reports(faulty, folder / "1-faulty")
    write_reports(reference, folder / "2-reference")
    write_matrix([("1-faulty", faulty), ("2-reference", reference)], folder)
    return folder


@pytest.mark.parametrize("page", ["1-faulty/conformance.html", "matrix.html"])
def test_page_opens_without_script_errors(report_folder: Path, page: str, tmp_path: Path) -> None:
    dom = dump_dom(instrumented(report_folder / page), tmp_path / "profile")
    assert '<pre id="harness-check">errors=[]</pre>' in dom
    assert "Store protocol conformance" in dom


def test_report_page_shows_cases_and_transcripts(report_folder: Path, tmp_path: Path) -> None:
    dom = dump_dom(instrumented(report_folder / "1-faulty/conformance.html"), tmp_path / "p")
    assert 'id="case-R4.5-stop-ends-deliveries"' in dom
    assert 'class="transcript"' in dom
    assert "&quot;type&quot;:&quot;stopObserving&quot;" in dom or '"type":"stopObserving"' in dom


#: Runs last: how far the widest transcript reaches past the case box that holds it.
MEASURE_OVERFLOW = """<script>
document.addEventListener('DOMContentLoaded', function () {
  setOpen('details.case', true);
  var worst = 0;
  document.querySelectorAll('table.transcript').forEach(function (t) {
    var box = t.closest('details').getBoundingClientRect().right;
    worst = Math.max(worst, t.getBoundingClientRect().right - box);
  });
  var out = document.createElement('pre');
  out.id = 'overflow';
  out.textContent = 'overflow=' + Math.round(worst) + ' page=' +
    (document.documentElement.scrollWidth - document.documentElement.clientWidth);
  document.body.appendChild(out);
});
</script>"""


def test_long_frames_stay_inside_their_case_box(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (.ci/run installs it)")
    from faulty_servers import TruncatedUpdatesServer

    # 1024-byte values with no spaces to break at: the longest frames a case records.
    result = run_against(TruncatedUpdatesServer, patterns=["R4.2-update-carries-*"])
    assert any(len(line.text) > 400 for r in result.results for line in r.transcript)
    write_reports(result, tmp_path / "report")
    page = tmp_path / "report" / "conformance.html"
    html = page.read_text(encoding="utf-8").replace("</body>", MEASURE_OVERFLOW + "</body>")
    page.write_text(html, encoding="utf-8")
    dom = chromium(
        page,
        tmp_path / "profile",
        "--window-size=1024,768",
        "--virtual-time-budget=2000",
        "--dump-dom",
    ).stdout
    assert '<pre id="overflow">overflow=0 page=0</pre>' in dom, dom[-500:]
