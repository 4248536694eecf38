"""The store adapter interface: what a store must offer for store-harness to judge it.

An adapter is one participant's connection to a store, in the store's own
protocol or SDK. It is as small as porcupine's model: seven blocking calls and
a declaration of what the store promises.

    class MyStore(StoreAdapter):
        schemes = ("mystore",)
        capabilities = Capabilities(key_limit=None)

        def connect(self, on_lost): ...
        def join(self, session, participant_id, name, token): ...
        def set(self, key, value): ...
        def get(self, key): ...
        def observe(self, key, deliver): ...   # returns a handle
        def stop(self, handle): ...
        def close(self): ...

Outcomes are typed by what a call does: it returns (ok), raises
:class:`~harness.errors.StoreError` with an :class:`~harness.protocol.ErrorCode`
(the store refused), or raises :class:`~harness.errors.OutcomeUnknown`
(:class:`~harness.errors.RequestTimeout`, :class:`~harness.errors.ConnectionLost`:
the store may or may not have applied it). Any other exception counts as a lost
connection and names the adapter.

Adapters block, and must stay cooperative: plain ``socket``, ``threading`` and
``select`` from the standard library, which gevent patches under locust, are
fine; a library with its own event loop or C-level blocking is not. The same
adapter then runs in a swarm (gevent) and in the conformance suite (asyncio,
on a worker thread). :mod:`harness.adapters.bridge` turns an adapter into a
client that every listener above understands, so recording, the latency
histograms, locust's rows, churn, the fault proxy and the checker work through
any adapter unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import SplitResult, urlsplit

from harness.errors import HarnessUsageError

if TYPE_CHECKING:
    from harness.protocol import Participant

#: ``deliver(value, updated_by)``: one update of an observed key. ``updated_by`` is the
#: writer: a :class:`~harness.protocol.Participant` (id and name), or its id alone when
#: the store keeps no name. Called from the adapter's own reader thread or greenlet.
Deliver = Callable[[str | None, "Participant | str"], None]
#: ``on_lost(reason)``: the store connection ended without ``close()``.
OnLost = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store promises; the checker and the conformance suite judge nothing more.

    The defaults are the store protocol's promises (docs/protocol.md).
    """

    #: Every write is answered once applied. False: writes are fire-and-forget, and the
    #: checker treats each one's outcome as unknown.
    acknowledged_writes: bool = True
    #: The store itself says who wrote each update. False: the adapter carries it
    #: (in a value envelope, say); it is checked the same way.
    native_updated_by: bool = True
    #: An observe's first delivery is the key's value at that time, not an update. The
    #: bridge drops it, so every observer sees updates only, as the protocol says.
    initial_value_on_observe: bool = False
    #: The most keys one session may hold, or None for no limit (limit checks skipped).
    key_limit: int | None = 100
    #: The longest value in UTF-8 bytes, or None for no limit (limit checks skipped).
    value_limit: int | None = 1024
    #: Every observer sees a key's updates in one total order. False: only convergence
    #: is promised, so order checks are skipped and only final values are judged.
    per_key_order: bool = True
    #: The store speaks docs/protocol.md's frames, so wire-level conformance cases
    #: (framing, malformed input, access, fuzzing) apply. Only the native client does.
    wire_level: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def skipped_checks(self, *, wire: bool = True) -> list[str]:
        """What the store does not promise, so nothing judges it: one line each.

        ``wire`` False leaves out the wire-level line, which no history check concerns.
        """
        skipped = []
        if self.key_limit is None:
            skipped.append("no key limit: key-limit checks skipped")
        if self.value_limit is None:
            skipped.append("no value limit: value-size checks skipped")
        if not self.per_key_order:
            skipped.append("convergence only: update-order checks skipped")
        if not self.acknowledged_writes:
            skipped.append("unacknowledged writes: every write's outcome is unknown")
        if wire and not self.wire_level:
            skipped.append("not the store protocol: wire-level cases skipped")
        return skipped


#: The store protocol's own promises: the native client's declaration.
NATIVE_CAPABILITIES = Capabilities(wire_level=True)


def store_address(url: str, scheme: str, default_port: int) -> tuple[SplitResult, str, int]:
    """The parts, host and port of an adapter's ``scheme://HOST[:PORT]/...`` URL.

    Raises a one-line HarnessUsageError naming what is wrong with the URL.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or default_port
    except ValueError:
        raise HarnessUsageError(f"--url {url!r}: the port is not a number") from None
    if parts.scheme != scheme or not parts.hostname:
        raise HarnessUsageError(f"--url {url!r}: expected {scheme}://HOST[:PORT]/...")
    return parts, parts.hostname, port


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """How an adapter connects; the same options every command passes to every adapter."""

    #: A call with no answer in this time raises RequestTimeout.
    request_timeout: float = 10.0
    connect_timeout: float = 10.0
    #: Extra handshake headers (``Authorization``, cookies), for stores that take them.
    headers: tuple[tuple[str, str], ...] = ()
    #: A CA bundle for TLS, or ``insecure`` to skip verification (tests only).
    ca_file: str | None = None
    insecure: bool = False
    #: Options of the adapter's own, from ``--adapter-option name=value``.
    extra: dict[str, str] = field(default_factory=dict)


class StoreAdapter:
    """One participant's connection to a store; subclass it for your store.

    ``url`` is what the user gave (``--url``); the adapter parses it. The bridge makes
    one call at a time per adapter (one participant's connection), also when its
    caller overlaps requests; only ``close`` and the ``deliver`` callbacks may overlap
    with a call.
    """

    #: URL schemes this adapter answers to, e.g. ``("etcd",)``.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: What the store promises (see :class:`Capabilities`).
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: One line for ``store-harness adapters``.
    description: ClassVar[str] = ""

    def __init__(self, url: str, options: AdapterOptions) -> None:
        self.url = url
        self.options = options

    def connect(self, on_lost: OnLost) -> None:
        """Open the connection; call ``on_lost(reason)`` if it later ends on its own."""
        raise NotImplementedError

    def join(self, session: str, participant_id: str, name: str, token: str | None) -> None:
        """Join ``session`` as ``participant_id``; later calls act on that session's keys."""
        raise NotImplementedError

    def set(self, key: str, value: str | None) -> None:
        """Write ``value`` to ``key``; None deletes it."""
        raise NotImplementedError

    def get(self, key: str) -> str | None:
        """The key's value, or None when it has none."""
        raise NotImplementedError

    def observe(self, key: str, deliver: Deliver) -> object:
        """Call ``deliver`` for every later write to ``key``; returns a handle for ``stop``.

        Deliveries start only after this returns or are held until then by the bridge,
        and each write reaches ``deliver`` once.
        """
        raise NotImplementedError

    def stop(self, handle: object) -> None:
        """End the observer; no delivery for it may follow this call's return."""
        raise NotImplementedError

    def close(self) -> None:
        """End the connection; its observers end with it. Must not raise."""
        raise NotImplementedError


__all__ = [
    "NATIVE_CAPABILITIES",
    "AdapterOptions",
    "Capabilities",
    "Deliver",
    "OnLost",
    "StoreAdapter",
    "store_address",
]
