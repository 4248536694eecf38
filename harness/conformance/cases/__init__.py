"""The conformance cases, one module per spec section; importing this registers them all."""

from harness.conformance.cases import (  # noqa: F401  (imported for registration)
    concurrency,
    errors,
    framing,
    joining,
    limits,
    observing,
    store,
)
