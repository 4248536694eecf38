"""One bounded connect+join before a long job, so a dead or silent server is named at once.

Without it, a server that accepts connections and never answers would make a
swarm or a suite wait out every request's timeout in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import Any

from harness.adapters import async_client
from harness.errors import (
    ConnectionLost,
    PreflightFailed,
    ProtocolViolation,
    RequestTimeout,
    StoreError,
)
from harness.protocol import ErrorCode, Joined

#: The participant id every preflight joins as (a minted token must name it).
PREFLIGHT_PARTICIPANT = "preflight"


async def preflight_join(
    url: str,
    *,
    timeout: float = 5.0,
    session_prefix: str = "preflight",
    token: str | Callable[[str, str], str | None] | None = None,
    session: str | None = None,
    unauthorized_hint: str = " (pass the right --token)",
    adapter: str | None = None,
    **client_options: Any,
) -> Joined:
    """Join a fresh session once; the reply carries the server's limits.

    ``session`` names the session outright (default: ``session_prefix`` and a random
    suffix). ``token`` is the join's token, or a function of (session, participant id)
    that mints one, for servers whose tokens name both (R2.4).

    ``adapter`` names the adapter (default: the one ``url``'s scheme picks);
    ``client_options`` are more :class:`~harness.client.core.ClientOptions` (headers, TLS).

    Raises PreflightFailed with a one-line reason; a ProtocolViolation passes
    through (the server talks, but not the spec: callers decide what that means).
    """
    client = async_client(
        url, adapter=adapter, request_timeout=timeout, connect_timeout=timeout, **client_options
    )
    if session is None:
        session = f"{session_prefix}-{secrets.token_hex(3)}"
    if callable(token):
        token = token(session, PREFLIGHT_PARTICIPANT)
    try:
        async with asyncio.timeout(2 * timeout + 1):
            await client.open()
            return await client.join(session, PREFLIGHT_PARTICIPANT, "Preflight", token=token)
    except (ConnectionLost, TimeoutError) as exc:
        raise PreflightFailed(f"{url} is unreachable: {exc or 'no answer'}") from None
    except RequestTimeout:
        raise PreflightFailed(
            f"{url} accepted the connection but did not answer a join within {timeout:g}s"
        ) from None
    except StoreError as exc:
        hint = unauthorized_hint if exc.code is ErrorCode.UNAUTHORIZED else ""
        raise PreflightFailed(f"{url} refused the preflight join: {exc}{hint}") from None
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await client.close()


__all__ = ["PREFLIGHT_PARTICIPANT", "PreflightFailed", "ProtocolViolation", "preflight_join"]
