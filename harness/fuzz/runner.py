"""Send one batch of frames to a server over real sockets and judge every answer.

A batch runs on a fresh session of its own, so it starts from an empty store
and its state is exactly what its acknowledged writes made it. Each frame is
sent alone and answered before the next (R1.3 is not what is under test here),
and after the last one a fresh connection must still join the session and
read back every key the model knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from harness.access import Access
from harness.client.wire import tls_context
from harness.errors import FindingError, Unreachable
from harness.protocol import CLOSE_UNAUTHORIZED, ErrorCode, Join, Limits, Participant, to_wire
from harness.protocol.messages import loads_json
from harness.protocol.schema import schema_problems

from . import oracle
from .frames import FUZZ_PARTICIPANT, TOKEN_FIELD, TOKEN_PLACEHOLDER, Frame
from .jsontext import json_text
from .oracle import ConnectionState, Expected, SessionModel

AUDITOR = Participant("fuzz-auditor", "Fuzz auditor")
#: A key the audit reads when the batch wrote none: a fresh session holds nothing.
AUDIT_KEY = "fuzz-audit"


@dataclass(frozen=True, slots=True)
class Finding:
    """One way the server failed: what happened, at which frame of the batch."""

    kind: str
    detail: str
    frame_index: int | None = None
    frame: Frame | None = None

    def describe(self) -> str:
        where = "" if self.frame_index is None else f" at frame {self.frame_index + 1}"
        sent = "" if self.frame is None else f"\n  frame: {self.frame.describe()}"
        return f"{self.kind}{where}: {self.detail}{sent}"


class BatchRunner:
    """Runs batches against one server URL; counts the frames it sent."""

    def __init__(
        self, url: str, limits: Limits, *, timeout: float = 2.0, access: Access | None = None
    ) -> None:
        self.url = url
        self.limits = limits
        self.timeout = timeout
        #: Tokens for the audit's joins, the handshake and TLS (harness.access).
        self.access = access or Access()
        self.frames_sent = 0
        #: Fuzzed frames the server answered with ``joined`` (audits and rejoins aside).
        self.joins_accepted = 0
        self._tag = secrets.token_hex(3)
        self._sessions = itertools.count(1)

    async def run(self, frames: Sequence[Frame]) -> Finding | None:
        """Send ``frames`` on a fresh session; the first finding, or None."""
        session = f"fuzz-{self._tag}-{next(self._sessions)}"
        batch = _Batch(self, session)
        try:
            await batch.open()
            for index, frame in enumerate(frames):
                batch.index = index
                await batch.exchange(frame)
            batch.index = None
            await batch.close()
            await self._audit(session, batch.models[session])
        except FindingError as exc:
            return exc.finding
        finally:
            await batch.close()
        return None

    async def _audit(self, session: str, model: SessionModel) -> None:
        """A fresh connection joins the batch's session and reads every key back (R3.1, R3.9)."""
        try:
            ws = await self._connect()
        except Unreachable as exc:
            raise FindingError(Finding("not-alive", f"after the batch: {exc}")) from None
        try:
            join = Join(1, session, AUDITOR, self.access.token_for(session, AUDITOR.id))
            reply = await self._ask(ws, json_text(to_wire(join)), "a join on a fresh connection")
            if reply.get("type") != "joined" or reply.get("id") != 1:
                detail = f"a join on a fresh connection was answered {reply!r}; expected joined"
                raise FindingError(Finding("not-alive", f"after the batch: {detail} (R2.1)"))
            keys = sorted(model.values) or [AUDIT_KEY]
            for request_id, key in enumerate(keys, 2):
                # json_text: a key a server accepted may hold a lone surrogate (R1.7).
                frame = json_text({"type": "get", "id": request_id, "key": key})
                reply = await self._ask(ws, frame, f"a get of {key!r} on a fresh connection")
                want = model.possible(key)
                if reply.get("type") != "value" or reply.get("value") not in want:
                    detail = (
                        f"a get of {key!r} on a fresh connection was answered {reply!r}; "
                        f"expected a value reply holding {oracle.describe_values(want)}, "
                        "what the acknowledged writes left"
                    )
                    raise FindingError(Finding("state", detail + " (R3.1, R3.9)"))
        finally:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _ask(self, ws: ClientConnection, frame: bytes, what: str) -> dict[str, object]:
        try:
            await ws.send(frame, text=True)
            async with asyncio.timeout(self.timeout):
                while True:
                    reply = await _receive(ws)
                    if reply.get("type") != "update":
                        return reply
        except TimeoutError:
            detail = f"no answer to {what} within {self.timeout:g}s"
        except ConnectionClosed as exc:
            detail = f"{what} ended in {describe_close(exc)}"
        except FindingError as exc:
            raise FindingError(
                Finding(exc.finding.kind, f"after the batch, {what}: {exc.finding.detail}")
            ) from None
        expected = (
            "expected an answer: a server keeps serving new connections whatever another sent"
        )
        raise FindingError(Finding("not-alive", f"after the batch: {detail}; {expected}"))

    async def _connect(self) -> ClientConnection:
        try:
            access = self.access
            tls = (
                tls_context(access.ca_file, access.insecure)
                if self.url.startswith("wss:")
                else None
            )
            return await connect(
                self.url,
                additional_headers=list(access.headers),
                subprotocols=[Subprotocol(access.subprotocol)] if access.subprotocol else None,
                ssl=tls,
                compression=None,
                max_size=None,
                open_timeout=self.timeout,
                ping_interval=None,
                close_timeout=1,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise Unreachable(
                f"could not connect to {self.url}: {exc or type(exc).__name__}"
            ) from None


class _Batch:
    """The connection a batch's frames go through, reopened after an allowed close."""

    def __init__(self, runner: BatchRunner, session: str) -> None:
        self.runner = runner
        self.session = session
        self.models = {session: SessionModel(runner.limits)}
        self.conn = ConnectionState()
        self.ws: ClientConnection | None = None
        self.index: int | None = None

    def model(self) -> SessionModel:
        joined = self.conn.joined
        name = self.session if joined is None else joined.session
        # A join to any other session (only a hand-written replay makes one) sees
        # state the fuzzer did not write: judged loosely there.
        return self.models.setdefault(name, SessionModel(self.runner.limits, exact=False))

    async def open(self, rejoin: Join | None = None) -> None:
        self.ws = await self.runner._connect()
        self.conn = ConnectionState()
        if rejoin is not None:
            # The previous connection was closed as the spec allows; carry on joined.
            shown = replace(rejoin, token=TOKEN_PLACEHOLDER) if rejoin.token else rejoin
            await self._send_checked(
                Frame(json_text(to_wire(rejoin))),
                rejoin_of=rejoin,
                shown=Frame(json_text(to_wire(shown))),
            )

    async def close(self) -> None:
        if self.ws is not None:
            ws, self.ws = self.ws, None
            with contextlib.suppress(Exception):
                await ws.close()

    def fail(self, kind: str, detail: str, frame: Frame | None = None) -> FindingError:
        return FindingError(Finding(kind, detail, self.index, frame))

    async def exchange(self, frame: Frame) -> None:
        token = None
        if TOKEN_FIELD in frame.data:
            token = self.runner.access.token_for(self.session, FUZZ_PARTICIPANT)
        sent = frame.substitute(self.session, self.conn.last_observer, token)
        self.runner.frames_sent += 1
        # A finding quotes the frame as generated: a token it was sent with stays out.
        await self._send_checked(sent, shown=frame if token is not None else sent)

    async def _send_checked(
        self, sent: Frame, rejoin_of: Join | None = None, shown: Frame | None = None
    ) -> None:
        """Send ``sent`` and judge what comes back; a finding quotes ``shown`` (or ``sent``)."""
        assert self.ws is not None
        frame = shown or sent
        model = self.model()
        expected = oracle.expect(sent, self.conn, model)
        with contextlib.suppress(ConnectionClosed):  # the close code is read below
            await self.ws.send(sent.data, text=not sent.binary)
        try:
            async with asyncio.timeout(self.runner.timeout):
                while True:
                    reply = await _receive(self.ws)
                    if reply["type"] == "update":
                        problem = oracle.judge_update(reply, self.conn, model, expected)
                        if problem:
                            raise self.fail("wrong-update", problem, frame)
                        continue
                    verdict = oracle.judge(expected, reply, self.conn, model)
                    if verdict.problem:
                        raise self.fail("wrong-reply", verdict.problem, frame)
                    break
        except TimeoutError:
            detail = f"no reply within {self.runner.timeout:g}s; expected {expected.describe()}"
            raise self.fail("silence", detail, frame) from None
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code not in expected.close_codes or rejoin_of is not None:
                detail = f"{describe_close(exc)}; expected {expected.describe()}"
                raise self.fail("closed", detail, frame) from None
            try:
                await self.open(self.conn.joined)
            except Unreachable as gone:
                detail = f"after an allowed close: {gone}; expected a new connection to be accepted"
                raise self.fail("not-alive", detail, frame) from None
            return
        except FindingError as exc:
            raise self.fail(exc.finding.kind, exc.finding.detail, frame) from None
        if reply["type"] == "error" and reply["code"] == ErrorCode.UNAUTHORIZED:
            await self._expect_unauthorized_close(frame, expected)
        elif reply["type"] != "error":
            if reply["type"] == "joined" and rejoin_of is None:
                self.runner.joins_accepted += 1
            oracle.apply(verdict.applied, reply, self.conn, model)

    async def _expect_unauthorized_close(self, frame: Frame, expected: Expected) -> None:
        """R2.4: after UNAUTHORIZED the server closes with 1008; then the batch goes on unjoined.

        A frame with an id outside ±(2^53-1) may earn any code (R1.2), UNAUTHORIZED
        too, even when no reading of it is a join; a server that then keeps the
        connection open conforms as well, so silence ends the wait there.
        """
        assert self.ws is not None
        must_close = any(isinstance(r, Join) for r in expected.candidates())
        try:
            async with asyncio.timeout(self.runner.timeout):
                while True:
                    await _receive(self.ws)
        except TimeoutError:
            if not must_close:
                return
            detail = "no close after UNAUTHORIZED; expected a close with code 1008 (R2.4)"
            raise self.fail("silence", detail, frame) from None
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != CLOSE_UNAUTHORIZED:
                detail = f"after UNAUTHORIZED, {describe_close(exc)}; expected code 1008 (R2.4)"
                raise self.fail("closed", detail, frame) from None
        await self.open()


async def _receive(ws: ClientConnection) -> dict[str, object]:
    """The next frame, schema-checked (R1.4); a bad one is a finding."""
    message = await ws.recv()
    if isinstance(message, bytes):
        detail = f"the server sent a binary frame {message[:100]!r}; expected text frames (R1.1)"
        raise FindingError(Finding("malformed", detail))
    problems = schema_problems(message)
    if problems:
        detail = (
            f"{'; '.join(problems[:3])} in {message[:300]!r}; expected a frame that matches "
            "the schema of its type (R1.4)"
        )
        raise FindingError(Finding("malformed", detail))
    # As RFC 8259 allows: a lone surrogate the server echoes, a big integer (R1.7, R1.2).
    data: dict[str, object] = loads_json(message)
    return data


def describe_close(exc: ConnectionClosed) -> str:
    if exc.rcvd is not None:
        reason = f" ({exc.rcvd.reason})" if exc.rcvd.reason else ""
        return f"the server closed the connection with code {exc.rcvd.code}{reason}"
    if exc.sent is not None:
        return f"the client closed the connection with code {exc.sent.code} ({exc.sent.reason})"
    return "the connection dropped without a close frame"


__all__ = ["BatchRunner", "Finding", "FindingError", "Unreachable"]
