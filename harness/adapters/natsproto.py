"""A small blocking NATS client: the text protocol over a plain socket and one reader thread.

The NATS adapter (:mod:`harness.adapters.nats`) needs a client that blocks and
cooperates with gevent under locust and with plain threads under asyncio.
nats-py is asyncio only, and the blocking clients on PyPI are unmaintained or
speak core NATS without headers, so this is the part of the protocol the
adapter uses (https://docs.nats.io/reference/reference-protocols/nats-protocol):

- client to server: ``CONNECT``, ``PUB``, ``HPUB``, ``SUB``, ``UNSUB``, ``PING``, ``PONG``;
- server to client: ``INFO``, ``MSG``, ``HMSG``, ``PING``, ``PONG``, ``+OK``, ``-ERR``.

Only ``socket`` and ``threading`` are used, which gevent's monkey-patching makes
cooperative: the reader thread becomes a greenlet. Request/reply goes through
one inbox subscription per connection (``_INBOX.<random>.r.*``), each request
waiting on a one-shot lock as the native sync client's do. Subscription
callbacks run on the reader: they must not block on a reply (that reply would be
read by the thread they hold up).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from harness.errors import ConnectionLost, RequestTimeout

log = logging.getLogger(__name__)

_RECEIVE_BYTES = 65536
_CRLF = b"\r\n"
_HEADER_LINE = b"NATS/1.0"

OnLost = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Msg:
    """One ``MSG`` or ``HMSG``: ``status`` is the header line's code ("503", "100"), if any."""

    subject: str
    reply: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)
    status: str = ""
    description: str = ""


MsgCallback = Callable[[Msg], None]


def encode_headers(headers: dict[str, str]) -> bytes:
    lines = [_HEADER_LINE, *(f"{name}: {value}".encode() for name, value in headers.items())]
    return _CRLF.join(lines) + _CRLF + _CRLF


def decode_headers(block: bytes) -> tuple[str, str, dict[str, str]]:
    """``(status, description, headers)`` from an ``HMSG`` header block."""
    first, *lines = block.decode("utf-8", "replace").split("\r\n")
    _, _, rest = first.partition(" ")
    status, _, description = rest.strip().partition(" ")
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip()] = value.strip()
    return status, description, headers


class _Waiter:
    """A request's one-shot signal: a lock taken at birth, released by the reader."""

    __slots__ = ("done", "error", "msg")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.msg: Msg | None = None
        self.error: ConnectionLost | None = None

    def wake(self) -> None:
        if self.done.locked():
            self.done.release()


