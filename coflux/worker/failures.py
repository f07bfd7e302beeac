"""Why a worker's connection attempt failed, in words a user can act on. Three kinds:

- ``down``: nothing answered, or the server (or a proxy) is in trouble (a 5xx, Coflux's 503 with its
  reason): retry with backoff;
- ``refused``: Coflux itself refused the worker (a bad token, a submit token, a handshake it will
  never take): no point retrying;
- ``foreign``: something answered that is not Coflux (an HTML page, a 404 of another server):
  the URL is wrong; look for the API under it (:func:`coflux.address.locate`).
"""

from __future__ import annotations

import asyncio
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Final, Literal

from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError, WebSocketError

from coflux.address import Answer
from coflux.errors import ProtocolError, RequestError, request_error

_TORNADO_REASONS: Final = {
    "Timeout while connecting": "timed out while connecting",
    "Timeout during request": "connected, but no answer came",
    "Stream closed": "the connection closed before an answer came",
}
TRANSIENT_CODES: Final = frozenset({"conflict", "unavailable", "internal", "insufficient_storage"})
"""Error codes of a refused handshake that another attempt may not get: a session of another
workspace (``conflict``: the next attempt starts a new one), storage trouble, a bug of the server."""


@dataclass(frozen=True)
class Failure:
    kind: Literal["down", "refused", "foreign"]
    reason: str
    error: RequestError | None = None
    """``refused``: the server's refusal, as the client library raises it."""
    answer: Answer | None = None
    """``foreign``: what came back, when tornado kept it."""
    unexpected: bool = False
    """Not a failure a connection is known to meet: a bug to log with its traceback."""


def classify(err: BaseException, url: str, handshake_timeout: float) -> Failure:
    """What ``err``, raised by a connection attempt to ``url``, means."""
    if isinstance(err, HTTPClientError):
        return _http_failure(err)
    if isinstance(err, WebSocketError) and not isinstance(err, WebSocketClosedError):
        return Failure("foreign", "the answer is not a websocket")  # a 2xx or 3xx: not Coflux's
    if isinstance(err, RequestError):  # an ``error`` answering the hello
        if err.code in TRANSIENT_CODES:
            return Failure("down", f"the server refused the handshake: {err.message}", err)
        return Failure("refused", err.message, err)
    if isinstance(err, ConnectionRefusedError):
        return Failure("down", "connection refused")
    if isinstance(err, socket.gaierror):
        host = urllib.parse.urlsplit(url).hostname
        return Failure("down", f"cannot resolve the host name {host!r} ({err.strerror})")
    if isinstance(err, asyncio.TimeoutError | TimeoutError):
        return Failure("down", f"no welcome within {handshake_timeout:.0f} s")
    if isinstance(err, WebSocketClosedError):
        return Failure("down", "the connection closed during the handshake")
    if isinstance(err, OSError):
        return Failure("down", err.strerror or str(err) or type(err).__name__)
    if isinstance(err, ProtocolError):
        return Failure("down", str(err))
    return Failure("down", f"unexpected {type(err).__name__}: {err}", unexpected=True)


def _http_failure(err: HTTPClientError) -> Failure:
    response = err.response
    if err.code == 599 or response is None:  # tornado's own: a timeout, a stream closed early
        return Failure("down", _TORNADO_REASONS.get(err.message or "", err.message or "no answer"))
    answer = Answer(err.code, response.headers.get("Content-Type", ""), response.body or b"")
    error = answer.error()
    if error is not None:
        code, message = error
        if err.code >= 500:
            return Failure("down", message)
        return Failure("refused", message, request_error(code, message))
    if answer.foreign:
        return Failure("foreign", answer.describe(), answer=answer)
    return Failure("down", answer.describe())  # a 5xx of a proxy


def close_reason(code: int | None, reason: str | None) -> str:
    """Why an established connection ended, from its close frame (``None``: no frame came)."""
    if code is None:
        return "the connection was lost"
    return f"the server closed the connection ({code}{f': {reason}' if reason else ''})"
