"""Every WebSocket close code the harness sends, expects or judges, in one place.

The protocol gives three codes a meaning of its own (docs/protocol.md R1.6, R2.4
and "Server limits"); the rest are RFC 6455 section 7.4.1's, which clients and the
fuzzer's oracle judge servers by.
"""

from __future__ import annotations

#: RFC 6455: the connection did what it was for.
CLOSE_NORMAL = 1000
#: RFC 6455: the peer broke the WebSocket protocol; the harness's clients close with it
#: after a spec violation (the store protocol rides on WebSocket text frames).
CLOSE_PROTOCOL_ERROR = 1002
#: RFC 6455: a frame of a type the endpoint does not accept (a binary frame, R1.1).
CLOSE_UNSUPPORTED_DATA = 1003
#: RFC 6455: a text frame that is not UTF-8.
CLOSE_INVALID_UTF8 = 1007
#: RFC 6455's policy violation, which the protocol uses for each limit below.
CLOSE_POLICY_VIOLATION = 1008
#: R2.4: after a join refused with UNAUTHORIZED.
CLOSE_UNAUTHORIZED = CLOSE_POLICY_VIOLATION
#: Server limits: a connection that leaves too many frames unread (R4.7).
CLOSE_SLOW_CONSUMER = CLOSE_POLICY_VIOLATION
#: Server limits: an observe past the per-connection observer limit. A policy violation
#: like an unread outbox, not a protocol error: the spec has no error code for it.
CLOSE_TOO_MANY_OBSERVERS = CLOSE_POLICY_VIOLATION
#: R1.6: a frame past the server's frame limit.
CLOSE_FRAME_TOO_LARGE = 1009
#: RFC 6455: the server broke (a bug, never the client's fault).
CLOSE_INTERNAL_ERROR = 1011
#: Server limits: a connection past the server's connection cap, before any request.
CLOSE_TRY_AGAIN_LATER = 1013
