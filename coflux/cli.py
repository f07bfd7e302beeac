"""The ``coflux`` command line (DESIGN.md §7).

Exit status: 0 on success, 1 when a run failed or the server refused a request, 2 for a usage error.
Settings follow the same precedence as :class:`coflux.client.Client`: flags, then ``COFLUX_*``
environment variables, then ``coflux.toml``, then defaults.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from coflux.client import Client, text_tree
from coflux.errors import CofluxError
from coflux.models import JSON

F = TypeVar("F", bound=Callable[..., Any])

_POLL_INTERVAL = 0.075
_stderr = Console(stderr=True)


class _Group(click.Group):
    """Turns the library's errors into ``error: ...`` on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CofluxError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)


def _connection_options(function: F) -> F:
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


def _json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def _client(options: dict[str, Any]) -> Client:
    return Client(
        url=options.get("url"),
        token=options.get("token"),
        project=options.get("project"),
        workspace=options.get("workspace"),
    )


def _print_json(data: JSON) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """A function from a module imported only when the command runs (keeps ``coflux --help`` fast
    and the command line usable when optional parts are missing)."""
    try:
        function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise click.ClickException(f"{module}.{name} is not available: {err}") from err
    return function


@click.group(cls=_Group)
@click.version_option(package_name="jupyter-coflux")
def main() -> None:
    """Coflux for Jupyter: durable workflows in notebooks and modules."""


# -- server and worker ----------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="COFLUX_HOST")
@click.option("--port", default=7777, show_default=True, type=int, envvar="COFLUX_PORT")
@click.option("--data-dir", default="./.coflux", show_default=True, envvar="COFLUX_DATA_DIR")
@click.option(
    "--database-url", default=None, envvar="COFLUX_DATABASE_URL", help="PostgreSQL URL (default: SQLite)."
)
@click.option(
    "--token",
    default=None,
    envvar="COFLUX_SERVER_TOKEN",
    help="Fix the admin (Jupyter) token; better COFLUX_SERVER_TOKEN, as every local user can read a "
    "command line (default: generated).",
)
@click.option("--exit-with-stdin", is_flag=True, hidden=True, help="Stop when stdin closes (embedded use).")
def server(
    host: str, port: int, data_dir: str, database_url: str | None, token: str | None, exit_with_stdin: bool
) -> None:
    """Run a headless Jupyter server hosting only the Coflux extension. It prints its URL, its admin
    token and a worker token of project default; if Coflux can't start, it exits 1 with the reason."""
    run_server = _lazy("jupyter_ext.app", "run_server")
    run_server(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        token=token,
        exit_with_stdin=exit_with_stdin,
    )


def _parse_provides(values: tuple[str, ...]) -> dict[str, list[str]]:
    provides: dict[str, list[str]] = {}
    for value in values:
        key, equals, tag = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="--provides")
        provides.setdefault(key, []).append(tag)
    return provides


@main.command()
@click.argument("modules", nargs=-1, required=True)
@_connection_options
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Executions at once (or COFLUX_CONCURRENCY, or coflux.toml; default: 4).",
)
@click.option("--register", is_flag=True, help="List the modules' workflows in the workspace.")
@click.option("--dev", is_flag=True, help="Reload on code change (implies --register).")
@click.option("--provides", multiple=True, metavar="KEY=VALUE", help="A tag this worker provides.")
def worker(
    modules: tuple[str, ...],
    concurrency: int | None,
    register: bool,
    dev: bool,
    provides: tuple[str, ...],
    **options: str | None,
) -> None:
    """Run a worker for the targets defined in MODULES.

    It prints where it is connected and the targets it serves; while the server can't be reached it
    says why (on stderr) and keeps retrying. A refused token or a URL that is not a Coflux server
    ends it with one line on stderr and exit status 2."""
    from coflux.worker.runner import WorkerRefused, run_worker

    try:
        run_worker(
            modules=list(modules),
            project=options["project"],
            workspace=options["workspace"],
            url=options["url"],
            token=options["token"],
            concurrency=concurrency,
            register=register or dev,
            dev=dev,
            provides=_parse_provides(provides),
        )
    except WorkerRefused as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)


# -- submit ---------------------------------------------------------------------------------------


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


