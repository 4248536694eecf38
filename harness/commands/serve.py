"""Run the reference server until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from harness.protocol import DEFAULT_MAX_FRAME_BYTES, Limits


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    parser.add_argument("--max-keys", type=int, default=100, help="keys a session may hold")
    parser.add_argument("--max-value-bytes", type=int, default=1024, help="value size in UTF-8")
    parser.add_argument(
        "--max-frame-bytes", type=int, default=DEFAULT_MAX_FRAME_BYTES, help="frame limit"
    )
    parser.add_argument("--max-connections", type=int, default=20_000)
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate")


def run(args: argparse.Namespace) -> int:
    from harness.server.aio import ReferenceServer

    server = ReferenceServer(
        host=args.host,
        port=args.port,
        limits=Limits(args.max_keys, args.max_value_bytes),
        max_frame_bytes=args.max_frame_bytes,
        max_connections=args.max_connections,
        compression=args.compression,
    )

    async def main() -> None:
        async with server:
            print(f"store-harness reference server listening on {server.url}", flush=True)
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(main())
    return 0
