"""NATS JetStream KV as a store: ``--url nats://127.0.0.1:4222/bucket``.

A bucket is the JetStream stream ``KV_<bucket>`` over subjects ``$KV.<bucket>.>``,
as every NATS KV client lays it out, so ``nats kv`` tools see the same keys. The
adapter creates the stream on connect when it is missing (64 values kept per key,
rollup headers allowed, direct gets on), and refuses a bucket that keeps fewer than 64
(see ``HISTORY``: its watches would skip updates). The bucket defaults to ``store-harness``.

- **A session** is a key prefix: key ``k`` of session ``s`` is the KV key ``s.k``,
  subject ``$KV.<bucket>.s.k``. KV keys allow only ``[-/_=.a-zA-Z0-9]``, so each
  of the two tokens is encoded reversibly: ``-``, ``_``, ``/``, ASCII letters and
  digits stand for themselves, every other code point becomes its UTF-8 bytes as
  ``=XX`` (uppercase hex); a lone surrogate travels as its surrogatepass bytes.
  ``a.b`` becomes ``a=2Eb`` and ``=`` becomes ``=3D``, so no two keys collide and
  no key can reach into another session. An empty key is refused with
  ``INVALID_KEY``: NATS has no empty subject token.
- **set** publishes the value to the key's subject and waits for the JetStream
  acknowledgement; **delete** publishes a KV delete marker (header
  ``KV-Operation: DEL``), which is a write observers see (R3.2). **updatedBy**
  travels in the headers ``Store-Updated-By`` and ``Store-Updated-By-Name`` (the
  writer's id and name as it joined, encoded like a key token, R4.2): NATS itself
  records no writer.
- **get** is a direct get of the subject's last message
  (``$JS.API.DIRECT.GET.KV_<bucket>``, or ``STREAM.MSG.GET`` on a stream without
  direct gets); a delete or purge marker reads as None.
- **observe** is an updates-only watch: an ephemeral push consumer with
  ``deliver_policy: new`` and the key's subject as its filter, delivering to an
  inbox of the connection's own, without acks, with flow control (each request
  answered at once) and idle heartbeats. Deliveries come from the stream, in
  stream order, once each, as long as a watch lags fewer than ``HISTORY`` writes to
  its key behind the stream (older ones are gone from it by then); measured:
  none missed by eight observers of one key under ten concurrent writers. A plain
  core-NATS subscription to the subject would save the consumer's creation, but it
  sees a message before the stream orders it, so two writers' updates could arrive
  in another order than the stream applied them (breaking R4.3), and it would see
  writes the stream refused.
  Consumer sequence numbers (in each delivery's reply subject, and in each
  heartbeat's ``Nats-Last-Consumer``) must run without a gap; a gap means a
  delivery to this connection was lost, and the connection is then declared lost
  rather than the observer going on with a hole. JetStream acknowledges a write before
  its consumers deliver it, so ``stop`` first reads the stream sequence of the key's last
  message and waits until the consumer has delivered it: every write acknowledged before
  ``stop`` was called reaches the observer (R4.1). Then it unsubscribes, so nothing is
  delivered after it returns (R4.5), and deletes the consumer without waiting.

Outcomes: a JetStream error answer is outcome-unknown (``OutcomeUnknown``)
unless it clearly refuses the write for a reason the store protocol names (a
payload over the server's ``max_payload`` is ``VALUE_TOO_LARGE``, checked before
sending, as the server would close the connection over it); no answer within
``request_timeout`` is ``RequestTimeout``; a broken connection is
``ConnectionLost``. Values are limited only by ``max_payload`` and keys by the
server's 4096-byte control line; neither is a store-protocol limit, so the
capabilities declare none.
"""

from __future__ import annotations

import base64
import contextlib
import re
import string
import threading
from collections.abc import Collection
from typing import Any
from urllib.parse import unquote

import orjson

