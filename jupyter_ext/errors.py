"""The one table from errors to HTTP statuses, and the JSON error body."""

from __future__ import annotations

import json

from coflux.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RequestError,
    StorageError,
    StorageFull,
    Unauthorized,
)

STATUS: dict[type[Exception], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    StorageError: 503,
    StorageFull: 507,
}

CODE_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    500: "internal",
    503: "unavailable",
    507: "insufficient_storage",
}


def status_of(error: Exception) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def code_of(error: Exception) -> str:
    if isinstance(error, RequestError):
        return error.code
    if isinstance(error, StorageError):
        return CODE_BY_STATUS[status_of(error)]
    return "internal"


def error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})
