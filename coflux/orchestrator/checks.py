"""What a worker sends is checked here, before it can reach a batch: one worker's bad value must
never fail the group commit that other workers' results share (DESIGN.md section 8)."""

from __future__ import annotations

import math
import re
from typing import Any

from coflux import serialization
from coflux.errors import BadRequest, ProtocolError
from coflux.models import JSON, SessionId, StepOptions, TargetDefinition, split_execution_id
from coflux.storage import dumps

NAME_MAX = 512
CALL_INDEX_MAX = 2**31
CONCURRENCY_MAX = 10_000
LOG_MESSAGE_MAX = 1024 * 1024
OPTIONS_SEEN_MAX = 1024
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
    if not isinstance(value, str) or not _SESSION_ID.match(value):
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
    try:
        targets = [TargetDefinition.from_json(t) for t in raw]
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as err:
        raise malformed(f"bad target declaration: {err}") from err
    for target in targets:
        name(target.module, "a target's module")
        name(target.name, "a target's name")
    return targets


def options(raw: Any) -> StepOptions:
    try:
        return StepOptions.from_json(raw)
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as err:
        raise BadRequest(f"bad options: {err}") from err


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
        serialization.describe(data)
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
