"""The access options (harness.access): where each join's token comes from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.access import Access
from harness.errors import HarnessUsageError


def test_a_token_file_gives_the_nth_participant_line_n_mod_count(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# issued for the test\nt0\n\nt1\n", encoding="utf-8")
    access = Access(token_file=str(tokens)).validate()
    got = [access.token_for("s", pid) for pid in ("a", "b", "c", "a")]
    assert got == ["t0", "t1", "t0", "t0"]  # "a" keeps its line when it joins again


def test_an_empty_token_file_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "tokens.txt"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(HarnessUsageError, match="holds no token"):
        Access(token_file=str(empty)).validate()


def test_a_token_command_runs_once_per_participant(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    script = tmp_path / "issue.py"
    script.write_text(
        "import sys\n"
        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "print('tok-' + sys.argv[2])\n",
        encoding="utf-8",
    )
    access = Access(token_cmd=f"{sys.executable} {script}").validate()
    assert access.token_for("s", "alice") == "tok-alice"
    assert access.token_for("s", "alice") == "tok-alice"
    assert access.token_for("s", "bob") == "tok-bob"
    assert calls.read_text(encoding="utf-8").splitlines() == ["s alice", "s bob"]


def test_a_failing_token_command_says_so_without_quoting_its_output() -> None:
    access = Access(token_cmd=f"{sys.executable} -c 'import sys; print(\"hush\"); sys.exit(3)'")
    with pytest.raises(HarnessUsageError, match="exited with 3") as caught:
        access.token_for("s", "alice")
    assert "hush" not in str(caught.value)


def test_reports_see_which_options_were_used_never_a_credential() -> None:
    access = Access(token="tok-secret", headers=(("Authorization", "Bearer hush"),))
    shown = repr(access) + repr(access.to_json())
    assert "tok-secret" not in shown and "hush" not in shown
    assert access.to_json()["token"] == "--token"
    assert set(access.hidden()) == {"tok-secret", "Bearer hush"}
