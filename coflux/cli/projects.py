"""``coflux projects`` and ``coflux tokens``."""

from __future__ import annotations

import click

from coflux.cli.common import json_option, make_client, print_json, project_options, server_options


@click.group()
def projects() -> None:
    """List and create projects."""


@projects.command("list")
@json_option
@server_options
def projects_list(as_json: bool, **options: str | None) -> None:
    """List the server's projects (needs the server's own token)."""
    items = make_client(options).projects()
    if as_json:
        print_json(items)
        return
    for item in items:
        click.echo(item["name"])


@projects.command("create")
@click.argument("name")
@server_options
def projects_create(name: str, **options: str | None) -> None:
    """Create project NAME (needs the server's own token)."""
    make_client(options).create_project(name)
    click.echo(f"created project {name}")


@click.group()
def tokens() -> None:
    """Make project tokens.

    This needs the server's own (admin) token, in --token or COFLUX_TOKEN."""


@tokens.command("create")
@click.option(
    "--scope",
    type=click.Choice(["worker", "submit"]),
    required=True,
    help="worker: for workers and notebook kernels; submit: for CI and dashboards (JSON arguments only).",
)
@json_option
@project_options
def tokens_create(scope: str, as_json: bool, **options: str | None) -> None:
    """Print a new token of --project (only the token, unless --json)."""
    data = make_client(options).create_token(scope)
    if as_json:
        print_json(data)
    else:
        click.echo(data["token"])
