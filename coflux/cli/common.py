"""What the commands share: the connection and ``--json`` options, the client, JSON output."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from coflux.client import Client
from coflux.models import JSON

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(function: F) -> F:
    """The ``--url --token --project --workspace`` options every server command takes."""
    options = [
        click.option("--url", help="Server URL including /coflux (or COFLUX_URL)."),
        click.option("--token", help="Access token (or COFLUX_TOKEN)."),
        click.option("--project", help="Project (or COFLUX_PROJECT; default: default)."),
        click.option("--workspace", help="Workspace (or COFLUX_WORKSPACE; default: main)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def make_client(options: dict[str, Any]) -> Client:
    return Client(
        url=options.get("url"),
        token=options.get("token"),
        project=options.get("project"),
        workspace=options.get("workspace"),
    )


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
