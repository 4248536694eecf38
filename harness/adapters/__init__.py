"""Store adapters: every job reaches any store through one small interface.

:mod:`~harness.adapters.base` is the interface (``StoreAdapter``, ``Capabilities``);
:mod:`~harness.adapters.bridge` makes an adapter a participant client with the
native client's API and listener events; :mod:`~harness.adapters.registry`
picks the adapter for a URL. Built-ins: :mod:`~harness.adapters.etcd` (etcd v3)
and :mod:`~harness.adapters.nats` (NATS JetStream KV). docs/adapters.md shows
how to write one.
"""

from __future__ import annotations

from typing import Any

from harness.adapters.aio import AsyncAdapterClient
from harness.adapters.base import (
    NATIVE_CAPABILITIES,
    AdapterOptions,
    Capabilities,
    Deliver,
    OnLost,
    StoreAdapter,
)
from harness.adapters.bridge import AdapterClient
from harness.adapters.registry import capabilities_for, installed, resolve
from harness.client import aio, sync
from harness.client.core import ClientOptions


def sync_client(
    url: str,
    options: ClientOptions | None = None,
    *,
    adapter: str | None = None,
    adapter_options: AdapterOptions | None = None,
    **changes: Any,
) -> sync.StoreClient | AdapterClient:
    """A blocking participant client for ``url``, not yet open: native or through an adapter."""
    adapter_class = resolve(url, adapter)
    if adapter_class is None:
        return sync.StoreClient(url, options, **changes)
    return AdapterClient(url, adapter_class, options, adapter_options, **changes)


def async_client(
    url: str,
    options: ClientOptions | None = None,
    *,
    adapter: str | None = None,
    adapter_options: AdapterOptions | None = None,
    **changes: Any,
) -> aio.StoreClient | AsyncAdapterClient:
    """An asyncio participant client for ``url``, not yet open: native or through an adapter."""
    adapter_class = resolve(url, adapter)
    if adapter_class is None:
        return aio.StoreClient(url, options, **changes)
    client = AdapterClient(url, adapter_class, options, adapter_options, **changes)
    return AsyncAdapterClient(client)


__all__ = [
    "NATIVE_CAPABILITIES",
    "AdapterClient",
    "AdapterOptions",
    "AsyncAdapterClient",
    "Capabilities",
    "Deliver",
    "OnLost",
    "StoreAdapter",
    "async_client",
    "capabilities_for",
    "installed",
    "resolve",
    "sync_client",
]
