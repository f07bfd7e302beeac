"""``coflux run NOTEBOOK``: execute a notebook headlessly (the work is in ``coflux.headless``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from coflux.cli.common import json_option, lazy, print_json
from coflux.errors import CofluxError
from coflux.settings import DEFAULT_PROJECT, DEFAULT_WORKSPACE


@click.command("run")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="A notebook parameter.")
@click.option("--project", help=f"Project (COFLUX_PROJECT; default: {DEFAULT_PROJECT}).")
@click.option("--workspace", help=f"Workspace (COFLUX_WORKSPACE; default: {DEFAULT_WORKSPACE}).")
@click.option(
    "--url",
    help="Server URL, ending in /coflux (default: start an embedded server; COFLUX_URL is not read).",
)
@click.option("--token", help="Access token for --url (COFLUX_TOKEN): a worker token or the server's own.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Save the executed notebook."
)
@click.option(
    "--timeout",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds allowed for each cell, then for the runs to finish.",
)
@json_option
def run_command(
    notebook: Path,
    params: tuple[str, ...],
    output: Path | None,
    timeout: float,
    as_json: bool,
    **options: str | None,
) -> None:
    """Execute NOTEBOOK headlessly and report the runs it started.

    Parameters go into a cell injected after the cell tagged `parameters`, as papermill does
    (values: ints, floats, True/False/None, else strings); a KEY that cell doesn't assign is a
    usage error. With --url, the server and the token are checked before the kernel starts.
    Exit status 1 if a cell or a run failed."""
    parse_parameters = lazy("coflux.headless", "parse_parameters")
    try:
        parameters = parse_parameters(params)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--param") from err
    try:
        document = lazy("coflux.headless", "read_notebook")(notebook)
    except CofluxError as err:
        raise click.BadParameter(str(err), param_hint="NOTEBOOK") from err
    try:
        lazy("coflux.headless", "check_parameters")(document, parameters)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--param") from err
    result = lazy("coflux.headless", "run_notebook")(
        notebook, parameters, output=output, timeout=timeout, **options
    )
    if as_json:
        print_json(result.to_json())
    else:
        click.echo(lazy("coflux.headless", "format_summary")(result))
    sys.exit(result.exit_code)