@main.command()
@click.argument("target", metavar="MODULE:WORKFLOW")
@click.argument("arguments", nargs=-1, metavar="[JSON_ARG]...")
@click.option("--no-wait", is_flag=True, help="Print the run id and return at once.")
@_json_option
@_connection_options
def submit(
    target: str, arguments: tuple[str, ...], no_wait: bool, as_json: bool, **options: str | None
) -> None:
    """Start a run of a workflow and follow it until it finishes."""
    if ":" not in target.strip(":"):
        raise click.BadParameter(f"expected MODULE:WORKFLOW, got {target!r}", param_hint="TARGET")
    values = _parse_arguments(arguments)
    client = _client(options)
    run = client.start_run(target, *values)
    if no_wait:
        if as_json:
            _print_json({"run_id": run.id, "status": "running"})
        else:
            click.echo(run.id)
        return
    data = _follow(client, run.id, run.workspace, live=not as_json)
    sys.exit(_report(data, as_json))


def _follow(client: Client, run_id: str, workspace: str | None, *, live: bool) -> dict[str, Any]:
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


def _report(data: dict[str, Any], as_json: bool) -> int:
    """Print a finished run's outcome; the exit status for it."""
    status = data["status"]
    error = data.get("error")
    if as_json:
        _print_json(
            {
                "run_id": data["run_id"],
                "status": status,
                "result": data.get("result"),
                "error": error,
            }
        )
    elif status == "succeeded":
        _print_json(data.get("result"))
    elif status == "cancelled":
        click.echo(f"run {data['run_id']} was cancelled", err=True)
    else:
        error = error or {}
        click.echo(f"{error.get('type', 'error')}: {error.get('message', '')}", err=True)
    return 0 if status == "succeeded" else 1


# -- run (a notebook) -----------------------------------------------------------------------------


@main.command("run")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="A notebook parameter.")
@click.option("--project", help="Project (or COFLUX_PROJECT; default: default).")
@click.option("--workspace", help="Workspace (or COFLUX_WORKSPACE; default: main).")
@click.option("--url", help="Server URL including /coflux (default: start an embedded server).")
@click.option("--token", help="Access token for --url (or COFLUX_TOKEN).")
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
@_json_option
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
    (values: ints, floats, True/False/None, else strings). Exit status 1 if a cell or a run failed."""
    parse_parameters = _lazy("coflux.headless", "parse_parameters")
    try:
        parameters = parse_parameters(params)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--param") from err
    try:
        _lazy("coflux.headless", "read_notebook")(notebook)
    except CofluxError as err:
        raise click.BadParameter(str(err), param_hint="NOTEBOOK") from err
    result = _lazy("coflux.headless", "run_notebook")(
        notebook, parameters, output=output, timeout=timeout, **options
    )
    if as_json:
        _print_json(result.to_json())
    else:
        click.echo(_lazy("coflux.headless", "format_summary")(result))
    sys.exit(result.exit_code)


# -- runs -----------------------------------------------------------------------------------------


@main.group()
def runs() -> None:
    """Inspect and steer runs."""


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@_json_option
@_connection_options
def runs_show(run_id: str, as_json: bool, **options: str | None) -> None:
    """Show a run's tree of steps, as seen from --workspace (default: the run's own)."""
    client = _client(options)
    data = client.run_data(run_id, options["workspace"])
    if as_json:
        _print_json(data)
    else:
        click.echo(text_tree(data))


@runs.command("rerun")
@click.argument("step_id", metavar="STEP")
@_json_option
@_connection_options
def runs_rerun(step_id: str, as_json: bool, **options: str | None) -> None:
    """Re-run a step in --workspace; prints the new execution id."""
    execution_id = _client(options).rerun(step_id, options["workspace"])
    if as_json:
        _print_json({"execution_id": execution_id})
    else:
        click.echo(execution_id)


@runs.command("cancel")
@click.argument("target", metavar="RUN|EXECUTION")
@_connection_options
def runs_cancel(target: str, **options: str | None) -> None:
    """Cancel a run (everything of it still queued or running, also after it ended), or one
    execution and what it started."""
    client = _client(options)
    if ":" in target:
        client.cancel(target)
        click.echo(f"cancelled {target}")
        return
    count = client.cancel_run(target)
    click.echo(f"cancelled {count} execution{'s' if count != 1 else ''} of run {target}")


@runs.command("logs")
@click.argument("execution_id", metavar="EXECUTION")
@_json_option
@_connection_options
def runs_logs(execution_id: str, as_json: bool, **options: str | None) -> None:
    """Print an execution's log entries."""
    entries = _client(options).logs(execution_id)
    if as_json:
        _print_json(entries)
        return
    for entry in entries:
        click.echo(f"{entry.get('timestamp')} {entry.get('level')} {entry.get('message')}")


