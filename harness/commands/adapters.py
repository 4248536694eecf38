"""List the store adapters installed, with the capabilities each declares.

    store-harness adapters [--json]

The native client (ws://, wss://) comes first, then the built-ins (etcd://,
nats://) and every adapter registered in the ``store_harness.adapters``
entry-point group. docs/adapters.md shows how to write one.
"""

from __future__ import annotations

import argparse

import orjson

from harness.adapters import installed
from harness.exits import EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    adapters = installed()
    if args.json:
        data = [adapter.to_json() for adapter in adapters]
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK
    for adapter in adapters:
        schemes = ", ".join(f"{scheme}://" for scheme in adapter.schemes) or "(by --adapter)"
        print(f"{adapter.name}  {schemes}  {adapter.target}")
        if adapter.description:
            print(f"    {adapter.description}")
        promises = adapter.capabilities.skipped_checks() or ["every promise of the store protocol"]
        print(f"    {'; '.join(promises)}")
    return EXIT_OK
