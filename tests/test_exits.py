"""Exit codes come from one place: harness.exits."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.errors import ConnectionLost, HarnessError, HarnessUsageError, HistoryError
from harness.exits import EXIT_CANNOT_RUN, EXIT_INTERRUPTED, EXIT_OK, exit_code_for


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (HarnessUsageError("bad option"), EXIT_CANNOT_RUN),
        (HistoryError("line 3"), EXIT_CANNOT_RUN),
        (HarnessError("unreachable"), EXIT_CANNOT_RUN),
        (ConnectionLost("gone"), EXIT_CANNOT_RUN),
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
        (BrokenPipeError(), EXIT_OK),
    ],
)
def test_exit_code_for(exc, code):
    assert exit_code_for(exc) == code


def test_the_cli_exits_2_on_a_usage_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.jsonl")]) == EXIT_CANNOT_RUN
    assert "store-harness check: error:" in capsys.readouterr().err
