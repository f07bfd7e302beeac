"""The one exception tree of the library.

::

    CofluxError
    ├── ConfigurationError        settings are missing or contradictory
    ├── StorageError              the database refused or failed a read or write
    │   └── StorageFull           no space left where the data goes (a full disk, a quota)
    ├── ProtocolError             a peer broke the wire protocol (bad frame, wrong version)
    ├── RequestError              a request was refused; ``code`` names why (the REST error code)
    │   ├── BadRequest            bad_request: malformed input, wrong arguments
    │   ├── Unauthorized          unauthorized: missing or wrong token
    │   ├── Forbidden             forbidden: a valid credential that may not do this
    │   ├── NotFound              not_found: unknown project, workspace, run, target...
    │   ├── Conflict              conflict: already exists, or not allowed in this state
    │   ├── PayloadTooLarge       too_large
    │   └── ServerUnavailable     unavailable: nothing answered at the URL (refused, timed out)
    │       └── NotCoflux         something answered, but not Coflux (also a ConfigurationError:
    │                             the URL is wrong, or a proxy's server is down)
    ├── ExecutionError            the user's code failed; also an instance of the original type
    ├── RemoteTraceback           (never raised) the ``__cause__`` of a rebuilt ExecutionError:
    │                             the failed execution's own traceback, from its worker
    └── ExecutionTerminated       the orchestrator stopped the execution
        ├── ExecutionCancelled
        ├── ExecutionTimeout
        └── ExecutionAbandoned    its worker died or vanished

"Your code failed" (``ExecutionError``) is kept apart from "the orchestrator stopped it"
(``ExecutionTerminated``). Errors cross the wire as data (:func:`error_to_data`) and are rebuilt on the
other side (:func:`execution_error_from_data`).
"""

from __future__ import annotations

import importlib
from typing import Any

from coflux.tracebacks import format_exception


class CofluxError(Exception):
    """Base of everything this library raises."""


class ConfigurationError(CofluxError):
    pass


class StorageError(CofluxError):
    pass


class StorageFull(StorageError):
    """No space left for the database or the blob store: freeing space is the fix, not a retry."""


class ProtocolError(CofluxError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RequestError(CofluxError):
    """A request was refused. Raised by the server's services and rebuilt by the client from the
    ``{"error": {"code", "message"}}`` body, so both sides catch the same classes."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(RequestError):
    code = "bad_request"


class Unauthorized(RequestError):
    code = "unauthorized"


class Forbidden(RequestError):
    """The credential is valid but its scope doesn't allow the request (e.g. a submit token
    starting a run with pickled arguments)."""

    code = "forbidden"


class NotFound(RequestError):
    code = "not_found"


class Conflict(RequestError):
    code = "conflict"


class PayloadTooLarge(RequestError):
    code = "too_large"


class ServerUnavailable(RequestError):
    """The server could not be reached at all (refused, unresolvable, timed out)."""

    code = "unavailable"


class NotCoflux(ServerUnavailable, ConfigurationError):
    """Something answered at the URL, but not Coflux's API (an HTML page, another JSON API): a
    wrong URL, or a proxy whose server is down."""


REQUEST_ERRORS: dict[str, type[RequestError]] = {
    cls.code: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge)
}


def request_error(code: str, message: str) -> RequestError:
    """The exception for an error code received from the server (unknown codes: ``RequestError``)."""
    cls = REQUEST_ERRORS.get(code)
    if cls is None:
        error = RequestError(message)
        error.code = code
        return error
    return cls(message)


class ExecutionError(CofluxError):
    """A step's own code raised. ``remote_type`` is the original ``module.Qualname``."""

    remote_type: str = "builtins.Exception"
    remote_message: str = ""
    remote_traceback: str = ""
    execution_id: str | None = None

    def __str__(self) -> str:
        # Rebuilt as the original type, it reads like the original; otherwise name the type.
        if type(self) is ExecutionError:
            return f"{self.remote_type}: {self.remote_message}"
        return self.remote_message

    def __repr__(self) -> str:
        return f"ExecutionError({self.remote_type}: {self.remote_message!r})"

    def _render_traceback_(self) -> list[str]:
        return _rendered(self)


def _rendered(error: BaseException) -> list[str]:
    """IPython's hook for errors from elsewhere (as ipyparallel's): a notebook shows this instead
    of its own traceback. Here: the step's traceback from its worker (the cause), then the
    frames of this process that are the user's (``Run.result()`` in a cell), not the library's."""
    return format_exception(error).rstrip("\n").split("\n")


