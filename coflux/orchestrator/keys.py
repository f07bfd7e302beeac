"""Cache and memo keys: SHA-256 over what identifies a result, computed by the server from a step's
options and arguments (so every worker and client agrees on them).

- cache: namespace (default ``module:name``), version (the cache's own, else the target's, which by
  default is a digest of its code), and the canonical encoding of the chosen parameters;
- memo: the target, its version, and the chosen parameters; looked up within one run.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from coflux.descriptors import references
from coflux.models import JSON, StepOptions
from coflux.serialization import canonical

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _digest(parts: list[Any]) -> str:
    return hashlib.sha256(_ENCODE(parts).encode("utf-8")).hexdigest()


def _chosen(arguments: list[JSON], parameters: list[str] | None, names: Any) -> list[str]:
    """The canonical text of the arguments named in ``names`` (all when ``names`` is not a list or
    the parameters are unknown), with their names so that reordering a selection changes nothing."""
    if not isinstance(names, list) or parameters is None:
        return [canonical(a).decode("utf-8") for a in arguments]
    picked = sorted({n for n in names if n in parameters})
    return [
        f"{n}={canonical(arguments[parameters.index(n)]).decode('utf-8')}"
        for n in picked
        if parameters.index(n) < len(arguments)
    ]


def cache_key(
    module: str, target: str, options: StepOptions, arguments: list[JSON], parameters: list[str] | None
) -> str | None:
    cache = options.cache
    if not isinstance(cache, dict):
        return None
    namespace = cache.get("namespace") or f"{module}:{target}"
    version = cache.get("version") or options.version or ""
    return _digest(["cache", namespace, version, _chosen(arguments, parameters, cache.get("params"))])


def cache_max_age(options: StepOptions) -> float | None:
    cache = options.cache
    age = cache.get("max_age") if isinstance(cache, dict) else None
    return float(age) if isinstance(age, int | float) and not isinstance(age, bool) else None


def memo_key(
    module: str,
    target: str,
    options: StepOptions,
    arguments: list[JSON],
    parameters: list[str] | None,
    run_default: JSON = None,
) -> str | None:
    """The memo key, if the step is memoised (its own ``memo``, else its run's default)."""
    memo = options.memo if options.memo is not None else run_default
    if not memo:
        return None
    return _digest(
        ["memo", f"{module}:{target}", options.version or "", _chosen(arguments, parameters, memo)]
    )


def waited_references(options: StepOptions, arguments: list[JSON], parameters: list[str] | None) -> list[str]:
    """Execution ids referenced by the arguments that ``wait`` names (all of them for ``True``):
    the step is not dispatched before they are final."""
    wait = options.wait
    if not wait:
        return []
    if isinstance(wait, list) and parameters is not None:
        chosen = [
            arguments[parameters.index(n)]
            for n in wait
            if n in parameters and parameters.index(n) < len(arguments)
        ]
    else:
        chosen = arguments
    found: dict[str, None] = {}
    for argument in chosen:
        found.update(dict.fromkeys(references(argument)))
    return list(found)


def defer_key(
    module: str, target: str, options: StepOptions, arguments: list[JSON], parameters: list[str] | None
) -> str | None:
    """Identical deferrable calls share this key (the target and the chosen parameters)."""
    if not options.defer:
        return None
    return _digest(["defer", f"{module}:{target}", _chosen(arguments, parameters, options.defer)])
