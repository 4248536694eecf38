"""What a case works with: clients that record a transcript, schema checks, helpers.

Every frame a server sends during a case passes through :meth:`CaseContext._received`,
which validates it against the spec's JSON Schemas (R1.4); the runner fails the
case that saw a violation, quoting the frame.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from harness.access import Access
from harness.adapters import NATIVE_CAPABILITIES, AsyncAdapterClient, Capabilities, async_client
from harness.client.aio import StoreClient
from harness.client.core import ClientListener
from harness.client.wire import tls_context
from harness.conformance.case import TranscriptLine
from harness.errors import CaseFailed, CaseSkipped, ProtocolViolation, StoreError
from harness.protocol import ErrorCode, Joined, Limits, Participant
from harness.protocol.auth import mint_token, redact_tokens
from harness.protocol.messages import loads_json
from harness.protocol.schema import schema_problems

MAX_TRANSCRIPT_LINES = 300
MAX_FRAME_TEXT = 400


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    session_prefix: str = "conformance"
    request_timeout: float = 5.0
    #: One token sent in every join, as given (a server with a shared token).
    token: str | None = None
    #: How long to wait before concluding that a frame the spec forbids did not come.
    settle: float = 0.1
    #: The server's HS256 secret: every join gets a token minted for its session and
    #: participant, and the access cases of R2.4 run.
    token_secret: str | None = field(default=None, repr=False)
    #: The store adapter (default: the one the URL's scheme picks; ws://: the native client).
    adapter: str | None = None
    #: The other access options (--token-file, --token-cmd, --header, TLS: harness.access).
    access: Access = field(default_factory=Access)

    def token_for(self, session: str, participant_id: str) -> str | None:
        """The token a join of ``participant_id`` to ``session`` carries."""
        if self.token_secret is not None:
            return mint_token(self.token_secret, session, participant_id)
        return (
            self.token if self.token is not None else self.access.token_for(session, participant_id)
        )

    def redact(self, text: str) -> str:
        """``text`` without the secret, the given token, a header's value or any JWT's
        signature: reports are shared."""
        for hidden in (self.token_secret, self.token, *self.access.hidden()):
            if hidden:
                text = text.replace(hidden, "(redacted)")
        return redact_tokens(text)

    def to_json(self) -> dict[str, Any]:
        # Reports are shared: they say whether a token or secret was used, never which.
        return {
            "session_prefix": self.session_prefix,
            "request_timeout": self.request_timeout,
            "token": None if self.token is None else "(set)",
            "token_secret": None if self.token_secret is None else "(set)",
            "settle": self.settle,
            "adapter": self.adapter,
            "access": self.access.to_json(),
        }


def quote(data: str | bytes, limit: int = MAX_FRAME_TEXT) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters in all)"
    return text


class Observed:
    """The updates one observer received, with a way to wait for more."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.observer_id = ""
        self.updates: list[tuple[str | None, Participant]] = []
        self._changed = asyncio.Event()

    def __call__(self, value: str | None, updated_by: Participant) -> None:
        self.updates.append((value, updated_by))
        self._changed.set()

    @property
    def values(self) -> list[str | None]:
        return [value for value, _ in self.updates]

    async def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` updates came; False when the timeout ran out."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.updates) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True


class RawConnection:
    """A bare WebSocket for frames the client would never send; traced like the others."""

    def __init__(self, context: CaseContext, label: str, websocket: WebSocket) -> None:
        self.context = context
        self.label = label
        self.websocket = websocket

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        data = orjson.dumps(message).decode() if isinstance(message, dict) else message
        self.context.record(self.label, "sent", data)
        await self.websocket.send(data)

    async def receive(self, what: str) -> dict[str, Any]:
        """The next frame as a JSON object; a timeout or close fails the case."""
        try:
            async with asyncio.timeout(self.context.options.request_timeout):
                frame = await self.websocket.recv()
        except TimeoutError:
            self.context.fail(f"no frame came for {what}", expected=what, got="nothing")
        except ConnectionClosed as exc:
            self.context.fail(
                f"the connection closed while waiting for {what}",
                expected=what,
                got=f"close code {exc.rcvd.code if exc.rcvd else None}",
            )
        self.context._received(self.label, frame)
        try:
            data = loads_json(frame)
        except ValueError:
            self.context.fail(f"{what} is not JSON", expected=what, got=quote(frame))
        if not isinstance(data, dict):
            self.context.fail(f"{what} is not a JSON object", expected=what, got=quote(frame))
        return data

    async def request(self, message: dict[str, Any] | str, what: str) -> dict[str, Any]:
        await self.send(message)
        return await self.receive(what)

    async def close(self) -> None:
        await self.websocket.close()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (it may be backed up)."""
        self.websocket.transport.abort()


class CaseContext:
    """One case's connections, transcript and findings."""

    def __init__(
        self,
        url: str,
        options: SuiteOptions,
        limits: Limits | None,
        case_id: str,
        capabilities: Capabilities = NATIVE_CAPABILITIES,
    ) -> None:
        self.url = url
        self.options = options
        self._limits = limits
        #: What the store promises; a case needing more skips (see require_wire).
        self.capabilities = capabilities
        self.case_id = case_id
        self.transcript: list[TranscriptLine] = []
        self.omitted_frames = 0
        #: Every frame a raw connection received that breaks the spec's schemas.
        self.violations: list[ProtocolViolation] = []
        self.measurements: dict[str, Any] = {}
        self.clients: list[StoreClient | AsyncAdapterClient] = []
        self.raw_connections: list[RawConnection] = []
        self._started = time.monotonic()
        self._sessions = 0
        self._run_tag = secrets.token_hex(3)

    @property
    def has_limits(self) -> bool:
        return self._limits is not None

    @property
    def limits(self) -> Limits:
        """The limits the store promised; a case that needs them skips when there are none."""
        if self._limits is None:
            raise CaseSkipped("the store declares no key and value limits: limit checks skipped")
        return self._limits

    # --- transcript and schema checks --------------------------------------------

    def record(self, connection: str, direction: str, data: str | bytes) -> None:
        if len(self.transcript) >= MAX_TRANSCRIPT_LINES:
            self.omitted_frames += 1
            return
        at_ms = (time.monotonic() - self._started) * 1000
        # The client hands over sent text frames as UTF-8 bytes; only a received bytes
        # object is known to be a binary frame.
        binary = isinstance(data, bytes) and direction == "received"
        text = f"(binary) {quote(data)}" if binary else quote(data)
        text = self.options.redact(text)
        self.transcript.append(TranscriptLine(at_ms, connection, direction, text))

    def _received(self, connection: str, frame: str | bytes) -> None:
        self.record(connection, "received", frame)
        if isinstance(frame, bytes):
            self.violations.append(
                ProtocolViolation(
                    f"{connection} received a binary frame", frame, requirement="R1.1"
                )
            )
            return
        problems = schema_problems(frame)
        if problems:
            reason = f"{connection} received a frame that breaks the schema: {'; '.join(problems)}"
            self.violations.append(ProtocolViolation(reason, frame, requirement="R1.4"))

    def note(self, text: str) -> None:
        self.record("harness", "note", text)

    def measure(self, name: str, value: Any) -> None:
        self.measurements[name] = value

    # --- connections -------------------------------------------------------------

    def session(self, tag: str = "") -> str:
        """A session name no other run or case uses."""
        self._sessions += 1
        suffix = f"-{tag}" if tag else ""
        return (
            f"{self.options.session_prefix}-{self._run_tag}-{self.case_id}-{self._sessions}{suffix}"
        )

    def require_wire(self, what: str) -> None:
        """Skip the case unless the store speaks the store protocol's frames."""
        if not self.capabilities.wire_level:
            raise CaseSkipped(f"{what} needs the store protocol's frames; this store has its own")

    async def connect(self, label: str, listeners: Sequence[ClientListener] = ()) -> StoreClient:
        def trace(direction: str, data: str | bytes) -> None:
            if direction == "received":
                self._received(label, data)
            else:
                self.record(label, direction, data)

        client = async_client(
            self.url,
            adapter=self.options.adapter,
            request_timeout=self.options.request_timeout,
            connect_timeout=self.options.request_timeout,
            trace=trace if self.capabilities.wire_level else None,
            listeners=listeners,
            **self.options.access.client_options(),
        )
        self.clients.append(client)
        # An adapter's client has the asyncio client's API (harness.adapters.aio).
        return await client.open()  # type: ignore[return-value]

    async def joined(
        self,
        label: str,
        session: str,
        participant: str | None = None,
        name: str | None = None,
        listeners: Sequence[ClientListener] = (),
    ) -> StoreClient:
        client = await self.connect(label, listeners)
        participant_id = participant or label
        await client.join(
            session,
            participant_id,
            name if name is not None else participant_id.title(),
            token=self.options.token_for(session, participant_id),
        )
        return client

    async def join(self, client: StoreClient, session: str, participant: str, name: str) -> Joined:
        """``client`` joins with the token the options give this session and participant."""
        token = self.options.token_for(session, participant)
        return await client.join(session, participant, name, token=token)

    async def raw(self, label: str, **options: Any) -> RawConnection:
        self.require_wire("a raw WebSocket")
        websocket = await ws_connect(
            self.url,
            open_timeout=self.options.request_timeout,
            ping_interval=None,
            close_timeout=2,
            compression=None,
            **self._handshake(),
            **options,
        )
        connection = RawConnection(self, label, websocket)
        self.raw_connections.append(connection)
        return connection

    def _handshake(self) -> dict[str, Any]:
        """The access options' handshake and TLS settings, for a raw websockets connection."""
        access = self.options.access
        settings: dict[str, Any] = {"additional_headers": list(access.headers)}
        if access.subprotocol:
            settings["subprotocols"] = [access.subprotocol]
        if self.url.startswith("wss://"):
            settings["ssl"] = tls_context(access.ca_file, access.insecure)
        return settings

    def join_message(self, request_id: int, session: str, participant: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "join",
            "id": request_id,
            "session": session,
            "participant": {"id": participant, "name": participant.title()},
        }
        token = self.options.token_for(session, participant)
        if token is not None:
            message["token"] = token
        return message

    async def close_all(self) -> None:
        for client in self.clients:
            try:
                async with asyncio.timeout(3):
                    await client.close()
            except Exception:
                pass
        for connection in self.raw_connections:
            try:
                async with asyncio.timeout(3):
                    await connection.close()
            except Exception:
                pass

    # --- judging -----------------------------------------------------------------

    def fail(self, message: str, *, expected: object = "", got: object = "") -> NoReturn:
        raise CaseFailed(message, expected=str(expected), got=str(got))

    def check(self, condition: bool, message: str, *, expected: object, got: object) -> None:
        if not condition:
            self.fail(message, expected=expected, got=got)

    def check_equal(self, got: object, expected: object, message: str) -> None:
        if got != expected:
            self.fail(message, expected=repr(expected), got=repr(got))

    async def expect_error(self, code: ErrorCode, request: Awaitable[Any], what: str) -> None:
        try:
            result = await request
        except StoreError as exc:
            if exc.code != code:
                self.fail(
                    f"{what}: wrong error code", expected=code, got=f"{exc.code}: {exc.message}"
                )
            return
        self.fail(f"{what} was accepted", expected=f"error {code}", got=f"success ({result!r})")

    async def expect_raw_error(
        self,
        client: StoreClient,
        frame: str | bytes,
        code: ErrorCode,
        what: str,
        *,
        reply_id: int | None = None,
        binary: bool = False,
    ) -> None:
        self.require_wire("a hand-made frame")
        error = await client.send_raw(frame, reply_id=reply_id, binary=binary)
        if error.code != code:
            self.fail(
                f"{what}: wrong error code", expected=code, got=f"{error.code}: {error.message}"
            )

    async def observe(self, client: StoreClient, key: str) -> Observed:
        observed = Observed(key)
        observed.observer_id = await client.observe(key, observed)
        return observed

    async def settle(self) -> None:
        await asyncio.sleep(self.options.settle)

    async def expect_updates(self, observed: Observed, values: list[str | None], who: str) -> None:
        """``observed`` receives exactly ``values`` (waits for them, then for strays)."""
        await self.expect_each([(observed, values, who)])

    async def expect_each(
        self, expectations: Sequence[tuple[Observed, list[str | None], str]]
    ) -> None:
        """Each observer receives exactly its values; one settle catches every stray."""
        for observed, values, _ in expectations:
            await observed.wait_for(len(values), self.options.request_timeout)
        await self.settle()
        for observed, values, who in expectations:
            self.check_equal(observed.values, values, f"updates received by {who}")