class NatsConnection:
    """One connection to a NATS server; every call blocks its caller only."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        credentials: dict[str, str] | None = None,
        name: str = "store-harness",
    ) -> None:
        self.host, self.port = host, port
        self.connect_timeout = connect_timeout
        self.credentials = credentials or {}
        self.name = name
        self.info: dict[str, Any] = {}
        self._sock: socket.socket | None = None
        self._write_lock = threading.Lock()
        self._sids = itertools.count(1)
        self._subscriptions: dict[str, MsgCallback] = {}
        self._inbox = f"_INBOX.{secrets.token_hex(8)}"
        self._tokens = itertools.count(1)
        self._waiters: dict[str, _Waiter] = {}
        self._on_lost: OnLost | None = None
        self._closing = False
        self._ended: str | None = None
        self._last_error = ""

    @property
    def max_payload(self) -> int:
        return int(self.info.get("max_payload", 1024 * 1024))

    def new_inbox(self) -> str:
        """A subject of this connection's own, outside the request inbox's wildcard."""
        return f"{self._inbox}.s{next(self._tokens)}"

    # --- lifecycle ------------------------------------------------------------------

    def connect(self, on_lost: OnLost) -> None:
        """Handshake (INFO, CONNECT, PING/PONG), then start the reader thread."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise ConnectionLost(f"cannot reach nats://{self.host}:{self.port}: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        buffer = bytearray()
        try:
            line = self._handshake_line(sock, buffer)
            if not line.startswith(b"INFO "):
                raise ConnectionLost(f"not a NATS server: it greeted with {bytes(line[:80])!r}")
            self.info = orjson.loads(line[5:])
            if self.info.get("tls_required"):
                raise ConnectionLost("the NATS server requires TLS, which this adapter lacks")
            connect = {
                "verbose": False,
                "pedantic": False,
                "headers": True,
                "no_responders": True,
                "protocol": 1,
                "lang": "python-store-harness",
                "version": "1",
                "name": self.name,
                **self.credentials,
            }
            sock.sendall(b"CONNECT " + orjson.dumps(connect) + _CRLF + b"PING" + _CRLF)
            while True:
                line = self._handshake_line(sock, buffer)
                if line == b"PONG":
                    break
                if line.startswith(b"-ERR"):
                    raise ConnectionLost(f"the NATS server refused the connection: {line[5:]!r}")
        except OSError as exc:
            sock.close()
            raise ConnectionLost(f"NATS handshake failed: {exc}") from None
        except ConnectionLost:
            sock.close()
            raise
        sock.settimeout(None)
        self._on_lost = on_lost
        self._subscribe(f"{self._inbox}.r.*", self._replied)
        reader = threading.Thread(target=self._read_loop, args=(buffer,), daemon=True)
        reader.name = f"nats-reader-{self.port}"
        reader.start()

    def _handshake_line(self, sock: socket.socket, buffer: bytearray) -> bytearray:
        while (end := buffer.find(_CRLF)) < 0:
            data = sock.recv(_RECEIVE_BYTES)
            if not data:
                raise ConnectionLost("the NATS server closed the connection during the handshake")
            buffer += data
        line = buffer[:end]
        del buffer[: end + 2]
        return line

    def close(self) -> None:
        """End the connection; waiting requests fail with ConnectionLost. Never raises."""
        self._closing = True
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._fail_waiters("the client closed the connection")

    # --- sending --------------------------------------------------------------------

    def publish(
        self,
        subject: str,
        data: bytes = b"",
        headers: dict[str, str] | None = None,
        reply: str = "",
    ) -> None:
        reply_part = f" {reply}" if reply else ""
        if headers:
            block = encode_headers(headers)
            line = f"HPUB {subject}{reply_part} {len(block)} {len(block) + len(data)}\r\n"
            self._send(line.encode() + block + data + _CRLF)
        else:
            self._send(f"PUB {subject}{reply_part} {len(data)}\r\n".encode() + data + _CRLF)

    def subscribe(self, subject: str, callback: MsgCallback) -> str:
        return self._subscribe(subject, callback)

    def unsubscribe(self, sid: str) -> None:
        """No callback for ``sid`` starts once this returns (one already running may finish)."""
        if self._subscriptions.pop(sid, None) is not None and self._ended is None:
            with contextlib.suppress(ConnectionLost):
                self._send(f"UNSUB {sid}\r\n".encode())

    def request(
        self,
        subject: str,
        data: bytes,
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> Msg:
        """Publish with a reply subject and wait for the first answer."""
        token = str(next(self._tokens))
        waiter = _Waiter()
        self._waiters[token] = waiter
        try:
            if self._ended is not None:
                raise ConnectionLost(self._ended)
            self.publish(subject, data, headers, reply=f"{self._inbox}.r.{token}")
            if not waiter.done.acquire(timeout=timeout):
                raise RequestTimeout(f"no answer on {subject} within {timeout:g}s")
        finally:
            self._waiters.pop(token, None)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.msg is not None
        return waiter.msg

    def forget(self, subject: str, data: bytes) -> None:
        """A request whose answer nobody awaits: the inbox drops it."""
        self.publish(subject, data, reply=f"{self._inbox}.r.0")

    def _subscribe(self, subject: str, callback: MsgCallback) -> str:
        sid = str(next(self._sids))
        self._subscriptions[sid] = callback
        self._send(f"SUB {subject} {sid}\r\n".encode())
        return sid

    def _send(self, data: bytes) -> None:
        if self._ended is not None or self._sock is None:
            raise ConnectionLost(self._ended or "not connected")
        try:
            with self._write_lock:
                self._sock.sendall(data)
        except OSError as exc:
            raise ConnectionLost(f"writing to the NATS server failed: {exc}") from None

    # --- the reader -----------------------------------------------------------------

    def _replied(self, msg: Msg) -> None:
        waiter = self._waiters.get(msg.subject.rpartition(".")[2])
        if waiter is not None and waiter.msg is None:
            waiter.msg = msg
            waiter.wake()

    def _read_loop(self, buffer: bytearray) -> None:
        assert self._sock is not None
        reason = "the NATS server closed the connection"
        try:
            while True:
                consumed = self._parse(buffer)
                if consumed:
                    del buffer[:consumed]
                data = self._sock.recv(_RECEIVE_BYTES)
                if not data:
                    break
                buffer += data
        except OSError as exc:
            reason = f"reading from the NATS server failed: {exc}"
        except ValueError as exc:
            reason = f"the NATS server sent a malformed frame: {exc}"
        if self._last_error:
            reason = f"{reason} after -ERR {self._last_error}"
        self._fail_waiters(reason)
        if not self._closing and self._on_lost is not None:
            self._on_lost(reason)

    def _parse(self, buffer: bytearray) -> int:
        """Handle every whole frame in ``buffer``; returns how many bytes they took."""
        position = 0
        while (end := buffer.find(_CRLF, position)) >= 0:
            line = bytes(buffer[position:end])
            op, _, rest = line.partition(b" ")
            op = op.upper()
            if op in (b"MSG", b"HMSG"):
                args = rest.split()
                total = int(args[-1])
                start = end + 2
                if len(buffer) < start + total + 2:
                    break  # the payload has not all arrived
                body = bytes(buffer[start : start + total])
                position = start + total + 2
                self._dispatch(op == b"HMSG", args, body)
                continue
            position = end + 2
            if op == b"PING":
                with contextlib.suppress(ConnectionLost):
                    self._send(b"PONG\r\n")
            elif op == b"INFO":
                self.info = orjson.loads(rest)
            elif op == b"-ERR":
                self._last_error = rest.decode("utf-8", "replace")
            elif op not in (b"PONG", b"+OK"):
                raise ValueError(f"unknown operation {line[:80]!r}")
        return position

    def _dispatch(self, with_headers: bool, args: list[bytes], body: bytes) -> None:
        # MSG <subject> <sid> [reply] <size>; HMSG <subject> <sid> [reply] <hsize> <size>
        sizes = 2 if with_headers else 1
        subject, sid = args[0].decode(), args[1].decode()
        reply = args[2].decode() if len(args) > 2 + sizes else ""
        callback = self._subscriptions.get(sid)
        if callback is None:
            return  # unsubscribed: a message already on its way
        if with_headers:
            header_size = int(args[-2])
            status, description, headers = decode_headers(body[:header_size])
            msg = Msg(subject, reply, body[header_size:], headers, status, description)
        else:
            msg = Msg(subject, reply, body)
        try:
            callback(msg)
        except Exception:
            # One faulty subscriber must not end the reader, and every other one with it.
            log.exception("NATS subscription callback for %r raised", subject)

    def _fail_waiters(self, reason: str) -> None:
        if self._ended is None:
            self._ended = reason
        for waiter in list(self._waiters.values()):
            if waiter.msg is None and waiter.error is None:
                waiter.error = ConnectionLost(reason)
                waiter.wake()


__all__ = ["Msg", "MsgCallback", "NatsConnection", "decode_headers", "encode_headers"]
