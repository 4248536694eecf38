"""The suite with a token secret (R2.4): the whole suite passes against a reference server
that checks tokens, each access case judges, and a lax access check is caught."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import jwt
import orjson
import pytest
from suite_runs import FAULT_OPTIONS, run_against

from harness.cli import main
from harness.conformance.case import Grade, SuiteResult
from harness.conformance.context import SuiteOptions
from harness.conformance.runner import SuiteCannotRun, preflight, select_cases
from harness.protocol import Join
from harness.server.aio import ReferenceServer
from harness.server.embedded import EmbeddedServer

SECRET = "conformance-test-secret-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]

ACCESS_CASES = [c.id for c in select_cases(["R2.4-*"])]
#: The cases that need the secret: all of R2.4 but the bogus-token one, which needs none.
SECRET_CASES = [c for c in ACCESS_CASES if c != "R2.4-refused-join-unauthorized-then-closed"]


class SecretServer(ReferenceServer):
    """The reference server with its access check on."""

    def __init__(self, **options: object) -> None:
        super().__init__(token_secret=SECRET, **options)  # type: ignore[arg-type]


class ExpiredTokensAcceptedServer(SecretServer):
    """Checks a token's signature, session and participant, but never its expiry (R2.4)."""

    def authorize(self, join: Join) -> str | None:
        if join.token is None:
            return "a token is required"
        try:
            claims = jwt.decode(
                join.token, SECRET, algorithms=["HS256"], options={"verify_exp": False}
            )
        except jwt.InvalidTokenError:
            return "bad token"
        if (claims.get("session"), claims.get("participant")) != (
            join.session,
            join.participant.id,
        ):
            return "token for someone else"
        return None


class SecretInRefusalServer(SecretServer):
    """Explains a refusal too well: the UNAUTHORIZED message quotes the secret (R2.4)."""

    def authorize(self, join: Join) -> str | None:
        refusal = super().authorize(join)
        return None if refusal is None else f"{refusal} (expected HS256 under {SECRET!r})"


@pytest.fixture(scope="module")
def secret_run() -> SuiteResult:
    return run_against(SecretServer, SuiteOptions(session_prefix="access", token_secret=SECRET))


def test_the_whole_suite_passes_with_tokens_minted_per_join(secret_run: SuiteResult) -> None:
    problems = [
        f"{r.case_id}: {r.grade}: {r.detail}"
        for r in secret_run.results
        if r.grade not in (Grade.PASSED, Grade.INFORMATIONAL)
    ]
    assert problems == []  # nothing skipped either: the access cases ran
    assert secret_run.exit_code == 0
    assert len(secret_run.results) == len(select_cases())
    # Reports say a secret was used, never which.
    assert secret_run.options["token_secret"] == "(set)"
    assert SECRET not in orjson.dumps(secret_run.to_json()).decode()


@pytest.mark.parametrize("case_id", ACCESS_CASES)
def test_each_access_case_passes_against_the_reference(
    secret_run: SuiteResult, case_id: str
) -> None:
    [result] = [r for r in secret_run.results if r.case_id == case_id]
    assert result.grade == Grade.PASSED, result.detail
    if case_id != "R2.4-valid-token-admitted":
        # The transcript shows the refusal and the close the case judged.
        assert any("UNAUTHORIZED" in line.text for line in result.transcript)


def test_at_least_the_required_access_cases_exist() -> None:
    for tag in (
        "missing-token",
        "expired-token",
        "wrong-signature",
        "token-for-another-session",
        "token-for-another-participant",
        "valid-token-admitted",
    ):
        assert f"R2.4-{tag}" in ACCESS_CASES


@pytest.mark.parametrize("token", [None, "a-shared-token"], ids=["no-token", "token"])
def test_without_a_secret_the_access_cases_are_skipped_with_the_reason(token: str | None) -> None:
    result = run_against(None, SuiteOptions(token=token), ["R2.4-*"])
    skipped = {r.case_id: r.detail for r in result.results if r.grade == Grade.SKIPPED}
    assert sorted(skipped) == sorted(ACCESS_CASES)
    for case_id in SECRET_CASES:
        assert "no --token-secret given" in skipped[case_id]
    assert result.exit_code == 0


