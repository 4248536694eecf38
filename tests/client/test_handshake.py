"""What the client puts in the opening handshake (headers, subprotocol) and how it
verifies a ``wss://`` server (a CA file, or --insecure), on both front ends."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from handshake_server import Recording
from raw_server import raw_server

from harness.adapters.registry import adapter_options_for
from harness.client import aio, sync
from harness.client.core import ClientOptions
from harness.client.wire import tls_context
from harness.errors import ConnectionLost, HarnessUsageError

HEADERS = (("Authorization", "Bearer not-a-real-credential"), ("Cookie", "room=7"))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[str, Recording]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    recording = Recording()
    with raw_server(recording, ssl=context) as url:
        yield url.replace("ws://", "wss://"), recording


def test_headers_and_subprotocol_reach_the_server_from_the_blocking_client():
    recording = Recording()
    with raw_server(recording, subprotocols=["store.v1"]) as url:
        options = ClientOptions(headers=HEADERS, subprotocol="store.v1", request_timeout=5)
        with sync.connect(url, options) as client:
            client.join("s", "p")
    sent = recording.requests[0]
    assert sent["Authorization"] == "Bearer not-a-real-credential"
    assert sent["Cookie"] == "room=7"
    assert sent["Sec-WebSocket-Protocol"] == "store.v1"
    assert recording.subprotocols == ["store.v1"]


def test_headers_and_subprotocol_reach_the_server_from_the_asyncio_client(run):
    recording = Recording()

    async def main() -> None:
        options = ClientOptions(headers=HEADERS, subprotocol="store.v1", request_timeout=5)
        async with aio.connect(url, options) as client:
            await client.join("s", "p")

    with raw_server(recording, subprotocols=["store.v1"]) as url:
        run(main())
    assert recording.requests[0]["Authorization"] == "Bearer not-a-real-credential"
    assert recording.subprotocols == ["store.v1"]


def test_a_given_header_replaces_the_one_websockets_would_send():
    recording = Recording()
    with raw_server(recording) as url:
        credentials = url.replace("ws://", "ws://user:pass@")
        with sync.connect(credentials, headers=(("Authorization", "Token t"),)) as client:
            client.join("s", "p")
    assert recording.requests[0]["Authorization"] == "Token t"


def test_wss_with_the_ca_file_verifies_the_server(tls_server, certificate, run):
    url, recording = tls_server
    cert = str(certificate[0])
    with sync.connect(url, ca_file=cert, request_timeout=5) as client:
        assert client.join("s", "alice").session == "s"

    async def main() -> None:
        async with aio.connect(url, ca_file=cert, request_timeout=5) as client:
            await client.join("s", "bob")

    run(main())
    assert len(recording.requests) == 2


def test_wss_without_the_ca_refuses_a_self_signed_server(tls_server, run):
    url, _ = tls_server
    with pytest.raises(ConnectionLost, match="CERTIFICATE_VERIFY_FAILED"):
        sync.connect(url, request_timeout=5).open()

    async def main() -> None:
        await aio.connect(url, request_timeout=5).open()

    with pytest.raises(ConnectionLost, match="CERTIFICATE_VERIFY_FAILED"):
        run(main())


def test_wss_insecure_accepts_a_self_signed_server(tls_server, run):
    url, _ = tls_server
    with sync.connect(url, insecure=True, request_timeout=5) as client:
        client.join("s", "alice")

    async def main() -> None:
        async with aio.connect(url, insecure=True, request_timeout=5) as client:
            await client.join("s", "bob")

    run(main())


def test_tls_context_settings(certificate, tmp_path):
    assert tls_context().verify_mode is ssl.CERT_REQUIRED
    loose = tls_context(insecure=True)
    assert (loose.verify_mode, loose.check_hostname) == (ssl.CERT_NONE, False)
    with pytest.raises(HarnessUsageError, match="--ca-file"):
        tls_context(str(tmp_path / "missing.pem"))


def test_adapters_get_the_handshake_options():
    options = ClientOptions(headers=HEADERS, ca_file="/ca.pem", insecure=True)
    adapter = adapter_options_for(options)
    assert (adapter.headers, adapter.ca_file, adapter.insecure) == (HEADERS, "/ca.pem", True)
