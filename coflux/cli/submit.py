"""``coflux submit``: start a run of a workflow and follow it."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from coflux.cli.common import connection_options, json_option, make_client, print_json
from coflux.client import Client
from coflux.models import JSON
from coflux.render import text_tree

_POLL_INTERVAL = 0.075
_stderr = Console(stderr=True)


def _parse_arguments(values: tuple[str, ...]) -> list[JSON]:
    arguments = []
    for index, value in enumerate(values, start=1):
        try:
            arguments.append(json.loads(value))
        except ValueError as err:
            raise click.BadParameter(
                f"argument {index} is not JSON ({err}): {value!r}; quote strings, e.g. '\"text\"'",
                param_hint="JSON_ARG",
            ) from err
    return arguments


@click.command()
@click.argument("target", metavar="MODULE:WORKFLOW")
@click.argument("arguments", nargs=-1, metavar="[JSON_ARG]...")
@click.option("--no-wait", is_flag=True, help="Print the run id and return at once.")
@json_option
@connection_options
def submit(
    target: str, arguments: tuple[str, ...], no_wait: bool, as_json: bool, **options: str | None
) -> None:
    """Start a run of a workflow and follow it until it finishes."""
    if ":" not in target.strip(":"):
        raise click.BadParameter(f"expected MODULE:WORKFLOW, got {target!r}", param_hint="TARGET")
    values = _parse_arguments(arguments)
    client = make_client(options)
    run = client.start_run(target, *values)
    if no_wait:
        if as_json:
            print_json({"run_id": run.id, "status": "running"})
        else:
            click.echo(run.id)
        return
    data = follow(client, run.id, run.workspace, live=not as_json)
    sys.exit(report(data, as_json))


def follow(client: Client, run_id: str, workspace: str | None, *, live: bool) -> dict[str, Any]:
    """Poll the run until it is no longer running, showing its tree on stderr when ``live``."""
    data = client.run_data(run_id, workspace)
    if not live:
        while data["status"] == "running":
            time.sleep(_POLL_INTERVAL)
            data = client.run_data(run_id, workspace)
        return data
    with Live(Text(text_tree(data)), console=_stderr, refresh_per_second=12) as view:
        while data["status"] == "running":
            time.sleep(_POLL_INTERVAL)
            data = client.run_data(run_id, workspace)
            view.update(Text(text_tree(data)))
    return data


def report(data: dict[str, Any], as_json: bool) -> int:
    """Print a finished run's outcome; the exit status for it."""
    status = data["status"]
    error = data.get("error")
    if as_json:
        print_json(
            {
                "run_id": data["run_id"],
                "status": status,
                "result": data.get("result"),
                "error": error,
            }
        )
    elif status == "succeeded":
        print_json(data.get("result"))
    elif status == "cancelled":
        click.echo(f"run {data['run_id']} was cancelled", err=True)
    else:
        error = error or {}
        click.echo(f"{error.get('type', 'error')}: {error.get('message', '')}", err=True)
    return 0 if status == "succeeded" else 1
