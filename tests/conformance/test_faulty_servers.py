"""Every faulty server is rejected by the suite, and by the case meant to catch its bug."""

from __future__ import annotations

import pytest
from faulty_servers import FAULTY_SERVERS, SHOULD_ONLY_FAULTS
from suite_runs import catch_table, caught_by, run_against

from harness.conformance.case import Grade

#: The case each fault is built to break. Others may catch it too; this one must.
CAUGHT_BY: dict[str, str] = {
    "reordering": "R4.3-concurrent-writers-one-order",
    "stale-read": "R3.8-read-after-ack",
    "duplicate-notification": "R4.1-exactly-once",
    "dropped-notification": "R4.1-exactly-once",
    "head-of-line-blocking": "R4.7-stalled-reader-does-not-delay-others",
    "writer-not-notified": "R4.1-writer-notified",
    "stop-ignored": "R4.5-stop-ends-deliveries",
    "unknown-observer-ok": "R4.5-never-issued-observer",
    "initial-value": "R4.1-no-initial-value",
    "wrong-updated-by": "R4.2-update-fields",
    "prefix-match": "R4.1-key-scoping",
    "silent-delete-of-absent": "R3.2-delete-absent-is-a-write",
    "failed-set-notifies": "R5.3-failed-requests-change-nothing",
    "one-observer-per-key": "R4.4-several-observers-one-connection",
    "key-limit-off-by-one": "R3.6-sequential-fill",
    "size-in-characters": "R3.5-utf8-4byte-over",
    "empty-string-deletes": "R3.2-empty-string-is-a-value",
    "shared-store": "R3.7-sessions-isolated",
    "global-key-limit": "R3.7-limit-per-session",
    "key-limit-race": "R3.6-concurrent-race-admits-exactly-the-limit",
    "lost-writes-on-disconnect": "R4.6-disconnect-keeps-writes",
    "drop-on-bad-json": "R5.4-bad-json",
    "binary-frame-closes": "R5.4-binary-frame",
    "replies-out-of-order": "R1.3-pipelined-replies-in-order",
    "null-error-id": "R5.1-error-carries-request-id",
    "strict-fields": "R1.5-unknown-fields-ignored",
    "numeric-observer-id": "R1.4-every-reply-type-matches-schema",
    "lenient-json": "R5.4-id-boolean",
    "wrong-precedence": "R5.2-invalid-key-before-invalid-value",
    "second-join-accepted": "R2.2-second-join-refused",
    "unauthorized-keeps-connection": "R2.4-refused-join-unauthorized-then-closed",
    "truncated-updates": "R4.2-update-carries-written-value-intact",
    "case-insensitive-keys": "R3.10-keys-compared-exactly",
    "update-before-observing": "R4.8-observing-before-own-write",
}


def test_there_are_at_least_twenty_faults_each_with_its_case() -> None:
    assert len(FAULTY_SERVERS) >= 20
    assert set(CAUGHT_BY) == set(FAULTY_SERVERS)


@pytest.mark.parametrize("fault", list(FAULTY_SERVERS))
def test_faulty_server_is_rejected(fault: str) -> None:
    result = run_against(FAULTY_SERVERS[fault])
    grades = {r.case_id: r for r in result.results}
    expected = grades[CAUGHT_BY[fault]]
    if fault in SHOULD_ONLY_FAULTS:
        # The bug breaks only a SHOULD: the suite flags it, but may not fail the server.
        assert expected.grade == Grade.NON_STRICT, expected.detail
        return
    assert result.exit_code == 1, f"{fault} passed the suite"
    assert expected.grade == Grade.FAILED, (
        f"{CAUGHT_BY[fault]} did not catch {fault}; caught by {caught_by(result)}"
    )
    # A failure says what went wrong and shows the frames that show it.
    assert expected.detail
    assert expected.transcript


def test_catch_table_lists_each_fault_with_its_cases() -> None:
    from faulty_servers import StopIgnoredServer

    result = run_against(StopIgnoredServer, patterns=["R4.5-*"])
    table = catch_table({"stop-ignored": (StopIgnoredServer, result)})
    row = table.splitlines()[2]
    assert row.startswith("| `stop-ignored` | stopObserving answers ok")
    assert "`R4.5-stop-ends-deliveries`" in row
    assert "failed (MUST)" in row