def test_a_server_accepting_expired_tokens_is_caught_by_the_expiry_case() -> None:
    options = SuiteOptions(
        session_prefix="faulty",
        request_timeout=FAULT_OPTIONS.request_timeout,
        settle=FAULT_OPTIONS.settle,
        token_secret=SECRET,
    )
    result = run_against(ExpiredTokensAcceptedServer, options, ["R2.*"])
    grades = {r.case_id: r for r in result.results}
    assert result.exit_code == 1
    failed = [r.case_id for r in result.results if r.grade == Grade.FAILED]
    assert failed == ["R2.4-expired-token"], failed
    assert "admitted" in grades["R2.4-expired-token"].detail


def test_the_wrong_secret_or_a_plain_token_cannot_run_with_a_hint() -> None:
    with EmbeddedServer(SecretServer) as server:
        wrong = SuiteOptions(token_secret="x" * 32)
        with pytest.raises(SuiteCannotRun, match=r"UNAUTHORIZED.*--token-secret"):
            asyncio.run(preflight(server.url, wrong))
        with pytest.raises(SuiteCannotRun, match=r"UNAUTHORIZED.*\(pass the right --token\)"):
            asyncio.run(preflight(server.url, SuiteOptions(token="letmein")))


def test_the_command_mints_tokens_with_token_secret(tmp_path: Path) -> None:
    with EmbeddedServer(SecretServer) as server:
        args = ["conformance", "--url", server.url, "--report-dir", str(tmp_path)]
        assert main([*args, "--token-secret", SECRET, "--case", "R2.*", "--quiet"]) == 0
    data = orjson.loads((tmp_path / "conformance.json").read_bytes())
    grades = {c["id"]: c["grade"] for c in data["cases"]}
    assert all(grades[c] == "passed" for c in ACCESS_CASES)
    assert SECRET not in (tmp_path / "conformance.json").read_text(encoding="utf-8")


def test_the_command_with_no_url_checks_tokens_on_its_embedded_server(tmp_path: Path) -> None:
    args = ["conformance", "--report-dir", str(tmp_path), "--case", "R2.4-*", "--quiet"]
    assert main([*args, "--token-secret", SECRET]) == 0
    data = orjson.loads((tmp_path / "conformance.json").read_bytes())
    assert {c["grade"] for c in data["cases"]} == {"passed"}


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--token", "t", "--token-secret", SECRET], "not both"),
        (["--token-secret", "short"], "32 bytes"),
    ],
)
def test_the_command_refuses_bad_token_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: list[str], message: str
) -> None:
    assert main(["conformance", "--report-dir", str(tmp_path), *bad]) == 2
    assert message in capsys.readouterr().err


def test_the_pytest_front_end_takes_token_secret() -> None:
    command = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, "-k", "R2_4 or R2.4", "--token-secret", SECRET],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert f"{len(ACCESS_CASES)} passed" in summary and "skipped" not in summary, summary


def test_a_server_quoting_its_secret_is_caught_and_no_report_repeats_it(tmp_path: Path) -> None:
    with EmbeddedServer(SecretInRefusalServer) as server:
        args = ["conformance", "--url", server.url, "--report-dir", str(tmp_path), "--quiet"]
        assert main([*args, "--token-secret", SECRET, "--case", "R2.4-*"]) == 1
    data = orjson.loads((tmp_path / "conformance.json").read_bytes())
    failed = {c["id"]: c for c in data["cases"] if c["grade"] == "failed"}
    assert set(failed) == set(ACCESS_CASES) - {"R2.4-valid-token-admitted"}, sorted(failed)
    for case in failed.values():
        assert "contains the server's token secret" in case["detail"], case["detail"]
    # Neither the secret nor any token's signature reaches a report, transcripts included;
    # the tokens' header and claims stay, so a reader sees which token a join carried.
    signed = re.compile(r"eyJ[\w-]*\.eyJ[\w-]*\.[\w-]+")
    for report in tmp_path.iterdir():
        text = report.read_text(encoding="utf-8")
        assert SECRET not in text, report.name
        assert not signed.search(text), report.name
    assert ".(signature redacted)" in (tmp_path / "conformance.json").read_text(encoding="utf-8")
