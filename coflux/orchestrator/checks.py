"""What a worker sends is checked here, before it can reach a batch: one worker's bad value must
never fail the group commit that other workers' results share (docs/architecture.md, "Orchestrator
service")."""

from __future__ import annotations

import math
import re
from typing import Any

from coflux import descriptors
from coflux.errors import BadRequest, ProtocolError
from coflux.models import JSON, SessionId, StepOptions, TargetDefinition, split_execution_id
from coflux.storage import dumps

NAME_MAX = 512
CALL_INDEX_MAX = 2**31
CONCURRENCY_MAX = 10_000
LOG_MESSAGE_MAX = 1024 * 1024
OPTIONS_SEEN_MAX = 1024
SECONDS_MAX = 10 * 365 * 24 * 3600
"""The longest timeout, delay, retry backoff or cache max age: ten years, in seconds."""
RETRIES_MAX = 2**31 - 1
"""The highest retry limit (what the SDK sends for unlimited retries)."""
NAMES_MAX = 256
"""Names in one list (``memo``, ``wait``, ``defer``, cache ``params``, ``Retries.when``, a tag's
values), and tags in ``requires``."""
TARGETS_MAX = 1000
"""Targets one session may declare (its ``hello`` and ``declare`` messages together)."""
PARAMETERS_MAX = 256
DECLARATION_MAX = 16 * 1024
"""The size of one target's declaration, in characters of JSON."""
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PARAMETER_KINDS = frozenset(
    {"positional_only", "positional_or_keyword", "var_positional", "keyword_only", "var_keyword"}
)
_OPTIONS = frozenset(
    {"retries", "timeout", "delay", "requires", "cache", "memo", "defer", "wait", "version", "group"}
)
_CACHE_OPTIONS = frozenset({"max_age", "params", "namespace", "version"})
_BAD_VALUE = (KeyError, ValueError, TypeError, AttributeError, OverflowError)


def malformed(message: str) -> ProtocolError:
    return ProtocolError("malformed", message)


def name(value: Any, what: str) -> str:
    """A module or target name: text of 1 to 512 characters, no NUL (PostgreSQL refuses it)."""
    if not isinstance(value, str) or not 0 < len(value) <= NAME_MAX or "\x00" in value:
        raise malformed(f"{what} must be 1 to {NAME_MAX} characters without NUL")
    return value


def execution_id(value: Any, what: str = "execution_id") -> str:
    try:
        split_execution_id(value if isinstance(value, str) else "")
    except ValueError as err:
        raise BadRequest(f"{what}: {err}") from err
    return str(value)


def session_id(value: Any) -> SessionId | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SESSION_ID.fullmatch(value):
        raise malformed("session_id must be 1 to 64 letters, digits, '_' or '-'")
    return SessionId(value)