class RemoteTraceback(CofluxError):
    """Where a step's error was raised, on the worker that ran it. Never raised: it is the
    ``__cause__`` of the :class:`ExecutionError` rebuilt from that error, so that Python, IPython
    and pytest print the step's own traceback (its code's frames, from the other process) above
    the frames of whoever waited for it, as they print any chained exception."""

    def __init__(self, traceback: str, execution_id: str | None = None) -> None:
        where = f"execution {execution_id}" if execution_id else "the execution"
        super().__init__(f"{where} raised:\n{traceback.rstrip()}")
        self.traceback = traceback
        self.execution_id = execution_id


class ExecutionTerminated(CofluxError):
    """The orchestrator ended the execution; nothing the step's code did."""

    state = "terminated"

    def __init__(self, execution_id: str, message: str | None = None) -> None:
        super().__init__(message or f"execution {execution_id} was {self.state.replace('_', ' ')}")
        self.execution_id = execution_id

    def _render_traceback_(self) -> list[str]:
        return _rendered(self)


class ExecutionCancelled(ExecutionTerminated):
    state = "cancelled"


class ExecutionTimeout(ExecutionTerminated):
    state = "timed_out"


class ExecutionAbandoned(ExecutionTerminated):
    state = "abandoned"


TERMINATED_BY_STATE: dict[str, type[ExecutionTerminated]] = {
    cls.state: cls for cls in (ExecutionCancelled, ExecutionTimeout, ExecutionAbandoned)
}


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


TEXT_LIMIT = 65_536
"""Characters of an error's message and of its traceback that travel (the rest is cut)."""


def _capped(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 20] + "\n... (truncated)"


def _capped_traceback(text: str) -> str:
    """A long traceback keeps its start (where the error began, in the deepest step) and its end
    (the frames and the error that were raised last)."""
    if len(text) <= TEXT_LIMIT:
        return text
    half = (TEXT_LIMIT - 40) // 2
    return f"{text[:half]}\n... ({len(text) - 2 * half} characters left out) ...\n{text[-half:]}"


def error_to_data(error: BaseException) -> dict[str, str]:
    """The wire form of an exception raised by user code: type, message and traceback. The
    traceback leaves out the framework's frames (:mod:`coflux.tracebacks`); a failure of a step
    it waited for (a rebuilt :class:`ExecutionError`) keeps that step's type and message, and
    its traceback comes first, as the cause."""
    if isinstance(error, ExecutionError):
        type_name, message = error.remote_type, error.remote_message
    else:
        type_name, message = qualified_name(type(error)), str(error)
    return {
        "type": type_name,
        "message": _capped(message),
        "traceback": _capped_traceback(format_exception(error)),
    }


def _import_type(name: str) -> type[BaseException] | None:
    module_name, _, qualname = name.rpartition(".")
    if not module_name:
        return None
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    if isinstance(obj, type) and issubclass(obj, Exception):
        return obj
    return None


_COMBINED: dict[type[BaseException], type[ExecutionError]] = {}


def _combined_type(original: type[BaseException]) -> type[ExecutionError]:
    combined = _COMBINED.get(original)
    if combined is None:
        try:
            combined = type(f"ExecutionError[{original.__name__}]", (ExecutionError, original), {})
        except TypeError:  # layout conflict, e.g. some builtin exceptions with C-level state
            combined = ExecutionError
        _COMBINED[original] = combined
    return combined


def execution_error_from_data(data: dict[str, Any], execution_id: str | None = None) -> ExecutionError:
    """Rebuild a remote failure. The result is also an instance of the original type if importable,
    so ``except ValueError`` works in a workflow whose task raised ``ValueError`` on another worker."""
    type_name = str(data.get("type") or "builtins.Exception")
    message = str(data.get("message") or "")
    original = _import_type(type_name)
    cls = _combined_type(original) if original is not None else ExecutionError
    error = cls.__new__(cls)
    error.args = (message,)
    error.remote_type = type_name
    error.remote_message = message
    error.remote_traceback = str(data.get("traceback") or "")
    error.execution_id = execution_id
    if error.remote_traceback:
        error.__cause__ = RemoteTraceback(error.remote_traceback, execution_id)
        error.__suppress_context__ = True
    return error
