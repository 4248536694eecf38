"""Which adapter serves a URL: the native client, a built-in, or one that is installed.

A URL's scheme picks the adapter (``ws://`` and ``wss://``: the store protocol's
own client; ``etcd://``, ``nats://``: the built-ins), and ``--adapter`` names one
outright: an installed adapter's name, or ``module:Class``. Third-party adapters
register in the ``store_harness.adapters`` entry-point group:

    [project.entry-points."store_harness.adapters"]
    mystore = "store_harness_adapter_mystore:MyStore"
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from harness.adapters.base import NATIVE_CAPABILITIES, AdapterOptions, Capabilities, StoreAdapter
from harness.client.core import ClientOptions
from harness.errors import HarnessUsageError

ENTRY_POINT_GROUP = "store_harness.adapters"
NATIVE = "native"
NATIVE_SCHEMES = ("ws", "wss")

#: The adapters that ship with store-harness: name -> ``module:Class``.
BUILT_IN: dict[str, str] = {
    "etcd": "harness.adapters.etcd:EtcdAdapter",
    "nats-kv": "harness.adapters.nats:NatsKvAdapter",
}


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    """One adapter as ``store-harness adapters`` lists it."""

    name: str
    target: str
    schemes: tuple[str, ...]
    capabilities: Capabilities
    description: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "schemes": list(self.schemes),
            "capabilities": self.capabilities.to_json(),
            "description": self.description,
        }


def _load(target: str) -> type[StoreAdapter]:
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise HarnessUsageError(f"--adapter {target!r}: expected an adapter name or module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        problem = f"cannot import {module_name}: {exc}"
        raise HarnessUsageError(f"--adapter {target!r}: {problem}") from None
    adapter = getattr(module, class_name, None)
    if not (isinstance(adapter, type) and issubclass(adapter, StoreAdapter)):
        raise HarnessUsageError(
            f"--adapter {target!r}: {class_name} in {module_name} is not a StoreAdapter subclass"
        )
    return adapter


def _targets() -> dict[str, str]:
    targets = dict(BUILT_IN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        targets.setdefault(entry.name, entry.value)
    return targets


def installed() -> list[AdapterInfo]:
    """Every adapter this installation can use, the native client first."""
    infos = [
        AdapterInfo(
            NATIVE,
            "harness.client.sync:StoreClient",
            NATIVE_SCHEMES,
            NATIVE_CAPABILITIES,
            "the store protocol over WebSocket (docs/protocol.md)",
        )
    ]
    for name, target in sorted(_targets().items()):
        try:
            adapter = _load(target)
        except HarnessUsageError as exc:  # one broken package must not hide the others
            infos.append(AdapterInfo(name, target, (), Capabilities(), f"cannot load: {exc}"))
            continue
        infos.append(
            AdapterInfo(name, target, adapter.schemes, adapter.capabilities, adapter.description)
        )
    return infos


def resolve(url: str, adapter: str | None = None) -> type[StoreAdapter] | None:
    """The adapter class for ``url`` (or the one ``adapter`` names); None: the native client."""
    if adapter is not None:
        if adapter == NATIVE:
            return None
        targets = _targets()
        return _load(targets.get(adapter, adapter))
    scheme = urlsplit(url).scheme
    if scheme in NATIVE_SCHEMES:
        return None
    for target in _targets().values():
        try:
            candidate = _load(target)
        except HarnessUsageError:
            continue  # `store-harness adapters` says why it cannot load
        if scheme in candidate.schemes:
            return candidate
    known = sorted({*NATIVE_SCHEMES, *(s for i in installed() for s in i.schemes)})
    raise HarnessUsageError(
        f"--url {url!r}: no adapter for scheme {scheme or '(none)'!r}; "
        f"known schemes: {', '.join(known)} (or name one with --adapter)"
    )


def capabilities_for(url: str, adapter: str | None = None) -> Capabilities:
    adapter_class = resolve(url, adapter)
    return NATIVE_CAPABILITIES if adapter_class is None else adapter_class.capabilities


def adapter_options_for(options: ClientOptions, **extra: str) -> AdapterOptions:
    """The adapter's options, derived from the client's: one set of flags for every store."""
    return AdapterOptions(
        request_timeout=options.request_timeout,
        connect_timeout=options.connect_timeout,
        headers=options.headers,
        ca_file=options.ca_file,
        insecure=options.insecure,
        extra=dict(extra),
    )


__all__ = [
    "BUILT_IN",
    "ENTRY_POINT_GROUP",
    "NATIVE",
    "AdapterInfo",
    "adapter_options_for",
    "capabilities_for",
    "installed",
    "resolve",
]
