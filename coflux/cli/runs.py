"""``coflux runs``: list, inspect and steer runs."""

from __future__ import annotations

import sys
from typing import Any

import click

from coflux import render
from coflux.cli.common import json_option, make_client, print_json, project_options, workspace_option
from coflux.cli.follow import follow
from coflux.client import Client
from coflux.errors import NotFound
from coflux.settings import DEFAULT_WORKSPACE

_VIEW = "The workspace to see the run from (default: the run's own)."


@click.group()
def runs() -> None:
    """List, show, re-run and cancel runs; read their logs."""


@runs.command("list")
@click.option("--workflow", metavar="MODULE:NAME", help="Only runs of this workflow.")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 200), help="How many runs, newest first."
)
@json_option
@workspace_option()
@project_options
def runs_list(workflow: str | None, limit: int, as_json: bool, **options: str | None) -> None:
    """List the workspace's newest runs.

    One line each, newest first: id, status, workflow, start (local time) and duration."""
    client = make_client(options)
    items = client.runs(workflow, limit=limit)
    if as_json:
        print_json(items)
    elif not items:
        of = f" of {workflow}" if workflow else ""
        click.echo(f"no runs{of} in workspace {client.workspace} of project {client.project}")
    else:
        click.echo("\n".join(render.runs_table(items)))


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@click.option("--verbose", "-v", is_flag=True, help="Show the traceback of the step where a failure began.")
@json_option
@workspace_option(_VIEW)
@project_options
def runs_show(run_id: str, verbose: bool, as_json: bool, **options: str | None) -> None:
    """Show a run's steps and its result or error.

    Each step shows its arguments (cut short), its attempts with their states and durations, and
    the steps it called, under the attempt that called them. Queued steps that can't progress say
    why. A failed run names the step where its error began."""
    data = make_client(options).run_data(run_id, options["workspace"])
    if as_json:
        print_json(data)
    else:
        click.echo(render.run_report(data, verbose=verbose, hint="--verbose shows its traceback"))


@runs.command("rerun")
@click.argument("step_id", metavar="STEP")
@click.option("--wait", is_flag=True, help="Wait for the new execution to finish and show how it went.")
@json_option
@workspace_option(f"The workspace to re-run it in (COFLUX_WORKSPACE; default: {DEFAULT_WORKSPACE}).")
@project_options
def runs_rerun(step_id: str, wait: bool, as_json: bool, **options: str | None) -> None:
    """Re-run a step; prints the new execution id.

    With --wait, the run's tree is followed on stderr until the new execution finishes; then its
    result (or error) is shown. Exit status 1 if it didn't succeed."""
    client = make_client(options)
    execution_id = client.rerun(step_id, options["workspace"])
    if not wait:
        if as_json:
            print_json({"execution_id": execution_id})
        else:
            click.echo(execution_id)
        return
    run_id = step_id.partition(":")[0]
    data = follow(client, run_id, client.workspace, done=lambda d: _final(d, execution_id), show=not as_json)
    sys.exit(_report_execution(data, execution_id, as_json))


def _execution(data: dict[str, Any], execution_id: str) -> dict[str, Any]:
    for step in data.get("steps") or []:
        for execution in step["executions"]:
            if execution["execution_id"] == execution_id:
                return dict(execution)
    return {"execution_id": execution_id, "state": "queued"}


def _final(data: dict[str, Any], execution_id: str) -> bool:
    return _execution(data, execution_id)["state"] not in render.LIVE_STATES


def _report_execution(data: dict[str, Any], execution_id: str, as_json: bool) -> int:
    execution = _execution(data, execution_id)
    state = execution["state"]
    if as_json:
        fields = ("execution_id", "state", "result", "error")
        print_json({key: execution.get(key) for key in fields})
    elif state in ("succeeded", "cached"):
        shown = execution.get("result_preview") or render.describe_value(execution.get("result"))
        click.echo(f"{execution_id} {state}: {shown}")
    else:
        error = execution.get("error") or {}
        reason = f": {error.get('type')}: {error.get('message')}" if error else ""
        click.echo(f"{execution_id} {state.replace('_', ' ')}{reason}", err=True)
    return 0 if state in ("succeeded", "cached") else 1


@runs.command("cancel")
@click.argument("target", metavar="RUN|EXECUTION")
@project_options
def runs_cancel(target: str, **options: str | None) -> None:
    """Cancel a run, or one execution and what it started.

    Cancelling a run stops everything of it still queued or running, also after it ended."""
    client = make_client(options)
    if ":" in target:
        client.cancel(target)
        click.echo(f"cancelled {target}")
        return
    count = client.cancel_run(target)
    click.echo(f"cancelled {count} execution{'s' if count != 1 else ''} of run {target}")


@runs.command("logs")
@click.argument("target", metavar="RUN|STEP|EXECUTION")
@json_option
@project_options
def runs_logs(target: str, as_json: bool, **options: str | None) -> None:
    """Print the log of an execution, a step or a run.

    Entries are shown in local time; a step's or a run's under each of its executions. With
    --json: an execution's entries as the server gives them (epoch seconds), or for a run or a
    step {EXECUTION: [entries]}."""
    client = make_client(options)
    if target.count(":") >= 2:
        entries = client.logs(target)
        if as_json:
            print_json(entries)
        else:
            click.echo("\n".join(render.log_lines(entries)) if entries else f"no logs for {target}")
        return
    found = _logs_of(client, target)
    if as_json:
        print_json({execution_id: entries for execution_id, _, entries in found})
        return
    shown = [(execution_id, step, entries) for execution_id, step, entries in found if entries]
    if not shown:
        click.echo(f"no logs for {'run' if ':' not in target else 'step'} {target}")
    for execution_id, step, entries in shown:
        click.echo(f"{execution_id} {render.call(step)}")
        click.echo("\n".join("  " + line for line in render.log_lines(entries)))


def _logs_of(client: Client, target: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(execution id, step, log entries) of each execution of run or step ``target``."""
    data = client.run_data(target.partition(":")[0])
    steps = [s for s in data.get("steps") or [] if ":" not in target or s["step_id"] == target]
    if not steps:
        raise NotFound(f"run {data['run_id']} has no step {target}")
    return [(e["execution_id"], s, client.logs(e["execution_id"])) for s in steps for e in s["executions"]]