from harness.adapters.base import (
    AdapterOptions,
    Capabilities,
    Deliver,
    OnLost,
    StoreAdapter,
    store_address,
)
from harness.adapters.natsproto import Msg, NatsConnection, decode_headers, encode_headers
from harness.errors import (
    ConnectionLost,
    HarnessUsageError,
    OutcomeUnknown,
    RequestTimeout,
    StoreError,
)
from harness.protocol import ErrorCode, Participant

DEFAULT_PORT = 4222
DEFAULT_BUCKET = "store-harness"
#: Values kept per key. A watch's consumer reads from these, so a write overwritten before
#: the consumer reached it is never delivered: with 1 (plain KV's default), half the
#: updates went missing under six concurrent writers; with 64 (the most NATS KV clients
#: allow), none did. A get still reads the last one.
HISTORY = 64
UPDATED_BY = "Store-Updated-By"
UPDATED_BY_NAME = "Store-Updated-By-Name"
KV_OPERATION = "KV-Operation"
#: The server's default longest protocol line; a longer PUB line makes it close the connection.
MAX_CONTROL_LINE = 4096
#: How often an idle watch hears from its consumer (JetStream requires it with flow control).
HEARTBEAT_NS = 5_000_000_000
#: JetStream's error codes for "stream not found" and "message size exceeds maximum".
_STREAM_NOT_FOUND = 10059
_MESSAGE_TOO_LARGE = 10054

_BUCKET = re.compile(r"[-_a-zA-Z0-9]+")
_PLAIN = frozenset("-_/" + string.ascii_letters + string.digits)
_ALL_PLAIN = re.compile(r"[-_/a-zA-Z0-9]*")
_ESCAPE = re.compile(r"=([0-9A-F]{2})")


