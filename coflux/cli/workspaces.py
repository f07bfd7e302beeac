"""``coflux workspaces``: the project's workspaces and their states."""

from __future__ import annotations

from typing import Any

import click

from coflux.cli.common import json_option, make_client, print_json, project_options


@click.group()
def workspaces() -> None:
    """Manage the project's workspaces.

    List, create, rename, rebase, pause, resume and archive them."""


@workspaces.command("list")
@json_option
@project_options
def workspaces_list(as_json: bool, **options: str | None) -> None:
    """List the project's workspaces with their bases and states."""
    items = make_client(options).workspaces()
    if as_json:
        print_json(items)
        return
    for item in items:
        click.echo(_workspace_line(item))


def _workspace_line(item: dict[str, Any]) -> str:
    base = f" (base: {item['base']})" if item.get("base") else ""
    state = f" [{item['state']}]" if item.get("state") not in (None, "active") else ""
    return f"{item['name']}{base}{state}"


def _report_workspace(verb: str, item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(item)
    else:
        click.echo(f"{verb} workspace {_workspace_line(item)}")


@workspaces.command("create")
@click.argument("name")
@click.option("--base", default=None, help="The workspace it inherits from.")
@json_option
@project_options
def workspaces_create(name: str, base: str | None, as_json: bool, **options: str | None) -> None:
    """Create workspace NAME, inheriting from --base if given."""
    _report_workspace("created", make_client(options).create_workspace(name, base), as_json)


@workspaces.command("rename")
@click.argument("name")
@click.argument("new_name", metavar="NEW")
@json_option
@project_options
def workspaces_rename(name: str, new_name: str, as_json: bool, **options: str | None) -> None:
    """Rename workspace NAME to NEW; its runs follow it."""
    _report_workspace("renamed", make_client(options).rename_workspace(name, new_name), as_json)


@workspaces.command("rebase")
@click.argument("name")
@click.option("--base", default=None, help="The new base (omit for none).")
@json_option
@project_options
def workspaces_rebase(name: str, base: str | None, as_json: bool, **options: str | None) -> None:
    """Make --base the base of workspace NAME (without --base: no base)."""
    _report_workspace("rebased", make_client(options).rebase_workspace(name, base), as_json)


@workspaces.command("pause")
@click.argument("name")
@json_option
@project_options
def workspaces_pause(name: str, as_json: bool, **options: str | None) -> None:
    """Stop dispatching workspace NAME's queued work.

    What runs goes on; new runs are accepted and wait."""
    _report_workspace("paused", make_client(options).pause_workspace(name), as_json)


@workspaces.command("resume")
@click.argument("name")
@json_option
@project_options
def workspaces_resume(name: str, as_json: bool, **options: str | None) -> None:
    """Dispatch workspace NAME's work again, starting with what waited."""
    _report_workspace("resumed", make_client(options).resume_workspace(name), as_json)


@workspaces.command("archive")
@click.argument("name")
@json_option
@project_options
def workspaces_archive(name: str, as_json: bool, **options: str | None) -> None:
    """Archive workspace NAME for good.

    It takes no new runs; its runs stay readable."""
    _report_workspace("archived", make_client(options).archive_workspace(name), as_json)
