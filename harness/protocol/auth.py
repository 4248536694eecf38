"""Join tokens (R2.4): JWTs signed with HS256 whose claims name the session and participant.

    token = mint_token(secret, "meeting-1", "alice")
    check_token(secret, token, "meeting-1", "alice")   # None: admitted
    check_token(secret, token, "meeting-2", "alice")   # "the token is for another session"

The reference server checks joins with :func:`check_token`; the conformance suite
mints with :func:`mint_token`. A refusal reason goes back to the client in the
``UNAUTHORIZED`` message, so it says what is wrong with the token and never quotes
the secret (nor the token: it may be someone else's).
"""

from __future__ import annotations

import re
import time

import jwt

from harness.errors import HarnessUsageError

ALGORITHM = "HS256"
#: RFC 7518 section 3.2: an HS256 key MUST be at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32
#: The environment variable `store-harness serve` reads the secret from.
SECRET_ENV = "STORE_HARNESS_TOKEN_SECRET"
DEFAULT_TTL_S = 3600.0
#: How far the issuer's clock may run ahead of the server's before a fresh token looks
#: expired, and the longest a spent token stays usable: the spec allows up to 60 s.
CLOCK_SKEW_S = 30
CLAIMS = ("session", "participant", "exp")
#: A JSON Web Token's compact form: base64url header (always '{"...' so 'eyJ'), payload,
#: signature. The header and claims help a reader; the signature is the credential.
_JWT = re.compile(r"(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)\.[A-Za-z0-9_-]+")


def redact_tokens(text: str) -> str:
    """``text`` with every JWT's signature elided: the header and claims stay readable."""
    return _JWT.sub(r"\1.(signature redacted)", text)


def check_secret(secret: str) -> None:
    """Refuse a secret too short for HS256 (a usage error, exit code 2)."""
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise HarnessUsageError(
            f"a token secret must be at least {MIN_SECRET_BYTES} bytes for HS256 "
            "(RFC 7518 section 3.2)"
        )


def mint_token(
    secret: str,
    session: str,
    participant_id: str,
    ttl_s: float = DEFAULT_TTL_S,
    *,
    now: float | None = None,
) -> str:
    """A token admitting ``participant_id`` to ``session`` until ``now + ttl_s``.

    ``now`` (Unix seconds, default the current time) lets tests mint a token that
    expired long ago, beyond any clock-skew allowance.
    """
    check_secret(secret)
    issued = time.time() if now is None else now
    claims = {"session": session, "participant": participant_id, "exp": int(issued + ttl_s)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def check_token(
    secret: str,
    token: str | None,
    session: str,
    participant_id: str,
    *,
    leeway_s: float = CLOCK_SKEW_S,
) -> str | None:
    """Why ``token`` does not admit ``participant_id`` to ``session``, or None when it does."""
    if token is None:
        return "a token is required"
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": list(CLAIMS)},
            leeway=leeway_s,
        )
    except jwt.ExpiredSignatureError:
        return "the token has expired"
    except jwt.InvalidSignatureError:
        return "the token's signature is not valid"
    except jwt.InvalidAlgorithmError:
        # Covers "alg": "none": an unsigned token must never pass.
        return f"the token is not signed with {ALGORITHM}"
    except jwt.MissingRequiredClaimError as exc:
        return f"the token has no {exc.claim!r} claim"
    except jwt.DecodeError:
        return "the token is not a well-formed JWT"
    except jwt.InvalidTokenError as exc:
        # Any other claim PyJWT validates (nbf, iat...): its message names the claim only.
        return f"the token is not valid: {exc}"
    if claims["session"] != session:
        return "the token is for another session"
    if claims["participant"] != participant_id:
        return "the token is for another participant"
    return None


__all__ = [
    "ALGORITHM",
    "MIN_SECRET_BYTES",
    "SECRET_ENV",
    "check_secret",
    "check_token",
    "mint_token",
    "redact_tokens",
]
