"""verdict.html: every golden anomaly drawn, exactly its counterexample outlined, nothing fetched,
zoom and hover working, and a bounded page for a large history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM
from devtools import Browser

from harness.checker import KINDS, check
from harness.history.reader import History, read_history
from harness.reports.html import _verdict_link
from harness.reports.timeline import MAX_PAGE_EVENTS, explain_page, verdict_page
from harness.reports.timeline.scene import quote

GOLDEN = Path(__file__).parents[1] / "checker" / "golden"
INVALID = sorted(GOLDEN.glob("*.invalid.jsonl"))

#: What the page shows once loaded: its self-check, and per anomaly the raw text of
#: every element outlined as the counterexample.
INSPECT = """(() => {
  const raw = box => JSON.parse(box.querySelector('script.tl-raw').textContent);
  return {
    drawn: document.documentElement.dataset.timelinesDrawn,
    errors: document.documentElement.dataset.scriptErrors,
    anomalies: [...document.querySelectorAll('section.anomaly')].map(section => {
      const box = section.querySelector('.tl-box'), texts = raw(box);
      return {kind: section.dataset.kind,
              outlined: [...box.querySelectorAll('.cx')].map(el => el.dataset.ev === undefined
                ? null : texts[+el.dataset.ev]),
              events: box.querySelectorAll('[data-ev]').length};
    }),
  };
})()"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (.ci/run installs it)")
    with Browser(tmp_path_factory.mktemp("chromium")) as running:
        yield running


def _page(tmp_path: Path, history: History, name: str = "verdict.html") -> tuple[Path, Any]:
    verdict = check(history)
    page = tmp_path / name
    page.write_text(verdict_page(history, verdict, source=name), encoding="utf-8")
    return page, verdict


def test_every_anomaly_kind_has_a_golden_history_to_draw() -> None:
    assert {p.name.split(".")[0] for p in INVALID} == set(KINDS)


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_a_golden_anomaly_is_drawn_with_exactly_its_counterexample_outlined(
    path: Path, browser: Browser, tmp_path: Path
) -> None:
    page, verdict = _page(tmp_path, read_history([path]))
    html = page.read_text(encoding="utf-8")
    assert "https://" not in html and "http://" not in html.replace("http://www.w3.org/", "")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    visit = browser.open(page, INSPECT)
    assert visit.fetched == [page.resolve().as_uri()]  # the page itself, nothing else
    assert visit.errors == [] and visit.value["errors"] == ""
    shown = {a["kind"]: a for a in visit.value["anomalies"]}
    assert set(shown) == set(verdict.examples)
    assert int(visit.value["drawn"]) == len(verdict.examples)
    for kind, anomaly in verdict.examples.items():
        outlined = shown[kind]["outlined"]
        # Exactly the counterexample's events, each once: no other element is outlined.
        assert sorted(outlined) == sorted(quote(e) for e in anomaly.events), kind
    assert path.name.split(".")[0] in shown


def test_zoom_pan_and_hover_move_and_show_the_events(browser: Browser, tmp_path: Path) -> None:
    page, _ = _page(tmp_path, read_history([GOLDEN / "realtime_write_order.invalid.jsonl"]))
    exercise = """(() => {
      const svg = document.querySelector('svg.tl'), bar = svg.querySelector('rect.bar');
      const before = +bar.getAttribute('x'), box = svg.getBoundingClientRect();
      const at = {clientX: box.left + box.width * 0.6, clientY: box.top + 40, bubbles: true};
      svg.dispatchEvent(new WheelEvent('wheel', {...at, deltaY: -100, cancelable: true}));
      const zoomed = +bar.getAttribute('x');
      svg.dispatchEvent(new MouseEvent('mousedown', at));
      svg.dispatchEvent(new MouseEvent('mousemove', {...at, clientX: at.clientX + 80}));
      window.dispatchEvent(new MouseEvent('mouseup', at));
      const panned = +bar.getAttribute('x');
      const mark = svg.querySelector('[data-ev].cx'), r = mark.getBoundingClientRect();
      mark.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left, clientY: r.top,
                                                      bubbles: true}));
      const tip = document.querySelector('.tl-tip');
      const raw = JSON.parse(document.querySelector('script.tl-raw').textContent);
      return {before, zoomed, panned, tip: tip.textContent, shown: tip.style.display,
              expected: raw[+mark.dataset.ev], scale: 1200 / box.width};
    })()"""
    found = browser.open(page, exercise).value
    assert found["zoomed"] != found["before"]  # zooming in moved the bar
    # Dragging 80 pixels right moves the bar 80 pixels right (in the SVG's units).
    assert found["panned"] == pytest.approx(found["zoomed"] + 80 * found["scale"], abs=1)
    assert found["shown"] == "block" and found["tip"] == found["expected"]
    assert '"ev":' in found["tip"]  # the raw event as recorded