def encode_token(text: str) -> str:
    """``text`` as one KV key token: reversible, and never containing ``.``."""
    if _ALL_PLAIN.fullmatch(text):
        return text
    out = []
    for char in text:
        if char in _PLAIN:
            out.append(char)
        else:
            out.extend(f"={byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def decode_token(token: str) -> str:
    """The inverse of :func:`encode_token`."""
    if "=" not in token:
        return token
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(token):
        raw += token[position : match.start()].encode()
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += token[position:].encode()
    return raw.decode("utf-8", "surrogatepass")


class _Watch:
    """One observer: its consumer, its delivery subscription, and the sequence it expects."""

    __slots__ = (
        "consumer", "deliver", "fence", "fenced", "lock", "next_sequence", "sid", "stopped",
        "stream_sequence", "subject",
    )  # fmt: skip

    def __init__(self, subject: str, deliver: Deliver) -> None:
        self.subject = subject
        self.deliver = deliver
        # Held while delivering, so stop() returns only once no delivery is under way;
        # reentrant so a callback may stop its own observer.
        self.lock = threading.RLock()
        self.stopped = False
        self.sid = ""
        self.consumer = ""
        self.next_sequence = 1
        #: The stream sequence of the last delivery (at first, where the consumer began).
        self.stream_sequence = 0
        #: stop() waits until a delivery reaches this stream sequence; see stop().
        self.fence = 0
        self.fenced = threading.Event()


class NatsKvAdapter(StoreAdapter):
    """One participant's connection to a NATS JetStream KV bucket."""

    schemes = ("nats",)
    capabilities = Capabilities(native_updated_by=False, key_limit=None, value_limit=None)
    description = "NATS JetStream KV: a session is a key prefix, observe an updates-only consumer"

    def __init__(self, url: str, options: AdapterOptions) -> None:
        super().__init__(url, options)
        parts, host, port = store_address(url, "nats", DEFAULT_PORT)
        self.bucket = parts.path.strip("/") or DEFAULT_BUCKET
        if not _BUCKET.fullmatch(self.bucket):
            raise HarnessUsageError(
                f"--url {url!r}: a NATS KV bucket name allows only letters, digits, - and _"
            )
        credentials = {}
        if parts.username is not None and parts.password is not None:
            credentials = {"user": unquote(parts.username), "pass": unquote(parts.password)}
        elif parts.username is not None:
            credentials = {"auth_token": unquote(parts.username)}
        self.stream = f"KV_{self.bucket}"
        self.nats = NatsConnection(
            host,
            port,
            connect_timeout=options.connect_timeout,
            credentials=credentials,
        )
        self._prefix = ""
        self._writer: dict[str, str] = {}
        #: ``delivering``: True on the reader thread while it runs a callback.
        self._local = threading.local()
        self._direct = True

    # --- lifecycle ------------------------------------------------------------------

    def connect(self, on_lost: OnLost) -> None:
        self._on_lost = on_lost
        self.nats.connect(self._lost)
        if not self.nats.info.get("jetstream"):
            self.nats.close()
            raise ConnectionLost("the NATS server has no JetStream: start it with -js")
        try:
            self._ensure_stream()
        except BaseException:
            self.nats.close()
            raise

    def _ensure_stream(self) -> None:
        info = self._api(f"STREAM.INFO.{self.stream}", b"", refused_ok={_STREAM_NOT_FOUND})
        if "error" in info:
            config = {
                "name": self.stream,
                "subjects": [f"$KV.{self.bucket}.>"],
                "max_msgs_per_subject": HISTORY,
                "discard": "new",
                "allow_rollup_hdrs": True,
                "deny_delete": True,
                "allow_direct": True,
                "storage": "file",
                "num_replicas": 1,
            }
            info = self._api(f"STREAM.CREATE.{self.stream}", orjson.dumps(config))
        kept = info.get("config", {}).get("max_msgs_per_subject", -1)
        if 0 < kept < HISTORY:
            raise HarnessUsageError(
                f"bucket {self.bucket!r} keeps {kept} value(s) per key, so its watches skip "
                f"updates; use another bucket, or one made with --history {HISTORY}"
            )
        self._direct = bool(info.get("config", {}).get("allow_direct"))

    def close(self) -> None:
        self.nats.close()

    def _lost(self, reason: str) -> None:
        self._on_lost(reason)

    def join(self, session: str, participant_id: str, name: str, token: str | None) -> None:
        if not session:
            raise StoreError(ErrorCode.BAD_REQUEST, "the session must be a non-empty string")
        # NATS has no per-session access; a join token has nothing to open here.
        self._prefix = f"$KV.{self.bucket}.{encode_token(session)}."
        self._writer = {
            UPDATED_BY: encode_token(participant_id),
            UPDATED_BY_NAME: encode_token(name),
        }

    # --- the store API --------------------------------------------------------------

    def set(self, key: str, value: str | None) -> None:
        subject = self._subject(key)
        headers = dict(self._writer)
        if value is None:
            headers[KV_OPERATION] = "DEL"
        data = b"" if value is None else value.encode("utf-8", "surrogatepass")
        if len(encode_headers(headers)) + len(data) > self.nats.max_payload:
            raise StoreError(
                ErrorCode.VALUE_TOO_LARGE,
                f"the NATS server takes at most {self.nats.max_payload} bytes a message",
            )
        ack = self._answer(self.nats.request(subject, data, self._timeout, headers), subject)
        error = ack.get("error")
        if error is not None:
            if error.get("err_code") == _MESSAGE_TOO_LARGE:
                raise StoreError(ErrorCode.VALUE_TOO_LARGE, str(error.get("description")))
            raise OutcomeUnknown(f"JetStream answered the write to {key!r} with {error}")

    def get(self, key: str) -> str | None:
        subject = self._subject(key)
        if not self._direct:
            return self._stream_get(subject)
        api = f"$JS.API.DIRECT.GET.{self.stream}"
        msg = self.nats.request(api, orjson.dumps({"last_by_subj": subject}), self._timeout)
        if msg.status == "404":
            return None
        if msg.status:
            raise OutcomeUnknown(f"JetStream answered a get of {key!r} with {msg.status}")
        if msg.headers.get(KV_OPERATION) in ("DEL", "PURGE"):
            return None
        return msg.data.decode("utf-8", "surrogatepass")

    def _stream_get(self, subject: str) -> str | None:
        reply = self._api(
            f"STREAM.MSG.GET.{self.stream}", orjson.dumps({"last_by_subj": subject}), {10037}
        )
        if "error" in reply:
            return None
        message = reply["message"]
        headers = base64.b64decode(message.get("hdrs") or b"")
        if headers and decode_headers(headers)[2].get(KV_OPERATION) in ("DEL", "PURGE"):
            return None
        return base64.b64decode(message.get("data") or b"").decode("utf-8", "surrogatepass")

    def observe(self, key: str, deliver: Deliver) -> object:
        subject = self._subject(key)
        watch = _Watch(subject, deliver)
        inbox = self.nats.new_inbox()
        watch.sid = self.nats.subscribe(inbox, lambda msg: self._delivered(watch, msg))
        config = {
            "deliver_subject": inbox,
            "deliver_policy": "new",
            "ack_policy": "none",
            "filter_subject": subject,
            "flow_control": True,
            "idle_heartbeat": HEARTBEAT_NS,
            "mem_storage": True,
            "num_replicas": 1,
        }
        request = {"stream_name": self.stream, "config": config}
        try:
            created = self._api(f"CONSUMER.CREATE.{self.stream}", orjson.dumps(request))
        except BaseException:
            # The consumer may exist after all; with no interest left the server drops it.
            self.nats.unsubscribe(watch.sid)
            raise
        watch.consumer = created["name"]
        watch.stream_sequence = int(created.get("delivered", {}).get("stream_seq", 0))
        return watch

    def stop(self, handle: object) -> None:
        assert isinstance(handle, _Watch)
        # JetStream acknowledges a write before its consumers deliver it, so a write
        # acknowledged before stop() may still be on its way here; R4.1 owes it to this
        # observer, active when it was applied. So stop first waits for the key's last
        # message in the stream, if the consumer has not delivered it yet.
        # (Not from a callback: it runs on the reader, which must read the answer.)
        delivering = getattr(self._local, "delivering", False)
        fence = 0 if delivering else self._last_sequence(handle.subject)
        with handle.lock:
            if fence > handle.stream_sequence:
                handle.fence = fence
                handle.fenced.clear()
            else:
                handle.fenced.set()
        caught_up = handle.fenced.wait(self._timeout)
        with handle.lock:
            handle.stopped = True
        self.nats.unsubscribe(handle.sid)
        if handle.consumer:
            api = f"$JS.API.CONSUMER.DELETE.{self.stream}.{handle.consumer}"
            # A connection already gone took its consumers' interest, and so them, with it.
            with contextlib.suppress(ConnectionLost):
                self.nats.forget(api, b"")
        if not caught_up:
            raise RequestTimeout(
                f"the watch did not deliver stream message {fence} within {self._timeout:g} s"
            )

    def _last_sequence(self, subject: str) -> int:
        """The stream sequence of the subject's last message; 0 when it has none."""
        if not self._direct:
            reply = self._api(
                f"STREAM.MSG.GET.{self.stream}", orjson.dumps({"last_by_subj": subject}), {10037}
            )
            return 0 if "error" in reply else int(reply["message"]["seq"])
        api = f"$JS.API.DIRECT.GET.{self.stream}"
        msg = self.nats.request(api, orjson.dumps({"last_by_subj": subject}), self._timeout)
        if msg.status == "404":
            return 0
        if msg.status or "Nats-Sequence" not in msg.headers:
            raise OutcomeUnknown(f"JetStream answered a direct get with {msg.status or msg.data!r}")
        return int(msg.headers["Nats-Sequence"])

    # --- deliveries -----------------------------------------------------------------

    def _delivered(self, watch: _Watch, msg: Msg) -> None:
        if msg.status == "100":
            self._control(watch, msg)
            return
        # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>,
        # with a domain and an account hash before the stream in the newer form.
        tokens = msg.reply.split(".")
        at = -3 if len(tokens) == 9 else -4
        sequence, stream_sequence = int(tokens[at]), int(tokens[at - 1])
        with watch.lock:
            if watch.stopped:
                return
            if sequence != watch.next_sequence:
                self._gap(watch, sequence)
                return
            watch.next_sequence = sequence + 1
            watch.stream_sequence = stream_sequence
            value = None
            if msg.headers.get(KV_OPERATION) not in ("DEL", "PURGE"):
                value = msg.data.decode("utf-8", "surrogatepass")
            writer = Participant(
                decode_token(msg.headers.get(UPDATED_BY, "")),
                decode_token(msg.headers.get(UPDATED_BY_NAME, "")),
            )
            self._local.delivering = True
            try:
                watch.deliver(value, writer)
            finally:
                self._local.delivering = False
            if watch.fence and stream_sequence >= watch.fence:
                watch.fenced.set()

    def _control(self, watch: _Watch, msg: Msg) -> None:
        """A flow-control request (answer it) or an idle heartbeat (check the sequence)."""
        if msg.reply:
            self._answer_flow_control(msg.reply)
            return
        stalled = msg.headers.get("Nats-Consumer-Stalled")
        if stalled:
            self._answer_flow_control(stalled)
        last = msg.headers.get("Nats-Last-Consumer")
        with watch.lock:
            if last is not None and not watch.stopped and int(last) >= watch.next_sequence:
                self._gap(watch, int(last))

    def _answer_flow_control(self, subject: str) -> None:
        with contextlib.suppress(ConnectionLost):  # the reader sees the end and reports it
            self.nats.publish(subject)

    def _gap(self, watch: _Watch, sequence: int) -> None:
        watch.stopped = True
        watch.fenced.set()  # a stop() waiting for it has nothing more to wait for
        reason = (
            f"the watch's consumer skipped deliveries {watch.next_sequence}..{sequence}: "
            "an update was lost"
        )
        # Not on the reader: closing waits for nothing, but the bridge ends every observer.
        threading.Thread(target=self._fail, args=(reason,), daemon=True).start()

    def _fail(self, reason: str) -> None:
        self.nats.close()
        self._on_lost(reason)

    # --- helpers --------------------------------------------------------------------

    @property
    def _timeout(self) -> float:
        return self.options.request_timeout

    def _subject(self, key: str) -> str:
        if not key:
            raise StoreError(ErrorCode.INVALID_KEY, "the key must be a non-empty string")
        subject = self._prefix + encode_token(key)
        if len(subject) > MAX_CONTROL_LINE - 128:
            raise StoreError(
                ErrorCode.INVALID_KEY,
                f"the key takes {len(subject)} bytes as a NATS subject; "
                f"the server's protocol line holds {MAX_CONTROL_LINE}",
            )
        return subject

    def _api(self, name: str, data: bytes, refused_ok: Collection[int] = ()) -> dict[str, Any]:
        """One JetStream API request; an error answer it does not expect is outcome-unknown."""
        subject = f"$JS.API.{name}"
        reply = self._answer(self.nats.request(subject, data, self._timeout), subject)
        error = reply.get("error")
        if error is not None and error.get("err_code") not in refused_ok:
            raise OutcomeUnknown(f"JetStream answered {name} with {error.get('description')}")
        return reply

    def _answer(self, msg: Msg, subject: str) -> dict[str, Any]:
        if msg.status == "503":
            raise OutcomeUnknown(f"nothing in the NATS server answers {subject}: no JetStream?")
        if msg.status:
            raise OutcomeUnknown(f"NATS answered {subject} with {msg.status} {msg.description}")
        try:
            return orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            raise OutcomeUnknown(f"NATS answered {subject} with {msg.data[:80]!r}") from None


__all__ = ["NatsKvAdapter", "decode_token", "encode_token"]
