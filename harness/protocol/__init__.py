"""The store protocol without I/O: messages, codes, limits, schemas, reply matching.

Imports only the standard library plus orjson and jsonschema, so the asyncio
client, the blocking client, the server and the locust user can all share it.
"""

from harness.protocol.closes import (
    CLOSE_FRAME_TOO_LARGE,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
)
from harness.protocol.connection import ClientConnection, PendingRequest
from harness.protocol.kinds import KINDS, RequestKind
from harness.protocol.limits import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_FRAME_BYTES,
    ErrorCode,
    Limits,
)
from harness.protocol.messages import (
    Error,
    Get,
    Join,
    Joined,
    Observe,
    Observing,
    Ok,
    Participant,
    Rejection,
    Reply,
    Request,
    ServerMessage,
    Set,
    StopObserving,
    Update,
    UpdateFrames,
    Value,
    decode_server_message,
    encode,
    interpret_request,
    request_kind,
    request_name,
    to_wire,
    utf8_length,
)

__all__ = [
    "CLOSE_FRAME_TOO_LARGE",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_TRY_AGAIN_LATER",
    "CLOSE_UNAUTHORIZED",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_FRAME_BYTES",
    "KINDS",
    "ClientConnection",
    "Error",
    "ErrorCode",
    "Get",
    "Join",
    "Joined",
    "Limits",
    "Observe",
    "Observing",
    "Ok",
    "Participant",
    "PendingRequest",
    "Rejection",
    "Reply",
    "Request",
    "RequestKind",
    "ServerMessage",
    "Set",
    "StopObserving",
    "Update",
    "UpdateFrames",
    "Value",
    "decode_server_message",
    "encode",
    "interpret_request",
    "request_kind",
    "request_name",
    "to_wire",
    "utf8_length",
]
