"""Executing the notebook: the server (given or embedded), the kernel and its environment, the
cells, then the runs the kernel started, awaited while the kernel is still up."""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets.config import Config

from coflux import tokens
from coflux.client import Client
from coflux.embedded import EmbeddedServer
from coflux.errors import CofluxError, ConfigurationError, NotCoflux, NotFound, ServerUnavailable
from coflux.headless.parameters import Parameter, inject_parameters, read_notebook
from coflux.headless.summary import CellFailure, HeadlessResult, RunSummary, summarize_run
from coflux.settings import DEFAULT_URL, resolve

KERNEL_NAME = "python3"
DEFAULT_TIMEOUT = 600.0
_STARTED_RUNS = (
    '__import__("json").dumps(__import__("coflux.client", fromlist=["started_runs"]).started_runs())'
)
_CELL_TIMEOUT = "CellTimeoutError"


@contextlib.contextmanager
def _server(url: str | None, token: str | None, project: str) -> Iterator[tuple[str, str | None]]:
    if url:
        check_server(url, token, project)
        yield url.rstrip("/"), token
        return
    with EmbeddedServer() as server:
        yield server.url, server.token


def check_server(url: str, token: str | None, project: str) -> None:
    """Before any kernel starts: ``url`` is a Coflux server that accepts ``token`` in ``project``
    (listing its workspaces, which every kind of token may). Raises ``ServerUnavailable`` (with a
    hint about ``--url``: ``coflux run`` never reads ``COFLUX_URL``), ``Unauthorized`` or
    ``ConfigurationError``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"--url {url!r} is not an http:// or https:// URL, e.g. {DEFAULT_URL}")
    if token and tokens.scope_of(token) is tokens.Scope.SUBMIT:
        raise ConfigurationError(
            "a submit token can't run a notebook: its kernel is a worker, which needs a worker token "
            f"(`coflux tokens create --project {project} --scope worker`) or the server's own token"
        )
    try:
        Client(url=url, token=token, project=project).workspaces()
    except NotCoflux:
        raise
    except ServerUnavailable as err:
        reason = getattr(err.__cause__, "reason", err.__cause__)
        raise ServerUnavailable(
            f"cannot reach the Coflux server at {url}: {reason} (is it running? `coflux run` "
            "connects to --url only, whatever COFLUX_URL says)"
        ) from err
    except NotFound:
        return  # no such project yet: the kernel's worker makes it


def kernel_token(url: str, token: str | None, project: str) -> str | None:
    """The token the notebook's kernel gets: never the server's own (Jupyter's: kernels, files),
    always one that grants ``project`` only. A project token is passed on as it is; the server's
    token is exchanged for a worker token of ``project``."""
    if token is None or tokens.looks_like_token(token):
        return token
    worker = Client(url=url, token=token, project=project).create_token("worker").get("token")
    if not isinstance(worker, str) or not tokens.looks_like_token(worker):
        raise CofluxError(f"the server at {url} gave no worker token for project {project!r}")
    return worker


def kernel_environment(
    notebook: Path, url: str, token: str | None, project: str, workspace: str
) -> dict[str, str]:
    """The kernel's environment: ours plus the settings that make it a worker of ``url``."""
    env = dict(os.environ)
    env.pop("COFLUX_SERVER_TOKEN", None)  # the server's own token is not the kernel's business
    env.update(
        COFLUX_URL=url,
        COFLUX_PROJECT=project,
        COFLUX_WORKSPACE=workspace,
        JPY_SESSION_NAME=str(notebook.resolve()),
    )
    if token:
        env["COFLUX_TOKEN"] = token
    else:
        env.pop("COFLUX_TOKEN", None)
    return env


def _execute_cells(client: Any) -> CellFailure | None:
    """Execute the notebook's cells in order in ``client``'s kernel; the failing one, if any."""
    reply = client.wait_for_reply(client.kc.kernel_info())
    if reply is not None and "language_info" in reply["content"]:
        client.nb.metadata["language_info"] = reply["content"]["language_info"]
    for index, cell in enumerate(client.nb.cells):
        try:
            client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        except CellExecutionError as err:
            return _cell_failure(cell, index, err.ename, err.evalue)
        except CellTimeoutError as err:  # IOPub stayed silent after the reply
            return _cell_failure(cell, index, _CELL_TIMEOUT, str(err))
        except DeadKernelError as err:
            return _cell_failure(cell, index, "DeadKernelError", str(err))
    return None


def _cell_failure(cell: Any, index: int, ename: str | None, evalue: str | None) -> CellFailure:
    """The error the cell shows; the reply's names only errors raised by the cell's own code (one
    raised by a display formatter comes back as ``NoneType: None``)."""
    shown = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if shown and ename != _CELL_TIMEOUT:  # a timed-out cell shows the KeyboardInterrupt that stopped it
        ename, evalue = shown[-1].get("ename"), shown[-1].get("evalue")
    return CellFailure(index, cell.get("execution_count"), ename or "Error", evalue or "", cell.source)


def _started_runs(client: Any) -> tuple[list[tuple[str, str]], str | None]:
    """Ask the kernel which runs it started; the runs, or a reason it couldn't tell."""
    for _attempt in range(3):
        message = client.kc.execute(
            "", silent=True, store_history=False, user_expressions={"runs": _STARTED_RUNS}
        )
        reply = client.wait_for_reply(message)
        if reply is None:
            return [], "the kernel did not say which runs it started"
        content = reply["content"]
        if content.get("status") == "aborted":  # still aborting requests queued before an error
            time.sleep(0.2)
            continue
        value = content.get("user_expressions", {}).get("runs", {})
        if value.get("status") != "ok":
            reason = f"{value.get('ename', 'error')}: {value.get('evalue', '')}"
            return [], f"the kernel could not list its runs ({reason})"
        runs = json.loads(ast.literal_eval(value["data"]["text/plain"]))
        return [(str(project), str(run_id)) for project, run_id in runs], None
    return [], "the kernel did not say which runs it started"


def wait_for_runs(
    url: str, token: str | None, runs: Sequence[tuple[str, str]], deadline: float
) -> list[RunSummary]:
    """Wait (until ``deadline``, a ``time.monotonic()`` value) for each run to finish; their trees."""
    clients: dict[str, Client] = {}
    summaries = []
    for project, run_id in dict.fromkeys(runs):
        client = clients.setdefault(project, Client(url=url, token=token, project=project))
        data = client.run_data(run_id, steps=False)
        while data["status"] == "running" and (remaining := deadline - time.monotonic()) > 0:
            data = client.run_data(run_id, wait=min(remaining, 30.0), steps=False)
        summaries.append(summarize_run(project, client.run_data(run_id)))
    return summaries


def run_notebook(
    path: Path,
    parameters: Mapping[str, Parameter] | None = None,
    *,
    project: str | None = None,
    workspace: str | None = None,
    url: str | None = None,
    token: str | None = None,
    output: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HeadlessResult:
    """Execute the notebook at ``path`` with ``parameters`` and wait for the runs it started.

    Without ``url`` an embedded server runs for the duration. ``timeout`` bounds each cell and,
    after the cells, the wait for the runs. ``output`` receives the executed notebook (injected
    cell and outputs included), also when a cell failed. A failing cell or run is reported in the
    result, not raised; ``CofluxError`` means the notebook could not be run at all."""
    path = Path(path)
    notebook = read_notebook(path)
    parameters = dict(parameters or {})
    inject_parameters(notebook, parameters)
    settings = resolve(None, token, project, workspace)  # url: only the flag counts
    with (
        _server(url, settings.token, settings.project) as (server_url, server_token),
        _socket_folder() as sockets,
    ):
        worker_token = kernel_token(server_url, server_token, settings.project)
        env = kernel_environment(path, server_url, worker_token, settings.project, settings.workspace)
        client = _notebook_client(notebook, path, timeout, sockets)
        with _kernel(client, env):
            try:
                failure, started, warnings = _execute(client)
            finally:  # also when interrupted: what ran is worth keeping
                if output is not None:
                    nbformat.write(notebook, output)  # type: ignore[no-untyped-call]
            runs = wait_for_runs(server_url, server_token, started, time.monotonic() + timeout)
    warnings += [f"run {r.run_id} was still running after {timeout:g} s" for r in runs if not r.finished]
    return HeadlessResult(path, output, parameters, url and server_url, failure, runs, warnings)


def _notebook_client(notebook: Any, path: Path, timeout: float, sockets: Path) -> NotebookClient:
    return NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=math.ceil(timeout),
        interrupt_on_timeout=True,  # the kernel stays usable to ask it for its runs
        error_on_timeout={"ename": _CELL_TIMEOUT, "evalue": f"the cell ran longer than {timeout:g} s"},
        store_widget_state=True,
        resources={"metadata": {"path": str(path.resolve().parent)}},
        extra_arguments=["--ext=coflux"],
        # Local sockets, not TCP on 127.0.0.1: nothing else on the machine can talk to the kernel.
        # Their path is absolute: the kernel runs in the notebook's folder, this process may not.
        config=Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}}),
    )


def _execute(client: Any) -> tuple[CellFailure | None, list[tuple[str, str]], list[str]]:
    """Run the cells, then ask the kernel which runs it started: the failed cell, the runs, and
    warnings."""
    failure = _execute_cells(client)
    client.set_widgets_metadata()
    if failure is not None and failure.ename == "DeadKernelError":
        return failure, [], ["the kernel died: the runs it started are unknown"]
    started, problem = _started_runs(client)
    return failure, started, [problem] if problem else []


@contextlib.contextmanager
def _socket_folder() -> Iterator[Path]:
    """A private folder (mode 0700) for the kernel's sockets, removed afterwards. Short: a socket
    path must fit in about 100 bytes."""
    with tempfile.TemporaryDirectory(prefix="coflux-kernel-") as folder:
        yield Path(folder)


@contextlib.contextmanager
def _kernel(client: Any, env: dict[str, str]) -> Iterator[None]:
    """The notebook's kernel, started with ``env``, for the duration."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(client.setup_kernel(env=env))
        except Exception as err:  # jupyter_client raises assorted types for a kernel that won't start
            raise CofluxError(f"the {KERNEL_NAME} kernel did not start: {err}") from err
        yield


# -- summary --------------------------------------------------------------------------------------
