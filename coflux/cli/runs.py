"""``coflux runs``: inspect and steer runs."""

from __future__ import annotations

import click

from coflux.cli.common import connection_options, json_option, make_client, print_json
from coflux.render import text_tree


@click.group()
def runs() -> None:
    """Inspect and steer runs."""


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@json_option
@connection_options
def runs_show(run_id: str, as_json: bool, **options: str | None) -> None:
    """Show a run's tree of steps, as seen from --workspace (default: the run's own)."""
    client = make_client(options)
    data = client.run_data(run_id, options["workspace"])
    if as_json:
        print_json(data)
    else:
        click.echo(text_tree(data))


@runs.command("rerun")
@click.argument("step_id", metavar="STEP")
@json_option
@connection_options
def runs_rerun(step_id: str, as_json: bool, **options: str | None) -> None:
    """Re-run a step in --workspace; prints the new execution id."""
    execution_id = make_client(options).rerun(step_id, options["workspace"])
    if as_json:
        print_json({"execution_id": execution_id})
    else:
        click.echo(execution_id)


@runs.command("cancel")
@click.argument("target", metavar="RUN|EXECUTION")
@connection_options
def runs_cancel(target: str, **options: str | None) -> None:
    """Cancel a run (everything of it still queued or running, also after it ended), or one
    execution and what it started."""
    client = make_client(options)
    if ":" in target:
        client.cancel(target)
        click.echo(f"cancelled {target}")
        return
    count = client.cancel_run(target)
    click.echo(f"cancelled {count} execution{'s' if count != 1 else ''} of run {target}")


@runs.command("logs")
@click.argument("execution_id", metavar="EXECUTION")
@json_option
@connection_options
def runs_logs(execution_id: str, as_json: bool, **options: str | None) -> None:
    """Print an execution's log entries."""
    entries = make_client(options).logs(execution_id)
    if as_json:
        print_json(entries)
        return
    for entry in entries:
        click.echo(f"{entry.get('timestamp')} {entry.get('level')} {entry.get('message')}")
