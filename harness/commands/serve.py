"""Run the reference server until interrupted.

It binds to 127.0.0.1 unless --host says otherwise. With a token secret
(--token-secret, or better the STORE_HARNESS_TOKEN_SECRET environment variable,
which no process listing shows) every join needs a token minted for its session
and participant (R2.4); the secret is never printed or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from harness.commands import port_number
from harness.exits import EXIT_OK
from harness.protocol import DEFAULT_MAX_FRAME_BYTES, Limits
from harness.protocol.auth import SECRET_ENV


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=port_number, default=8765, help="port; 0 picks a free one")
    parser.add_argument("--max-keys", type=int, default=100, help="keys a session may hold")
    parser.add_argument("--max-value-bytes", type=int, default=1024, help="value size in UTF-8")
    parser.add_argument(
        "--max-frame-bytes",
        type=int,
        default=DEFAULT_MAX_FRAME_BYTES,
        help="frame limit; a larger frame closes its connection with 1009 (default 65536)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=20_000,
        help="connections beyond this are closed with 1013 (default 20000)",
    )
    parser.add_argument(
        "--max-outbox-frames",
        type=int,
        default=10_000,
        help="unsent frames a connection may have queued before it is closed with 1008 "
        "(default 10000)",
    )
    parser.add_argument(
        "--max-observers-per-connection",
        type=int,
        default=1_000,
        help="active observers a connection may hold; one more closes it with 1008 (default 1000)",
    )
    parser.add_argument(
        "--token-secret",
        metavar="SECRET",
        help="require join tokens: HS256 JWTs signed with SECRET (at least 32 bytes); "
        f"prefer the {SECRET_ENV} environment variable, which process listings do not show",
    )
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate")


def run(args: argparse.Namespace) -> int:
    from harness.errors import HarnessError, HarnessUsageError
    from harness.server.aio import ReferenceServer

    for option in ("max_connections", "max_outbox_frames", "max_observers_per_connection"):
        if getattr(args, option) < 1:
            flag = "--" + option.replace("_", "-")
            raise HarnessUsageError(f"{flag} must be at least 1, got {getattr(args, option)}")
    token_secret = args.token_secret
    if token_secret is None:
        # An empty variable counts as unset, so `STORE_HARNESS_TOKEN_SECRET= ...` turns it off.
        token_secret = os.environ.get(SECRET_ENV) or None
    server = ReferenceServer(
        host=args.host,
        port=args.port,
        limits=Limits(args.max_keys, args.max_value_bytes),
        max_frame_bytes=args.max_frame_bytes,
        max_connections=args.max_connections,
        max_outbox_frames=args.max_outbox_frames,
        max_observers_per_connection=args.max_observers_per_connection,
        token_secret=token_secret,
        compression=args.compression,
    )

    async def main() -> None:
        async with server:
            access = "on" if server.access_check else "off"
            # The secret itself is never printed: only whether joins are checked.
            line = f"store-harness reference server listening on {server.url}"
            print(f"{line} (access check: {access})", flush=True)
            await server.serve_forever()

    try:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(main())
    except OSError as exc:
        # A port in use is the user's to fix: one line and exit code 2, not a traceback.
        raise HarnessError(f"cannot listen: {exc.strerror or exc}") from None
    return EXIT_OK
