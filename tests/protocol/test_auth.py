"""Join tokens (R2.4): what mint_token makes, and every reason check_token refuses one."""

from __future__ import annotations

import time

import jwt
import pytest

from harness.errors import HarnessUsageError
from harness.protocol.auth import (
    MIN_SECRET_BYTES,
    check_secret,
    check_token,
    mint_token,
    redact_tokens,
)

SECRET = "correct-horse-battery-staple-0123456789"
OTHER_SECRET = "another-secret-entirely-0123456789abcdef"


def test_a_minted_token_carries_the_three_claims_signed_with_hs256() -> None:
    token = mint_token(SECRET, "meeting-1", "alice", ttl_s=120, now=1_000_000)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"session": "meeting-1", "participant": "alice", "exp": 1_000_120}


def test_a_token_admits_its_own_session_and_participant() -> None:
    assert (
        check_token(SECRET, mint_token(SECRET, "meeting-1", "alice"), "meeting-1", "alice") is None
    )


def _unsigned() -> str:
    claims = {"session": "s", "participant": "alice", "exp": int(time.time()) + 60}
    return jwt.encode(claims, None, algorithm="none")


def _without(claim: str) -> str:
    claims = {"session": "s", "participant": "alice", "exp": int(time.time()) + 60}
    del claims[claim]
    return jwt.encode(claims, SECRET, algorithm="HS256")


REFUSALS = {
    "missing": (lambda: None, "a token is required"),
    "expired": (
        lambda: mint_token(SECRET, "s", "alice", 60, now=time.time() - 3600),
        "the token has expired",
    ),
    "wrong secret": (
        lambda: mint_token(OTHER_SECRET, "s", "alice"),
        "the token's signature is not valid",
    ),
    "unsigned": (_unsigned, "the token is not signed with HS256"),
    "HS512": (
        lambda: jwt.encode(
            {"session": "s", "participant": "alice", "exp": int(time.time()) + 60},
            SECRET + SECRET,
            algorithm="HS512",
        ),
        "the token is not signed with HS256",
    ),
    "not a JWT": (lambda: "not.a.jwt", "the token is not a well-formed JWT"),
    "garbage": (lambda: "letmein", "the token is not a well-formed JWT"),
    "no exp": (lambda: _without("exp"), "the token has no 'exp' claim"),
    "no session": (lambda: _without("session"), "the token has no 'session' claim"),
    "no participant": (lambda: _without("participant"), "the token has no 'participant' claim"),
    "other session": (
        lambda: mint_token(SECRET, "other", "alice"),
        "the token is for another session",
    ),
    "other participant": (
        lambda: mint_token(SECRET, "s", "mallory"),
        "the token is for another participant",
    ),
}


@pytest.mark.parametrize("make, reason", REFUSALS.values(), ids=REFUSALS.keys())
def test_each_bad_token_is_refused_with_its_reason(make, reason) -> None:
    got = check_token(SECRET, make(), "s", "alice")
    assert got == reason
    # The reason goes back to the client: it must never carry the secret.
    assert SECRET not in got


def test_a_little_clock_skew_is_allowed() -> None:
    # Expired ten seconds ago by the issuer's clock: within the skew the spec allows.
    token = mint_token(SECRET, "s", "alice", 60, now=time.time() - 70)
    assert check_token(SECRET, token, "s", "alice") is None
    assert check_token(SECRET, token, "s", "alice", leeway_s=0) == "the token has expired"


def test_a_secret_shorter_than_hs256_needs_is_a_usage_error() -> None:
    check_secret("x" * MIN_SECRET_BYTES)
    for short in ("", "letmein", "x" * (MIN_SECRET_BYTES - 1)):
        with pytest.raises(HarnessUsageError, match="at least 32 bytes"):
            check_secret(short)
        with pytest.raises(HarnessUsageError):
            mint_token(short, "s", "alice")


def test_redaction_keeps_a_tokens_header_and_claims_and_drops_its_signature() -> None:
    token = mint_token(SECRET, "meeting-1", "alice")
    header_and_claims, signature = token.rsplit(".", 1)
    text = redact_tokens(f'{{"type":"join","token":"{token}"}}')
    assert signature not in text
    assert f"{header_and_claims}.(signature redacted)" in text
    plain = "no token here: eyJ and nothing after it"
    assert redact_tokens(plain) == plain