# -- projects and workspaces ----------------------------------------------------------------------


@main.group()
def projects() -> None:
    """List and create projects."""


@projects.command("list")
@_json_option
@_connection_options
def projects_list(as_json: bool, **options: str | None) -> None:
    items = _client(options).projects()
    if as_json:
        _print_json(items)
        return
    for item in items:
        click.echo(item["name"])


@projects.command("create")
@click.argument("name")
@_connection_options
def projects_create(name: str, **options: str | None) -> None:
    _client(options).create_project(name)
    click.echo(f"created project {name}")


@main.group()
def workspaces() -> None:
    """List, create, rename, rebase, pause, resume and archive the project's workspaces."""


@workspaces.command("list")
@_json_option
@_connection_options
def workspaces_list(as_json: bool, **options: str | None) -> None:
    items = _client(options).workspaces()
    if as_json:
        _print_json(items)
        return
    for item in items:
        click.echo(_workspace_line(item))


def _workspace_line(item: dict[str, Any]) -> str:
    base = f" (base: {item['base']})" if item.get("base") else ""
    state = f" [{item['state']}]" if item.get("state") not in (None, "active") else ""
    return f"{item['name']}{base}{state}"


def _report_workspace(verb: str, item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(item)
    else:
        click.echo(f"{verb} workspace {_workspace_line(item)}")


@workspaces.command("create")
@click.argument("name")
@click.option("--base", default=None, help="The workspace it inherits from.")
@_json_option
@_connection_options
def workspaces_create(name: str, base: str | None, as_json: bool, **options: str | None) -> None:
    _report_workspace("created", _client(options).create_workspace(name, base), as_json)


@workspaces.command("rename")
@click.argument("name")
@click.argument("new_name", metavar="NEW")
@_json_option
@_connection_options
def workspaces_rename(name: str, new_name: str, as_json: bool, **options: str | None) -> None:
    """Rename workspace NAME to NEW; its runs follow it."""
    _report_workspace("renamed", _client(options).rename_workspace(name, new_name), as_json)


@workspaces.command("rebase")
@click.argument("name")
@click.option("--base", default=None, help="The new base (omit for none).")
@_json_option
@_connection_options
def workspaces_rebase(name: str, base: str | None, as_json: bool, **options: str | None) -> None:
    """Make --base the base of workspace NAME (without --base: no base)."""
    _report_workspace("rebased", _client(options).rebase_workspace(name, base), as_json)


@workspaces.command("pause")
@click.argument("name")
@_json_option
@_connection_options
def workspaces_pause(name: str, as_json: bool, **options: str | None) -> None:
    """Stop dispatching the workspace's queued work; what runs goes on."""
    _report_workspace("paused", _client(options).pause_workspace(name), as_json)


@workspaces.command("resume")
@click.argument("name")
@_json_option
@_connection_options
def workspaces_resume(name: str, as_json: bool, **options: str | None) -> None:
    """Dispatch the workspace's work again, starting with what waited."""
    _report_workspace("resumed", _client(options).resume_workspace(name), as_json)


@workspaces.command("archive")
@click.argument("name")
@_json_option
@_connection_options
def workspaces_archive(name: str, as_json: bool, **options: str | None) -> None:
    """Archive the workspace for good: no new runs; its runs stay readable."""
    _report_workspace("archived", _client(options).archive_workspace(name), as_json)


# -- tokens ---------------------------------------------------------------------------------------


@main.group()
def tokens() -> None:
    """Make project tokens (with the server's own token in --token or COFLUX_TOKEN)."""


@tokens.command("create")
@click.option(
    "--scope",
    type=click.Choice(["worker", "submit"]),
    required=True,
    help="worker: for workers and notebook kernels; submit: for CI and dashboards (JSON arguments only).",
)
@_json_option
@_connection_options
def tokens_create(scope: str, as_json: bool, **options: str | None) -> None:
    """Print a new token of --project (only the token, unless --json)."""
    data = _client(options).create_token(scope)
    if as_json:
        _print_json(data)
    else:
        click.echo(data["token"])


if __name__ == "__main__":  # pragma: no cover
    main()
