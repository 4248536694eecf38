"""store-harness explain: any key of a run in any window, valid verdict or not; one-line errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import orjson
import pytest
from browser import CHROMIUM
from devtools import Browser

from harness.checker import check
from harness.cli import main
from harness.history.reader import read_history

GOLDEN = Path(__file__).parents[1] / "checker" / "golden"
VALID = GOLDEN / "concurrent_writes_either_order.valid.jsonl"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory as a swarm leaves it, holding a history the checker finds valid."""
    (tmp_path / "run" / "history").mkdir(parents=True)
    shutil.copy(VALID, tmp_path / "run" / "history" / "local.jsonl")
    assert check(read_history([VALID])).valid
    return tmp_path / "run"


def test_explain_draws_a_key_of_a_valid_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(run_dir), "--key", "k"]) == 0
    page = run_dir / "explain-k.html"
    assert capsys.readouterr().out.strip() == f"explain: {page}"
    html = page.read_text(encoding="utf-8")
    history = read_history([VALID])
    # Every event of the key is drawn, and none is outlined: there is no counterexample.
    assert html.count("data-ev=") == len(history.events)
    assert ' cx"' not in html and " cx " not in html
    if Path(CHROMIUM).exists():
        with Browser(tmp_path / "chromium") as browser:
            visit = browser.open(
                page,
                "[document.documentElement.dataset.timelinesDrawn, "
                "document.documentElement.dataset.scriptErrors, "
                "document.querySelectorAll('svg.tl .lane').length]",
            )
        assert visit.fetched == [page.resolve().as_uri()] and visit.errors == []
        drawn, errors, lanes = visit.value
        assert (drawn, errors) == ("1", "")
        assert lanes == len({e.conn for e in history.events})


def raw_events(page: Path) -> list[dict[str, object]]:
    """The events a page draws, as it quotes them for hovering."""
    html = page.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" class="tl-raw">(.*?)</script>', html)
    assert found is not None
    return [orjson.loads(text) for text in orjson.loads(found.group(1))]


def test_a_window_keeps_only_its_events(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "window.html"
    # Golden times are nanoseconds from the first event: the first 5 hold the observes
    # (whose observers stay active into the window), not the writes, sent at 9 and 10.
    args = ["explain", str(run_dir), "--key", "k", "--to", "0.000000005", "--out", str(out)]
    assert main(args) == 0
    ops = {event.get("op") for event in raw_events(out) if event["ev"] == "invoke"}
    assert ops == {"observe"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "nope"], "no key 'nope' in this history; its keys: 'k'"),
        (["--key", "k", "--from", "2", "--to", "1"], "empty window: --from 2 is not before --to 1"),
        (["--key", "k", "--from", "5"], "no event of key 'k' between 5 s and the end"),
        (["--key", "k", "--session", "other"], "no key 'k' in session 'other'"),
    ],
)
def test_bad_requests_get_one_line(
    run_dir: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(run_dir), *args]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_a_missing_run_dir_or_history_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(tmp_path / "absent"), "--key", "k"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"store-harness explain: error: no run directory {tmp_path / 'absent'}"
    )
    assert main(["explain", str(tmp_path), "--key", "k"]) == 2
    assert "holds no history" in capsys.readouterr().err
