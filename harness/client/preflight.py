"""One bounded connect+join before a long job, so a dead or silent server is named at once.

Without it, a server that accepts connections and never answers would make a
swarm or a suite wait out every request's timeout in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from harness.client.aio import StoreClient
from harness.errors import (
    ConnectionLost,
    HarnessError,
    ProtocolViolation,
    RequestTimeout,
    StoreError,
)
from harness.protocol import ErrorCode, Joined


class PreflightFailed(HarnessError):
    """The server cannot be used: unreachable, silent, or refusing the join."""


async def preflight_join(
    url: str, *, timeout: float = 5.0, session_prefix: str = "preflight", token: str | None = None
) -> Joined:
    """Join a fresh session once; the reply carries the server's limits.

    Raises PreflightFailed with a one-line reason; a ProtocolViolation passes
    through (the server talks, but not the spec: callers decide what that means).
    """
    client = StoreClient(url, request_timeout=timeout, connect_timeout=timeout)
    session = f"{session_prefix}-{secrets.token_hex(3)}"
    try:
        async with asyncio.timeout(2 * timeout + 1):
            await client.open()
            return await client.join(session, "preflight", "Preflight", token=token)
    except (ConnectionLost, TimeoutError) as exc:
        raise PreflightFailed(f"{url} is unreachable: {exc or 'no answer'}") from None
    except RequestTimeout:
        raise PreflightFailed(
            f"{url} accepted the connection but did not answer a join within {timeout:g}s"
        ) from None
    except StoreError as exc:
        hint = " (pass the right --token)" if exc.code is ErrorCode.UNAUTHORIZED else ""
        raise PreflightFailed(f"{url} refused the preflight join: {exc}{hint}") from None
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await client.close()


__all__ = ["PreflightFailed", "ProtocolViolation", "preflight_join"]
