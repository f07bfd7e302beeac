"""Connection settings, resolved in one place for every command, the worker, a notebook's kernel and
:class:`coflux.Client`.

Each setting comes from the first of:

1. the argument (a command's flag, a keyword of ``cf.Client``/``cf.Worker``, ``%coflux connect``);
2. the environment: ``COFLUX_URL``, ``COFLUX_TOKEN``, ``COFLUX_PROJECT``, ``COFLUX_WORKSPACE``,
   ``COFLUX_CONCURRENCY``, ``COFLUX_INLINE_LIMIT``, ``COFLUX_LARGE_LIMIT``;
3. ``coflux.toml``, the nearest one in the current folder or a parent (a notebook's kernel runs in
   the notebook's folder): its ``[coflux]`` table, or else its top-level keys, named as above in
   lower case (``url = "http://..."``);
4. the defaults: :data:`DEFAULT_URL` (``coflux server``'s default address), project ``default``,
   workspace ``main``, no token, concurrency 4, and the value limits of
   :mod:`coflux.serialization` (bytes kept inline below 16 KiB, values over 1 MiB of JSON as one blob).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from coflux.errors import ConfigurationError
from coflux.models import valid_project_name, valid_workspace_name
from coflux.serialization import DEFAULT_INLINE_LIMIT, DEFAULT_LARGE_LIMIT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 7777
"""``coflux server``'s port, and so the port of :data:`DEFAULT_URL`."""
DEFAULT_URL: Final = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/coflux"
DEFAULT_PROJECT: Final = "default"
DEFAULT_WORKSPACE: Final = "main"
DEFAULT_CONCURRENCY: Final = 4
CONFIG_FILE: Final = "coflux.toml"

KEYS: Final = ("url", "token", "project", "workspace", "concurrency", "inline_limit", "large_limit")
NUMBERS: Final = ("concurrency", "inline_limit", "large_limit")
"""The settings that are whole numbers of at least 1."""
_DEFAULTS: Final[dict[str, str | int | None]] = {
    "url": DEFAULT_URL,
    "token": None,
    "project": DEFAULT_PROJECT,
    "workspace": DEFAULT_WORKSPACE,
    "concurrency": DEFAULT_CONCURRENCY,
    "inline_limit": DEFAULT_INLINE_LIMIT,
    "large_limit": DEFAULT_LARGE_LIMIT,
}
Source = Literal["argument", "environment", "coflux.toml", "default"]


@dataclass(frozen=True)
class Settings:
    """Where to connect and as whom: checked (an http(s) URL, valid names, concurrency >= 1)."""

    url: str = DEFAULT_URL
    token: str | None = None
    project: str = DEFAULT_PROJECT
    workspace: str = DEFAULT_WORKSPACE
    concurrency: int = DEFAULT_CONCURRENCY
    inline_limit: int = DEFAULT_INLINE_LIMIT
    """Bytes and pickles shorter than this travel inside the value; longer ones as a blob."""
    large_limit: int = DEFAULT_LARGE_LIMIT
    """A value whose tagged JSON is longer than this travels as one blob."""
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False)
    """Where each setting came from (for messages: "project p (from coflux.toml)")."""
    config: Path | None = field(default=None, compare=False)
    """The ``coflux.toml`` that was read, if any."""

    def source(self, key: str) -> Source:
        return self.sources.get(key, "default")


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``coflux.toml`` in ``start`` (default: the current folder) or a parent."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE
        if path.is_file():
            return path
    return None


def read_config(path: Path) -> dict[str, str | int]:
    """The settings in a ``coflux.toml``: its ``[coflux]`` table, or else its top-level keys."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigurationError(f"cannot read {path}: {err}") from err
    table = document.get("coflux", document)
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [coflux] must be a table")
    settings: dict[str, str | int] = {}
    for key in KEYS:
        if key not in table:
            continue
        value = table[key]
        if key in NUMBERS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigurationError(f"{path}: {key} must be an integer")
        elif not isinstance(value, str):
            raise ConfigurationError(f"{path}: {key} must be a string")
        settings[key] = value
    return settings


def resolve(
    url: str | None = None,
    token: str | None = None,
    project: str | None = None,
    workspace: str | None = None,
    concurrency: int | None = None,
    *,
    inline_limit: int | None = None,
    large_limit: int | None = None,
    start: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings: each argument given, else its ``COFLUX_*`` variable, else ``coflux.toml``
    (looked for from ``start``, default the current folder), else the default. Raises
    :class:`~coflux.errors.ConfigurationError` for a setting that can't be right, naming where it
    came from."""
    environ = os.environ if environ is None else environ
    given: dict[str, str | int | None] = {
        "url": url,
        "token": token,
        "project": project,
        "workspace": workspace,
        "concurrency": concurrency,
        "inline_limit": inline_limit,
        "large_limit": large_limit,
    }
    path = find_config(start)
    config = read_config(path) if path is not None else {}
    chosen: dict[str, str | int | None] = {}
    sources: dict[str, Source] = {}
    for key in KEYS:
        value, source = _first(key, given[key], environ, config)
        chosen[key], sources[key] = value, source
    return _checked(chosen, sources, path)


def _first(
    key: str, argument: str | int | None, environ: Mapping[str, str], config: Mapping[str, str | int]
) -> tuple[str | int | None, Source]:
    if argument is not None and argument != "":
        return argument, "argument"
    variable = environ.get(f"COFLUX_{key.upper()}")
    if variable:
        return variable, "environment"
    if key in config:
        return config[key], "coflux.toml"
    return _DEFAULTS[key], "default"


def _checked(chosen: dict[str, str | int | None], sources: dict[str, Source], path: Path | None) -> Settings:
    def where(key: str) -> str:
        source = sources[key]
        if source == "environment":
            return f" (from COFLUX_{key.upper()})"
        if source == "coflux.toml":
            return f" (from {path})"
        return ""

    url = str(chosen["url"]).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"the server URL must be http(s)://..., not {url!r}{where('url')}")
    project, workspace = str(chosen["project"]), str(chosen["workspace"])
    if not valid_project_name(project):
        raise ConfigurationError(f"invalid project name {project!r}{where('project')}")
    if not valid_workspace_name(workspace):
        raise ConfigurationError(f"invalid workspace name {workspace!r}{where('workspace')}")
    numbers = {key: _number(key, chosen[key], where(key)) for key in NUMBERS}
    token = chosen["token"]
    return Settings(
        url=url,
        token=str(token) if token else None,
        project=project,
        workspace=workspace,
        concurrency=numbers["concurrency"],
        inline_limit=numbers["inline_limit"],
        large_limit=numbers["large_limit"],
        sources=sources,
        config=path,
    )


def _number(key: str, value: str | int | None, where: str) -> int:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ConfigurationError(
            f"{key.replace('_', ' ')} must be a whole number of at least 1, not {value!r}{where}"
        )
    return number
