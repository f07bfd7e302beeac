"""The ``coflux`` command line (README.md, "Command line"; ``coflux --help``).

Exit status: 0 on success, 1 when a run failed or the server refused a request, 2 for a usage error.
Settings follow the same precedence as :class:`coflux.client.Client`: flags, then ``COFLUX_*``
environment variables, then ``coflux.toml``, then defaults.

One module per concern: ``server`` and ``worker`` (the long-running processes), ``submit``,
``notebook`` (``coflux run``), ``runs``, ``workspaces``, ``projects`` (projects and tokens),
``assets``, and
``common`` (the options and helpers they share).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from coflux.cli import assets, notebook, projects, runs, server, submit, worker, workspaces
from coflux.errors import CofluxError


class _Group(click.Group):
    """Turns the library's errors into ``error: ...`` on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CofluxError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="jupyter-coflux")
def main() -> None:
    """Coflux for Jupyter: durable workflows in notebooks and modules.

    Settings come from flags, then COFLUX_* environment variables (COFLUX_URL, COFLUX_TOKEN,
    COFLUX_PROJECT, COFLUX_WORKSPACE), then coflux.toml, then the defaults each option states.
    Exit status: 0 on success, 1 when a run or notebook failed or the server refused, 2 for a
    usage error."""


for _command in (
    server.server,
    worker.worker,
    submit.submit,
    notebook.run_command,
    runs.runs,
    projects.projects,
    workspaces.workspaces,
    projects.tokens,
    assets.assets,
):
    main.add_command(_command)

__all__ = ["main"]
