"""Following a run until something is done, for ``coflux submit`` and ``coflux runs rerun --wait``.

On a terminal, the run's tree is drawn live on stderr (rich). Anywhere else (a log file, a pipe,
CI) nothing is redrawn: one line when the run starts, one when it can't progress and why (each
reason once), and the finished tree at the end; every line ends with a newline, so what goes to
stdout never sticks to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from coflux import render
from coflux.client import Client

POLL_INTERVAL = 0.25
"""Seconds between two reads of a run being followed. Each read is a long poll that the server
answers at once when the run finishes, so a run's end is seen without this delay."""

Done = Callable[[dict[str, Any]], bool]


def run_finished(data: dict[str, Any]) -> bool:
    return bool(data["status"] != "running")


def follow(
    client: Client, run_id: str, workspace: str | None, *, done: Done = run_finished, show: bool = True
) -> dict[str, Any]:
    """Read the run until ``done`` says so; its last view. With ``show``, show progress on stderr."""
    console = Console(stderr=True)
    if not show:
        return _poll(client, run_id, workspace, done, lambda data: None)
    if console.is_terminal:
        data = client.run_data(run_id, workspace)
        with Live(Text(render.text_tree(data)), console=console, refresh_per_second=8) as view:
            data = _poll(client, run_id, workspace, done, lambda d: view.update(Text(render.text_tree(d))))
            view.update(Text(render.text_tree(data)))
            return data
    return _log(client, run_id, workspace, done)


def _log(client: Client, run_id: str, workspace: str | None, done: Done) -> dict[str, Any]:
    said: set[str] = set()

    def progress(data: dict[str, Any]) -> None:
        if not said:
            click.echo(render.run_title(data), err=True)
            said.add("")
        for line in render.blocked_lines(data):
            if line not in said:
                said.add(line)
                click.echo(f"  {line}", err=True)

    data = _poll(client, run_id, workspace, done, progress)
    click.echo(render.text_tree(data), err=True)
    return data


def _poll(
    client: Client,
    run_id: str,
    workspace: str | None,
    done: Done,
    progress: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    data = client.run_data(run_id, workspace)
    while not done(data):
        progress(data)
        started = time.monotonic()
        data = client.run_data(run_id, workspace, wait=POLL_INTERVAL)
        if not done(data):  # an ended run answers at once: what is awaited may be a step of it
            time.sleep(max(0.0, POLL_INTERVAL - (time.monotonic() - started)))
    return data
