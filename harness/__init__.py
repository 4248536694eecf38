"""store-harness: load, conformance and consistency testing for realtime stores."""

__version__ = "0.1.0"