def _large_history(writes: int, observers: int, value_bytes: int) -> History:
    """One key, ``writes`` sets and ``observers`` observers that each receive every
    write, but one: observer o0 misses the write in the middle (a lost update)."""
    events: list[dict[str, Any]] = [{"ev": "header", "format": 1, "clock": "h/boot"}]
    t = 1_000
    for n in range(observers):
        conn = f"c{n}"
        events.append({"ev": "invoke", "t": t, "conn": conn, "p": f"p{n}", "s": "s", "req": 1,
                       "op": "observe", "key": "k"})  # fmt: skip
        events.append({"ev": "done", "t": t + 5, "conn": conn, "p": f"p{n}", "s": "s",
                       "req": 1, "op": "observe", "key": "k", "result": "observing",
                       "obs": "o0"})  # fmt: skip
        t += 10
    pad = "~" * value_bytes
    for w in range(writes):
        t += 1_000_000  # a write each millisecond
        value = f"w{w}{pad}"
        events.append({"ev": "invoke", "t": t, "conn": "writer", "p": "writer", "s": "s",
                       "req": w + 2, "op": "set", "key": "k", "value": value})  # fmt: skip
        events.append({"ev": "done", "t": t + 200_000, "conn": "writer", "p": "writer",
                       "s": "s", "req": w + 2, "op": "set", "key": "k",
                       "result": "ok"})  # fmt: skip
        for n in range(observers):
            if n == 0 and w == writes // 2:
                continue
            events.append({"ev": "update", "t": t + 300_000 + n, "conn": f"c{n}", "p": f"p{n}",
                           "s": "s", "obs": "o0", "key": "k", "value": value,
                           "by": "writer"})  # fmt: skip
    return History.from_events(events)


def test_a_large_history_gives_a_bounded_page(browser: Browser, tmp_path: Path) -> None:
    # 2,000 writes of 1 KB values to 20 observers: about 44,000 events.
    history = _large_history(2_000, 20, 1_000)
    assert len(history.events) > 40_000
    page, verdict = _page(tmp_path, history)
    assert "lost_update" in verdict.counts, verdict.to_text()
    size = page.stat().st_size
    assert size < 2_000_000, size
    visit = browser.open(page, INSPECT)
    assert visit.fetched == [page.resolve().as_uri()] and visit.value["errors"] == ""
    shown = {a["kind"]: a for a in visit.value["anomalies"]}
    assert set(shown) == set(verdict.examples)  # the missed write is a gap too
    assert sum(a["events"] for a in shown.values()) <= MAX_PAGE_EVENTS
    for kind, anomaly in verdict.examples.items():
        assert sorted(shown[kind]["outlined"]) == sorted(quote(e) for e in anomaly.events)
    assert "not drawn" in page.read_text(encoding="utf-8")  # the cap says so
    explained = explain_page(history, "k", source="large")
    assert len(explained) < 2_000_000 and explained.count("data-ev=") <= MAX_PAGE_EVENTS


def test_a_valid_verdict_page_says_so_and_points_to_explain(tmp_path: Path) -> None:
    page, verdict = _page(tmp_path, read_history([GOLDEN / "two_machines.valid.jsonl"]))
    html = page.read_text(encoding="utf-8")
    assert verdict.valid and "VALID" in html and "store-harness explain" in html
    assert 'class="tl"' not in html


def test_report_html_links_verdict_html_only_when_it_exists(tmp_path: Path) -> None:
    assert _verdict_link({"run_dir": str(tmp_path)}, tmp_path / "report") == ""
    (tmp_path / "verdict.html").write_text("<!DOCTYPE html>")
    assert 'href="../verdict.html"' in _verdict_link(
        {"run_dir": str(tmp_path)}, tmp_path / "report"
    )
