"""store-harness check --out DIR: the verdict's three files, verdict.html named under its line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harness.cli import main

GOLDEN = Path(__file__).parents[1] / "checker" / "golden"


def test_out_writes_the_verdict_files_and_names_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "verdict"
    assert main(["check", str(GOLDEN / "gap.invalid.jsonl"), "--out", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["verdict: INVALID", f"verdict.html: {out / 'verdict.html'}"]
    assert orjson.loads((out / "verdict.json").read_bytes())["counts"] == {"gap": 1}
    assert (out / "verdict.txt").read_text().startswith("verdict: INVALID")
    assert 'data-kind="gap"' in (out / "verdict.html").read_text(encoding="utf-8")


def test_json_output_stays_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = GOLDEN / "two_machines.valid.jsonl"
    assert main(["check", str(path), "--json", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert orjson.loads(captured.out)["result"] == "valid"
    assert captured.err.strip() == f"verdict.html: {tmp_path / 'verdict.html'}"


def test_an_unwritable_out_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["check", str(GOLDEN / "gap.invalid.jsonl"), "--out", str(blocker / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("store-harness check: error: cannot write into") and "\n" not in error