def call_index(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < CALL_INDEX_MAX:
        raise malformed(f"call_index must be an integer from 0 to {CALL_INDEX_MAX - 1}")
    return value


def concurrency(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= CONCURRENCY_MAX:
        raise malformed(f"concurrency must be an integer from 1 to {CONCURRENCY_MAX}")
    return value


def provides(raw: Any) -> dict[str, list[str]]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise malformed("provides must be an object of tag -> values")
    return {name(k, "a tag"): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in raw.items()}


def declarations(raw: list[Any]) -> list[TargetDefinition]:
    """The targets of a ``hello`` or ``declare``: at most ``TARGETS_MAX``, each of at most
    ``DECLARATION_MAX`` characters and ``PARAMETERS_MAX`` parameters, with options in range."""
    if len(raw) > TARGETS_MAX:
        raise too_many_targets(len(raw))
    targets = [_declaration(t) for t in raw]
    for target in targets:
        name(target.module, "a target's module")
        name(target.name, "a target's name")
    return targets


def too_many_targets(count: int) -> ProtocolError:
    return ProtocolError("too_large", f"{count} targets: a worker session may declare at most {TARGETS_MAX}")


def _declaration(raw: Any) -> TargetDefinition:
    try:
        if not isinstance(raw, dict):
            raise TypeError("it must be an object")
        if len(dumps(raw)) > DECLARATION_MAX:
            raise ValueError(f"it takes more than {DECLARATION_MAX} characters")
        parameters = raw.get("parameters", [])
        if not isinstance(parameters, list) or len(parameters) > PARAMETERS_MAX:
            raise ValueError(f"parameters must be a list of at most {PARAMETERS_MAX}")
        for parameter in parameters:
            _parameter(parameter)
        _text(raw.get("version"), "version")
        check_options(raw.get("options"))
        return TargetDefinition.from_json(raw)
    except _BAD_VALUE as err:
        raise malformed(f"bad target declaration: {err}") from err


def _parameter(raw: Any) -> None:
    if not isinstance(raw, dict):
        raise TypeError("a parameter must be an object")
    if not isinstance(raw.get("name"), str) or not 0 < len(raw["name"]) <= NAME_MAX:
        raise ValueError(f"a parameter's name must be 1 to {NAME_MAX} characters")
    if raw.get("kind", "positional_or_keyword") not in _PARAMETER_KINDS:
        raise ValueError(f"a parameter's kind must be one of {', '.join(sorted(_PARAMETER_KINDS))}")
    if not isinstance(raw.get("has_default", False), bool):
        raise TypeError("a parameter's has_default must be true or false")
    annotation = raw.get("annotation")
    if annotation is not None and (not isinstance(annotation, str) or len(annotation) > NAME_MAX):
        raise ValueError(f"a parameter's annotation must be text of at most {NAME_MAX} characters")
    if "default" in raw:
        _plain(raw["default"], "a parameter's default")


def _plain(value: Any, what: str) -> None:
    """``value`` is plain JSON: null, true/false, finite numbers, text, lists and objects of those
    (walked without recursion: how deep it nests is bounded by the declaration's size only)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{what} must be finite, not {item!r}")
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise TypeError(f"{what} has a key that is not text")
            pending.extend(item.values())
        elif not (item is None or isinstance(item, bool | int | float | str)):
            raise TypeError(f"{what} must be plain JSON, not {type(item).__name__}")


def options(raw: Any) -> StepOptions:
    try:
        check_options(raw)
        return StepOptions.from_json(raw)
    except _BAD_VALUE as err:
        raise BadRequest(f"bad options: {err}") from err


def check_options(raw: Any) -> None:
    """Every option of a step or target, in range (else ``ValueError`` or ``TypeError``): durations
    are finite seconds from 0 to ``SECONDS_MAX`` (a timeout more than 0), a retry limit is an
    integer from 0 to ``RETRIES_MAX`` with backoff min <= max, names are lists of text. Stored
    options are read without these checks (:meth:`StepOptions.from_json`): they passed them."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise TypeError("options must be an object")
    unknown = sorted(set(raw) - _OPTIONS)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))}")
    _retries(raw.get("retries"))
    if raw.get("timeout") is not None and _seconds(raw["timeout"], "timeout") == 0:
        raise ValueError("timeout must be more than 0 seconds")
    if raw.get("delay") is not None:
        _seconds(raw["delay"], "delay")
    _requires(raw.get("requires"))
    _cache(raw.get("cache"))
    for option in ("memo", "wait", "defer"):
        _names(raw.get(option), option, flag=True)
    _text(raw.get("version"), "version")
    if raw.get("group") is not None and not isinstance(raw["group"], str):
        raise TypeError("group must be text")


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {value!r}")
    if not 0 <= value <= SECONDS_MAX:  # NaN fails this too
        raise ValueError(f"{what} must be from 0 to {SECONDS_MAX} seconds, not {value!r}")
    return float(value)


