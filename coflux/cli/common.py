"""What the commands share: the connection and ``--json`` options, the client, JSON output."""

from __future__ import annotations

import importlib
import json
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import click

from coflux.client import Client
from coflux.errors import ConfigurationError
from coflux.models import JSON
from coflux.settings import DEFAULT_PROJECT, DEFAULT_URL, DEFAULT_WORKSPACE

F = TypeVar("F", bound=Callable[..., Any])


def server_options(function: F) -> F:
    """``--url`` and ``--token``: for commands about the server (projects)."""
    function = click.option(
        "--token", help="Access token (COFLUX_TOKEN; `coflux server` prints one, or see `coflux tokens`)."
    )(function)
    return click.option("--url", help=f"Server URL, ending in /coflux (COFLUX_URL; default: {DEFAULT_URL}).")(
        function
    )


def project_options(function: F) -> F:
    """``--url``, ``--token`` and ``--project``: for commands about one project."""
    function = click.option("--project", help=f"Project (COFLUX_PROJECT; default: {DEFAULT_PROJECT}).")(
        function
    )
    return server_options(function)


def workspace_option(
    text: str = f"Workspace (COFLUX_WORKSPACE; default: {DEFAULT_WORKSPACE}).",
) -> Callable[[F], F]:
    """``--workspace``, described by ``text`` where the command gives it a meaning of its own."""
    return click.option("--workspace", help=text)


def connection_options(function: F) -> F:
    """``--url --token --project --workspace``: for commands that work in a workspace."""
    return project_options(workspace_option()(function))


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def make_client(options: dict[str, Any]) -> Client:
    """A client with the command's options, the rest from the settings. A server URL that isn't
    http(s), or any other setting that can't be right, is a usage error naming where it came from."""
    try:
        client = Client(
            url=options.get("url"),
            token=options.get("token"),
            project=options.get("project"),
            workspace=options.get("workspace"),
        )
    except ConfigurationError as err:
        raise click.UsageError(str(err)) from err
    parts = urllib.parse.urlsplit(client.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(
            f"{client.url!r} is not an http:// or https:// URL (from --url, COFLUX_URL or coflux.toml), "
            f"e.g. {DEFAULT_URL}",
            param_hint="--url",
        )
    return client


def print_json(data: JSON) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def lazy(module: str, name: str) -> Callable[..., Any]:
    """A function from a module imported only when the command runs (keeps ``coflux --help`` fast
    and the command line usable when optional parts are missing)."""
    try:
        function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise click.ClickException(f"{module}.{name} is not available: {err}") from err
    return function
