"""WebSocket framing for both clients, on websockets' sans-I/O ``ClientProtocol``.

:class:`Wire` turns bytes from the socket into whole text messages and
messages into bytes for the socket. It is the lowest layer of
:class:`harness.client.core.ClientCore`, which the front ends feed with bytes.
``websocket`` is websockets' own sans-I/O protocol object (RFC 6455); the store
protocol's frame matcher is the core's ``connection``.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidURI, ProtocolError
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import WebSocketURI, parse_uri

from harness.errors import ConnectionLost, HarnessUsageError, ProtocolViolation


def tls_context(ca_file: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """The TLS settings of a ``wss://`` connection, the same for both front ends.

    ``ca_file`` verifies the server against that CA bundle instead of the system's;
    ``insecure`` verifies nothing (no certificate check, no host name check).
    """
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise HarnessUsageError(f"--ca-file {ca_file!r}: cannot load it ({exc})") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Wire:
    """One connection's WebSocket protocol state, without I/O."""

    def __init__(
        self,
        url: str,
        *,
        compression: bool,
        max_frame_bytes: int,
        headers: Sequence[tuple[str, str]] = (),
        subprotocol: str | None = None,
    ) -> None:
        try:
            self.uri: WebSocketURI = parse_uri(url)
        except InvalidURI as exc:
            raise HarnessUsageError(f"not a WebSocket URL: {url!r} ({exc})") from None
        # websockets' own default settings: memLevel 5 halves deflate's memory.
        extensions = (
            [ClientPerMessageDeflateFactory(compress_settings={"memLevel": 5})]
            if compression
            else None
        )
        subprotocols = [Subprotocol(subprotocol)] if subprotocol else None
        self.websocket = ClientProtocol(
            self.uri, extensions=extensions, subprotocols=subprotocols, max_size=max_frame_bytes
        )
        self.headers = tuple(headers)
        self.handshake_done = False
        self._fragments: list[bytes] = []
        #: A violation of the framing itself (R1.1), set by :meth:`receive`.
        self.violation: ProtocolViolation | None = None

    def opening_handshake(self) -> bytes:
        request = self.websocket.connect()
        for name, value in self.headers:
            # Replaces a header websockets set (a URL's user info makes Authorization).
            if name in request.headers:
                del request.headers[name]
            request.headers[name] = value
        self.websocket.send_request(request)
        return self.outgoing()

    def receive(self, data: bytes) -> list[str]:
        """Feed bytes (b"" at end of stream); returns every complete text message.

        Raises ConnectionLost when the opening handshake fails. A binary message,
        a text message that is not UTF-8 or a broken WebSocket frame (R1.1) sets
        :attr:`violation` and ends the list: the messages before it are still
        returned, for the front end to handle before it fails the connection, so
        a reply that came first still answers its request.
        """
        if data:
            self.websocket.receive_data(data)
        else:
            self.websocket.receive_eof()
        messages: list[str] = []
        for event in self.websocket.events_received():
            if isinstance(event, Response):
                self._check_handshake()
                self.handshake_done = True
            elif isinstance(event, Frame):
                if event.opcode is Opcode.BINARY:
                    self.violation = ProtocolViolation(
                        "the server sent a binary frame", bytes(event.data), requirement="R1.1"
                    )
                    break  # the connection is failed on it: nothing after it is read
                if event.opcode is Opcode.TEXT or event.opcode is Opcode.CONT:
                    self._fragments.append(event.data)
                    if event.fin:
                        payload = b"".join(self._fragments)
                        self._fragments.clear()
                        try:
                            messages.append(payload.decode())
                        except UnicodeDecodeError as exc:
                            self.violation = ProtocolViolation(
                                f"a text frame is not valid UTF-8 ({exc.reason} at byte "
                                f"{exc.start})",
                                payload,
                                requirement="R1.1",
                            )
                            break
        if not self.handshake_done:
            self._check_handshake()
        broken = self.websocket.parser_exc
        if isinstance(broken, ProtocolError | UnicodeDecodeError) and self.violation is None:
            # websockets failed the connection itself (1002, or 1007 for a text frame that
            # is not UTF-8): the server broke RFC 6455, which R1.1 makes the transport.
            # An end of stream or a frame over our own size limit is no violation.
            self.violation = ProtocolViolation(
                f"the server broke the WebSocket protocol (RFC 6455): {broken}",
                requirement="R1.1",
            )
        return messages

    def _check_handshake(self) -> None:
        error = self.websocket.handshake_exc
        if error is not None:
            reason = str(error) if isinstance(error, InvalidHandshake) else repr(error)
            raise ConnectionLost(f"the WebSocket handshake failed: {reason}")

    def send_text(self, data: bytes) -> None:
        """Frame ``data``; the bytes wait in :meth:`outgoing`, so frames sent together
        leave in one write."""
        self.websocket.send_text(data)

    def send_binary(self, data: bytes) -> None:
        self.websocket.send_binary(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Begin the closing handshake; its bytes wait in :meth:`outgoing`."""
        if self.websocket.state is State.OPEN:
            self.websocket.send_close(code, reason)

    def fail(self, code: int, reason: str) -> None:
        if self.websocket.state is State.OPEN:
            self.websocket.fail(code, reason)

    def outgoing(self) -> bytes:
        return b"".join(self.websocket.data_to_send())

    @property
    def is_open(self) -> bool:
        return self.websocket.state is State.OPEN

    @property
    def finished(self) -> bool:
        return self.websocket.state is State.CLOSED

    def close_code_and_reason(self) -> tuple[int | None, str]:
        close = self.websocket.close_rcvd or self.websocket.close_sent
        return (close.code, close.reason) if close is not None else (None, "")
