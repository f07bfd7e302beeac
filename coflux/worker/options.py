"""Decorator options: the user's forms (``Retries``, ``Cache``, ``True``, seconds, names) and their
wire form, :class:`coflux.models.StepOptions`.

Every option is normalized in one place so the decorators, ``with_options`` and the notebook magics
accept exactly the same forms (Coflux's own SDK forms included).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeAlias

from coflux.errors import qualified_name
from coflux.models import JSON, RetryPolicy, StepOptions

UNLIMITED_RETRIES: Final = 2**31 - 1
"""``retries=True`` / ``Retries(limit=None)``: retry until it succeeds (effectively unlimited)."""

_DEFAULT_UNLIMITED_BACKOFF: Final = (1.0, 60.0)

ErrorPredicate: TypeAlias = Callable[[BaseException], bool]
RetryWhen: TypeAlias = "type[BaseException] | tuple[type[BaseException], ...] | ErrorPredicate | None"
Seconds: TypeAlias = "float | int | datetime.timedelta"


def seconds(value: Seconds | None, option: str) -> float | None:
    """Seconds as a float; ``timedelta`` accepted; negative values, NaN and infinity refused (no
    JSON frame could carry them)."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{option} must be a number of seconds, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{option} must be a finite number of seconds")
    if value < 0:
        raise ValueError(f"{option} must not be negative")
    return float(value)


@dataclass(frozen=True)
class Retries:
    """Retry a failed step up to ``limit`` times (``None``, as in Coflux: until it succeeds, waiting
    1 to 60 s unless ``backoff`` says otherwise), waiting ``backoff[0]`` to ``backoff[1]`` seconds
    on a ramp. ``when`` narrows which failures qualify: an
    exception type, a tuple of them, or a predicate called with the exception on the worker.
    Timed-out and abandoned executions are retried regardless of ``when``; cancelled ones never."""

    limit: int | None = None
    backoff: tuple[float, float] = (0.0, 0.0)
    when: RetryWhen = None

    def __post_init__(self) -> None:
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 0):
            raise ValueError("Retries.limit must be a non-negative int or None")
        low, high = (seconds(b, "Retries.backoff") or 0.0 for b in self.backoff)
        if high < low:
            raise ValueError("Retries.backoff must be (min, max) with min <= max")
        object.__setattr__(self, "backoff", (low, high))
        if self.when is not None and not callable(self.when) and not _is_type_tuple(self.when):
            raise TypeError("Retries.when must be an exception type, a tuple of them or a predicate")

    def policy(self) -> RetryPolicy:
        limit = UNLIMITED_RETRIES if self.limit is None else self.limit
        low, high = self.backoff
        if self.limit is None and self.backoff == (0.0, 0.0):
            low, high = _DEFAULT_UNLIMITED_BACKOFF
        return RetryPolicy(limit=limit, backoff_min=low, backoff_max=high, when=self._type_names())

    def _type_names(self) -> tuple[str, ...]:
        if isinstance(self.when, type):
            return (qualified_name(self.when),)
        if isinstance(self.when, tuple):
            return tuple(qualified_name(t) for t in self.when)
        return ()

    def qualifies(self, error: BaseException) -> bool:
        """Whether ``error`` is one that ``when`` retries (everything when ``when`` is unset)."""
        if self.when is None:
            return True
        if isinstance(self.when, type | tuple):
            return isinstance(error, self.when)
        return bool(self.when(error))


def _is_type_tuple(value: object) -> bool:
    if isinstance(value, type):
        return issubclass(value, BaseException)
    return isinstance(value, tuple) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    )


@dataclass(frozen=True)
class Cache:
    """Cache results across runs. The key covers ``namespace`` (default ``module:name``),
    ``version`` (default the target's version) and the ``params`` named (default all of them);
    a hit must be younger than ``max_age`` seconds (default: any age)."""

    max_age: Seconds | None = None
    params: list[str] | str | None = None
    namespace: str | None = None
    version: str | None = None

    def to_json(self) -> JSON:
        params = [self.params] if isinstance(self.params, str) else self.params
        return {
            "max_age": seconds(self.max_age, "Cache.max_age"),
            "params": list(params) if params is not None else None,
            "namespace": self.namespace,
            "version": self.version,
        }


def retries_option(value: int | bool | Retries | None) -> tuple[RetryPolicy, Retries | None]:
    """The wire policy and, when given, the ``Retries`` whose ``when`` the worker evaluates."""
    if value is None or value is False:
        return RetryPolicy(), None
    if value is True:
        value = Retries(limit=None)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("retries must not be negative")
        return RetryPolicy(limit=value), None
    if isinstance(value, Retries):
        return value.policy(), value
    raise TypeError(f"retries must be an int, True or cf.Retries, not {value!r}")


def cache_option(value: bool | Seconds | Cache | None) -> JSON:
    if value is None or value is False:
        return None
    if value is True:
        return Cache().to_json()
    if isinstance(value, Cache):
        return value.to_json()
    return Cache(max_age=seconds(value, "cache")).to_json()


def names_option(value: bool | str | Iterable[str] | None, option: str) -> JSON:
    """``memo``, ``wait`` and ``defer``: off, ``True`` (all parameters) or parameter names."""
    if value is None or value is False:
        return None
    if value is True:
        return True
    if isinstance(value, str):
        return [value]
    names = list(value)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{option} must be True or parameter names")
    return names


def requires_option(value: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Tags a worker must provide: ``{"gpu": True, "region": ["eu", "us"]}`` -> lists of strings."""
    result: dict[str, list[str]] = {}
    for key, wanted in (value or {}).items():
        items = wanted if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
        result[str(key)] = sorted(tag(v) for v in items)
    return result


def tag(value: object) -> str:
    """A tag's text, the same for ``requires`` and ``provides`` (``True`` is ``"true"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class TargetOptions:
    """A target's normalized options: the wire form plus what only the worker can evaluate."""

    step: StepOptions = field(default_factory=StepOptions)
    retries: Retries | None = None

    def updated(self, **changes: Any) -> TargetOptions:
        """A copy with the given user-facing options (the decorator's keywords) replaced."""
        step, retries = self.step, self.retries
        if "retries" in changes:
            policy, retries = retries_option(changes.pop("retries"))
            step = replace(step, retries=policy)
        converters: dict[str, Callable[[Any], Any]] = {
            "cache": cache_option,
            "memo": lambda v: names_option(v, "memo"),
            "wait": lambda v: names_option(v, "wait"),
            "defer": lambda v: names_option(v, "defer"),
            "requires": requires_option,
            "timeout": lambda v: seconds(v, "timeout"),
            "delay": lambda v: seconds(v, "delay") or 0.0,
            "version": lambda v: None if v is None else str(v),
        }
        for key, value in changes.items():
            if key not in converters:
                raise TypeError(f"unknown target option {key!r}")
            step = replace(step, **{key: converters[key](value)})
        return TargetOptions(step=step, retries=retries)

    def retryable(self, error: BaseException) -> bool | None:
        """The worker's verdict on ``error`` when ``Retries.when`` was given; else ``None``
        (the server decides from the policy alone)."""
        if self.retries is None or self.retries.when is None:
            return None
        return self.retries.qualifies(error)