def _retries(raw: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise TypeError("retries must be an object")
    limit = raw.get("limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= RETRIES_MAX:
        raise ValueError(f"retries.limit must be an integer from 0 to {RETRIES_MAX}, not {limit!r}")
    low = _seconds(raw.get("backoff_min", 0), "retries.backoff_min")
    if low > _seconds(raw.get("backoff_max", 0), "retries.backoff_max"):
        raise ValueError("retries.backoff_min must not exceed retries.backoff_max")
    _names(raw.get("when"), "retries.when")


def _cache(raw: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise TypeError("cache must be an object or null")
    unknown = sorted(set(raw) - _CACHE_OPTIONS)
    if unknown:
        raise ValueError(f"unknown cache option(s) {', '.join(map(repr, unknown))}")
    if raw.get("max_age") is not None:
        _seconds(raw["max_age"], "cache.max_age")
    _names(raw.get("params"), "cache.params")
    _text(raw.get("namespace"), "cache.namespace")
    _text(raw.get("version"), "cache.version")


def _requires(raw: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict) or len(raw) > NAMES_MAX:
        raise TypeError(f"requires must be an object of at most {NAMES_MAX} tags")
    for key, values in raw.items():
        _text(key, "a tag")
        if not isinstance(values, list):
            raise TypeError(f"requires: tag {key!r} must map to a list")
        _names(values, f"requires.{key}")


def _names(value: Any, what: str, flag: bool = False) -> None:
    """Null, or a list of at most ``NAMES_MAX`` texts (or, with ``flag``, true or false)."""
    if value is None or (flag and isinstance(value, bool)):
        return
    if not isinstance(value, list) or len(value) > NAMES_MAX:
        allowed = "true, false or a list" if flag else "a list"
        raise TypeError(f"{what} must be {allowed} of at most {NAMES_MAX} names")
    for item in value:
        _text(item, what)


def _text(value: Any, what: str) -> None:
    """Null, or text of at most ``NAME_MAX`` characters."""
    if value is not None and (not isinstance(value, str) or len(value) > NAME_MAX):
        raise TypeError(f"{what} must be text of at most {NAME_MAX} characters")


_options_seen: dict[str, tuple[StepOptions, str]] = {}


def options_and_text(raw: Any) -> tuple[StepOptions, str]:
    """:func:`options`, and their JSON text as a step stores it. A worker sends the same options
    with every call of a target: each distinct text is parsed once (``StepOptions`` is frozen)."""
    key = dumps(raw)
    seen = _options_seen.get(key)
    if seen is None:
        parsed = options(raw)
        seen = (parsed, dumps(parsed.to_json()))
        if len(_options_seen) >= OPTIONS_SEEN_MAX:
            _options_seen.clear()
        _options_seen[key] = seen
    return seen


def value(data: JSON, what: str) -> JSON:
    """Tagged JSON that the read side can describe (raises ``BadRequest`` otherwise)."""
    try:
        descriptors.describe(data)
    except RecursionError as err:
        raise BadRequest(f"{what} is nested too deeply") from err
    return data


def outcome(raw: dict[str, Any]) -> dict[str, Any]:
    if "value" in raw:
        value(raw["value"], "the result")
    error = raw.get("error")
    if error is not None and not isinstance(error, dict):
        raise malformed("an outcome's error must be an object")
    if error is not None and not all(
        isinstance(error.get(k, ""), str) for k in ("type", "message", "traceback")
    ):
        raise malformed("an error's type, message and traceback must be text")
    return raw


def log_entry(entry: Any) -> tuple[float | None, str, str]:
    if not isinstance(entry, dict):
        raise malformed("log entries must be objects")
    timestamp = entry.get("timestamp")
    if timestamp is not None and (
        not isinstance(timestamp, int | float) or isinstance(timestamp, bool) or not math.isfinite(timestamp)
    ):
        raise malformed("a log entry's timestamp must be a finite number of seconds")
    level, message = entry.get("level") or "info", entry.get("message") or ""
    if not isinstance(level, str) or not isinstance(message, str):
        raise malformed("a log entry's level and message must be text")
    return (float(timestamp) if timestamp is not None else None), level[:16], message[:LOG_MESSAGE_MAX]
