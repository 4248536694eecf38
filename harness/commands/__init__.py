"""Subcommand adapters: each has ``configure(parser)`` and ``run(args) -> exit code``."""

import argparse


def port_number(text: str) -> int:
    """An argparse type for TCP ports: 0 (pick a free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {port}")
    return port
