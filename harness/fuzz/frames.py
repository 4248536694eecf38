"""Frames as the fuzzer sends them, and the replay file that holds a failing list of them.

A replay file is JSON lines, one frame per line, in the order they are sent:

* a text frame that is valid UTF-8 is a JSON string holding its text;
* a binary frame is ``{"binary": "<base64>"}``;
* a text frame whose payload is not valid UTF-8 (R1.1 forbids it, so the
  fuzzer sends some) is ``{"text": "<base64>"}``.

Frames may hold two placeholders that the runner fills in before sending, so a
replay starts from a fresh, empty session like the run that found the failure:
the JSON string ``"$session"`` becomes the batch's own session name and
``"$observer"`` the last observerId the connection was given.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from harness.errors import HarnessUsageError

from .jsontext import json_text

SESSION_PLACEHOLDER = "$session"
OBSERVER_PLACEHOLDER = "$observer"
#: Who the well-formed join of a batch joins as.
FUZZ_PARTICIPANT = "fuzz"
#: The well-formed join's token, filled in as each batch sends it: a replay file keeps
#: the placeholder, never a token (a credential).
TOKEN_PLACEHOLDER = "$token"
#: The token field as the well-formed join renders it, last: dropped when there is none.
TOKEN_FIELD = b',"token":' + json_text(TOKEN_PLACEHOLDER)


@dataclass(frozen=True, slots=True)
class Frame:
    """One WebSocket data frame: its payload and whether it is binary."""

    data: bytes
    binary: bool = False

    @classmethod
    def text(cls, text: str) -> Frame:
        return cls(text.encode("utf-8"))

    @property
    def valid_utf8(self) -> bool:
        try:
            self.data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def substitute(self, session: str, observer: str | None, token: str | None = None) -> Frame:
        """The frame with its placeholders filled in (binary frames are sent as they are);
        without a ``token`` the token field goes, so the join carries none."""
        if self.binary:
            return self
        # json_text, not orjson: an observerId a server picked may hold a lone surrogate.
        data = self.data.replace(json_text(SESSION_PLACEHOLDER), json_text(session))
        if observer is not None:
            data = data.replace(json_text(OBSERVER_PLACEHOLDER), json_text(observer))
        if TOKEN_FIELD in data:
            filled = b',"token":' + json_text(token) if token is not None else b""
            data = data.replace(TOKEN_FIELD, filled)
        return Frame(data)

    def describe(self, limit: int = 160) -> str:
        """A short, printable rendering for progress lines and findings."""
        kind = "binary" if self.binary else "text" if self.valid_utf8 else "text (invalid UTF-8)"
        shown = repr(self.data[:limit])
        more = f"... ({len(self.data)} bytes)" if len(self.data) > limit else ""
        return f"{kind} {shown}{more}"

    def to_line(self) -> str:
        if self.binary:
            return orjson.dumps({"binary": base64.b64encode(self.data).decode()}).decode()
        if not self.valid_utf8:
            return orjson.dumps({"text": base64.b64encode(self.data).decode()}).decode()
        # orjson refuses lone surrogates, but a valid UTF-8 payload never holds one.
        return orjson.dumps(self.data.decode("utf-8")).decode()

    @classmethod
    def from_line(cls, line: str) -> Frame:
        item = orjson.loads(line)
        if isinstance(item, str):
            return cls.text(item)
        if isinstance(item, dict) and len(item) == 1:
            (marker, payload), *_ = item.items()
            if marker in ("binary", "text") and isinstance(payload, str):
                return cls(base64.b64decode(payload, validate=True), binary=marker == "binary")
        raise ValueError("expected a JSON string, {'binary': base64} or {'text': base64}")


def dump_frames(frames: Iterable[Frame]) -> str:
    return "".join(frame.to_line() + "\n" for frame in frames)


def write_frames(path: str | Path, frames: Sequence[Frame]) -> None:
    Path(path).write_text(dump_frames(frames), encoding="utf-8")


def read_frames(path: str | Path) -> list[Frame]:
    """Load a replay file; a malformed file is the user's error (exit 2)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessUsageError(f"cannot read the replay file {path}: {exc}") from None
    frames = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            frames.append(Frame.from_line(line))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise HarnessUsageError(f"{path}:{number}: not a replay frame ({exc})") from None
    if not frames:
        raise HarnessUsageError(f"the replay file {path} holds no frames")
    return frames
