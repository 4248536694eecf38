"""Run the cases against one server URL and grade each.

A preflight connect+join with a short timeout comes first, so an unreachable
or silent server ends the run in seconds (exit code 2) instead of after every
case's timeout.
"""

from __future__ import annotations

import asyncio
import fnmatch
import secrets
import time
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from harness.adapters import NATIVE_CAPABILITIES, Capabilities, capabilities_for
from harness.adapters.preflight import preflight_join
from harness.conformance.case import (
    CASES,
    Case,
    CaseResult,
    Grade,
    SuiteResult,
)
from harness.conformance.context import CaseContext, SuiteOptions, quote
from harness.conformance.requirements import Level
from harness.errors import (
    CaseFailed,
    CaseSkipped,
    ConnectionLost,
    HarnessUsageError,
    PreflightFailed,
    ProtocolViolation,
    RequestTimeout,
    StoreError,
    SuiteCannotRun,
)
from harness.protocol import DEFAULT_LIMITS, Limits
from harness.protocol.auth import check_secret

PREFLIGHT_TIMEOUT = 5.0


def load_cases() -> dict[str, Case]:
    """Every registered case; importing the case modules registers them."""
    import harness.conformance.cases  # noqa: F401

    return CASES


def select_cases(patterns: Iterable[str] = ()) -> list[Case]:
    """Cases whose id matches any glob in ``patterns`` (all when none)."""
    cases = sorted(load_cases().values(), key=lambda c: requirement_key(c.requirement))
    patterns = list(patterns)
    if not patterns:
        return cases
    chosen = [c for c in cases if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
    if not chosen:
        raise HarnessUsageError(f"no case matches {', '.join(patterns)}")
    return chosen


def requirement_key(requirement: str) -> tuple[int, ...]:
    """Sort key putting R1.2 before R1.10."""
    return tuple(int(part) for part in requirement[1:].split("."))


def check_options(url: str, options: SuiteOptions) -> Capabilities:
    """Usage errors in the URL and options; the store's capabilities."""
    check_suite_options(options)
    return capabilities_for(url, options.adapter)


def skip_reason(case: Case, capabilities: Capabilities) -> str | None:
    """Why ``case`` cannot judge a store with ``capabilities``, or None when it can.

    Through an adapter the store has its own protocol: only what it does with
    keys, values and observers (R2.5, R3, R4, R5.3) can be judged, and only as
    far as it promises (capabilities); a case needing more frames or limits skips
    itself as it runs (CaseContext.require_wire, CaseContext.limits).
    """
    if capabilities.wire_level:
        return None
    requirement = case.requirement
    if not (requirement in ("R2.5", "R5.3") or requirement.startswith(("R3.", "R4."))):
        return (
            "wire-level (frames, joins, access, error replies): "
            "the store speaks its own protocol, not the store protocol"
        )
    if requirement in ("R3.3", "R3.4"):
        return "the store protocol's error codes for bad keys and values: the store has its own"
    if requirement == "R3.8" and not capabilities.acknowledged_writes:
        return "unacknowledged writes: no write is known to be applied"
    if requirement == "R4.3" and not capabilities.per_key_order:
        return "convergence only: update-order checks skipped"
    return None


def check_suite_options(options: SuiteOptions) -> None:
    """Usage errors in the options themselves, whatever the server."""
    if options.settle < 0:
        raise HarnessUsageError(f"--settle must not be negative, got {options.settle}")
    if options.token is not None and options.token_secret is not None:
        raise HarnessUsageError("pass --token or --token-secret, not both")
    if options.token_secret is not None:
        check_secret(options.token_secret)
    if options.request_timeout <= 0:
        raise HarnessUsageError(
            f"--request-timeout must be positive, got {options.request_timeout}"
        )
    if not options.session_prefix:
        raise HarnessUsageError("--session-prefix must not be empty")


async def preflight(url: str, options: SuiteOptions) -> Limits | None:
    """Connect and join once; returns the server's advertised limits."""
    flag = "--token-secret" if options.token_secret is not None else "--token"
    try:
        joined = await preflight_join(
            url,
            timeout=min(options.request_timeout, PREFLIGHT_TIMEOUT),
            session=f"{options.session_prefix}-{secrets.token_hex(3)}-preflight",
            token=options.token_for,
            unauthorized_hint=f" (pass the right {flag})",
            adapter=options.adapter,
            **options.access.client_options(),
        )
    except PreflightFailed as exc:
        raise SuiteCannotRun(str(exc)) from None
    except ProtocolViolation:
        # The server talks, but not the spec: run the cases and let them say where.
        return DEFAULT_LIMITS
    return joined.limits


def _guard(case: Case, options: SuiteOptions) -> float:
    return options.request_timeout * (8 if case.slow else 3) + 5


async def run_case(
    case: Case,
    url: str,
    options: SuiteOptions,
    limits: Limits | None,
    capabilities: Capabilities = NATIVE_CAPABILITIES,
) -> CaseResult:
    """Run one case and grade it; never raises for anything the server does."""
    context = CaseContext(url, options, limits, case.id, capabilities)
    started = time.monotonic()
    grade, detail, expected, got = Grade.PASSED, "", "", ""
    try:
        reason = skip_reason(case, capabilities)
        if reason is not None:
            raise CaseSkipped(reason)
        async with asyncio.timeout(_guard(case, options)):
            await case.function(context)
    except CaseFailed as exc:
        grade, detail, expected, got = Grade.FAILED, exc.message, exc.expected, exc.got
    except CaseSkipped as exc:
        grade, detail = Grade.SKIPPED, str(exc)
    except ProtocolViolation as exc:
        grade, detail = Grade.FAILED, f"protocol violation: {exc}"
    except RequestTimeout as exc:
        grade, detail = Grade.FAILED, str(exc)
    except ConnectionLost as exc:
        grade, detail = Grade.FAILED, f"the connection was lost unexpectedly: {exc}"
    except StoreError as exc:
        grade, detail = Grade.FAILED, f"a request the case expected to succeed was refused: {exc}"
    except TimeoutError:
        grade, detail = Grade.FAILED, f"the case did not finish within {_guard(case, options):g}s"
    except HarnessUsageError:
        raise
    except Exception:
        grade, detail = Grade.ERROR, f"internal harness error:\n{traceback.format_exc()}"
    finally:
        await context.close_all()
    violations = context.violations + [c.violation for c in context.clients if c.violation]
    if violations and grade != Grade.ERROR:
        # A spec violation is the root cause; a timeout or mismatch after it is its echo.
        first = violations[0]
        said = f"protocol violation: {first}"
        detail = said if not detail or str(first) in detail else f"{said}\n(then: {detail})"
        grade = Grade.FAILED
        expected = f"frames as the spec allows them ({first.requirement or 'R1.4'})"
        got = quote(first.frame or "")
    # A frame the spec forbids breaks a MUST (R1.4 and the like) even in a SHOULD case.
    if grade == Grade.FAILED and case.level == Level.SHOULD and not violations:
        grade = Grade.NON_STRICT
    if grade == Grade.PASSED and case.informational:
        grade = Grade.INFORMATIONAL
    return CaseResult(
        case.id,
        case.requirement,
        case.title,
        str(case.level),
        grade,
        time.monotonic() - started,
        options.redact(detail),
        options.redact(expected),
        options.redact(got),
        context.measurements,
        context.transcript,
        context.omitted_frames,
    )


async def run_suite(
    url: str,
    options: SuiteOptions | None = None,
    cases: Iterable[Case] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> SuiteResult:
    """Preflight, then every case in turn. Raises SuiteCannotRun or HarnessUsageError."""
    options = options or SuiteOptions()
    capabilities = check_options(url, options)
    chosen = list(cases) if cases is not None else select_cases()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    limits = await preflight(url, options)
    results = []
    for case in chosen:
        result = await run_case(case, url, options, limits, capabilities)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return SuiteResult(
        url,
        started_at,
        time.monotonic() - started,
        limits.to_wire() if limits is not None else {},
        options.to_json(),
        results,
        capabilities.skipped_checks(),
    )
