"""Hand-written histories; each file name carries its expected verdict and anomaly kind.

``stale_read.invalid.jsonl`` must be judged invalid with at least a ``stale_read``;
``*.valid.jsonl`` must be judged valid. A second case of one kind names itself
between the two: ``stale_read.null_after_later_writes.invalid.jsonl``.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harness.checker import KINDS, check
from harness.cli import main
from harness.history.reader import History, read_history

GOLDEN = Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.jsonl"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden_history_gets_the_verdict_its_name_says(path: Path) -> None:
    name, *_, expected, _ = path.name.split(".")
    verdict = check(read_history([path]))
    assert verdict.result == expected, verdict.to_text()
    if expected == "invalid":
        assert name in verdict.counts, verdict.to_text()
        example = verdict.examples[name]
        assert example.events, "a counterexample must quote the events that prove it"
        assert example.message
    else:
        assert verdict.counts == {}


def test_every_anomaly_kind_has_a_golden_history() -> None:
    covered = {p.name.split(".")[0] for p in FILES if ".invalid." in p.name}
    assert covered == set(KINDS)


def test_text_report_puts_diverging_sequences_side_by_side() -> None:
    verdict = check(read_history([GOLDEN / "order_divergence.invalid.jsonl"]))
    text = verdict.to_text()
    assert "order_divergence" in text and "R4.3" in text
    row = next(line for line in text.splitlines() if "'v1'" in line and "|" in line)
    assert row.count("|") == 1  # two columns: one observer each


def test_json_report_holds_counts_and_counterexamples() -> None:
    verdict = check(read_history([GOLDEN / "lost_update.invalid.jsonl"]))
    report = verdict.to_json()
    assert report["result"] == "invalid"
    assert report["counts"] == {"lost_update": 1}
    example = report["examples"]["lost_update"]
    assert example["requirement"] == "R4.1"
    assert [e["ev"] for e in example["events"]] == ["done", "invoke", "done"]
    assert all("d" not in e for e in example["events"])


def test_ambiguity_is_stated_in_the_verdict() -> None:
    verdict = check(read_history([GOLDEN / "values_not_unique.valid.jsonl"]))
    assert any("written more than once" in note for note in verdict.notes)


def test_check_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(GOLDEN / "reads_overlapping_write.valid.jsonl")]) == 0
    assert main(["check", str(GOLDEN / "gap.invalid.jsonl"), "--json"]) == 1
    assert '"gap"' in capsys.readouterr().out
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"ev":"header","clock":"c"}\n{"ev":"update"\n{"ev":"closed"}\n')
    assert main(["check", str(broken)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "broken.jsonl: line 2" in error
    assert main(["check", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


def test_a_search_out_of_budget_is_unknown_not_valid() -> None:
    verdict = check(read_history([GOLDEN / "nonlinearizable.invalid.jsonl"]), search_budget=1)
    assert verdict.result == "unknown", verdict.to_text()
    assert any("search budget" in note for note in verdict.notes)


def test_an_update_after_stop_is_named_quoted_and_blames_no_lost_update() -> None:
    path = GOLDEN / "update_after_stop.invalid.jsonl"
    verdict = check(read_history([path]))
    assert verdict.counts == {"update_after_stop": 1}, verdict.to_text()
    example = verdict.to_json()["examples"]["update_after_stop"]
    assert example["requirement"] == "R4.5"
    assert '{"type":"update","observerId":"o1"' in example["message"]
    assert "update_after_stop (protocol check, R4.5)" in verdict.to_text()
    # Alice's other observer (o2, of 'j') was owed carol's write only while her client
    # read: without the mark that the close followed a violation, it would be a lost_update.
    unmarked = [line.replace(',"violation":true', "") for line in path.read_text().splitlines()]
    assert "lost_update" in check(History.from_events(map(orjson.loads, unmarked))).counts


def test_a_violation_cites_its_own_requirement() -> None:
    verdict = check(read_history([GOLDEN / "protocol_violation.invalid.jsonl"]))
    example = verdict.to_json()["examples"]["protocol_violation"]
    assert example["requirement"] == "R1.4" and "updatedBy" in example["message"]
    assert "lost_update" not in verdict.counts


def test_a_store_promising_convergence_only_is_not_judged_on_order() -> None:
    """A store adapter's store that promises no per-key order (Capabilities.per_key_order)
    is judged on convergence alone, and the verdict says what was left out."""
    history = read_history([GOLDEN / "order_divergence.invalid.jsonl"])
    assert "order_divergence" in check(history).counts
    lenient = check(
        history,
        per_key_order=False,
        not_promised=["convergence only: update-order checks skipped"],
    )
    assert "order_divergence" not in lenient.counts
    assert "convergence only: update-order checks skipped" in lenient.notes
    # Convergence is still judged.
    history = read_history([GOLDEN / "convergence.invalid.jsonl"])
    assert "convergence" in check(history, per_key_order=False).counts
