"""``coflux submit``: start a run of a workflow and follow it."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from coflux import render
from coflux.cli.common import connection_options, json_option, make_client, print_json
from coflux.cli.follow import follow
from coflux.models import JSON


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
    """Start a run of a workflow and follow it until it finishes.

    The run's tree goes to stderr (redrawn live on a terminal, else printed once it finished), and
    so does a failed run's error. Its result goes to stdout: as bare JSON for scripts
    (`total=$(coflux submit flows:total 5)`), as Python shows it on a terminal. Exit status 1 if
    the run failed or was cancelled."""
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
    data = follow(client, run.id, run.workspace, show=not as_json)
    sys.exit(report(data, as_json))


def report(data: dict[str, Any], as_json: bool) -> int:
    """Print a finished run's outcome (its result on stdout, an error on stderr); the exit status."""
    status = data["status"]
    if as_json:
        print_json(
            {
                "run_id": data["run_id"],
                "status": status,
                "result": data.get("result"),
                "error": data.get("error"),
            }
        )
    elif status == "succeeded":
        if sys.stdout.isatty() and data.get("result_preview") is not None:
            click.echo(data["result_preview"])  # a person reads it: the value as Python shows it
        else:
            print_json(data.get("result"))
    else:
        hint = f"coflux runs show {data['run_id']} --verbose shows its traceback"
        for line in render.outcome_lines(data, hint=hint):
            click.echo(line, err=True)
    return 0 if status == "succeeded" else 1
