"""``coflux run``: execute a notebook headlessly (nbclient) and report the runs it started.

The notebook's kernel is started with the ``coflux`` IPython extension and with ``COFLUX_URL``,
``COFLUX_TOKEN``, ``COFLUX_PROJECT``, ``COFLUX_WORKSPACE`` and ``JPY_SESSION_NAME`` (the notebook's
path, which names its module) in its environment, so it is a worker of the given server, or of an
embedded one started for the occasion. Parameters follow papermill: a cell tagged
``injected-parameters`` goes right after the cell tagged ``parameters`` (or at the top).

After the cells ran (or one failed), the kernel is asked which runs it started
(:func:`coflux.client.started_runs`); they are awaited while the kernel, possibly their worker, is
still up, and summarized in a :class:`HeadlessResult`.
"""

from __future__ import annotations

import ast
import contextlib
import json
import keyword
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from coflux.client import Client, ServerUnavailable, resolve_settings, text_tree
from coflux.embedded import EmbeddedServer
from coflux.errors import CofluxError, ConfigurationError, RequestError
from coflux.models import JSON

TREE_LINES: Final = 25
"""Steps of a run's tree shown in the summary; the rest is counted."""

Parameter = int | float | bool | str | None
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
KERNEL_NAME = "python3"
DEFAULT_TIMEOUT = 600.0
_STARTED_RUNS = (
    '__import__("json").dumps(__import__("coflux.client", fromlist=["started_runs"]).started_runs())'
)
_FAILED_STATES = ("failed", "timed_out", "abandoned")
_CELL_TIMEOUT = "CellTimeoutError"

# -- parameters -----------------------------------------------------------------------------------


def parse_value(text: str) -> Parameter:
    """A ``-p`` value as papermill reads it: ``True``/``False``/``None``, an int, a float, else
    the text itself."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            number: Parameter = kind(text)
        except ValueError:
            continue
        return number
    return text


def parse_parameters(pairs: Sequence[str]) -> dict[str, Parameter]:
    """``["n=5", "name=x"]`` -> ``{"n": 5, "name": "x"}``; a later key wins. Raises ``ValueError``
    for a pair without ``=`` or a key that isn't a Python identifier."""
    parameters: dict[str, Parameter] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        if not key.isidentifier() or keyword.iskeyword(key):
            raise ValueError(f"{key!r} is not a Python identifier (in {pair!r})")
        parameters[key] = parse_value(value)
    return parameters


def _literal(value: Parameter) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


def _tagged(cell: Any, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def inject_parameters(notebook: Any, parameters: Mapping[str, Parameter]) -> int | None:
    """Put an ``injected-parameters`` code cell assigning ``parameters`` into ``notebook`` (in
    place): in place of an earlier injected cell, else right after the first ``parameters`` cell,
    else at the top. Returns its index (``None`` when there are no parameters)."""
    if not parameters:
        return None
    lines = ["# Parameters", *(f"{key} = {_literal(value)}" for key, value in parameters.items())]
    source = "\n".join(lines) + "\n"
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})  # type: ignore[no-untyped-call]
    cells = notebook.cells
    previous = next((i for i, c in enumerate(cells) if _tagged(c, INJECTED_TAG)), None)
    if previous is not None:
        cells[previous] = cell
        return previous
    marked = next((i for i, c in enumerate(cells) if _tagged(c, PARAMETERS_TAG)), None)
    index = 0 if marked is None else marked + 1
    cells.insert(index, cell)
    return index


def read_notebook(path: Path) -> Any:
    """The notebook at ``path`` (nbformat 4); ``ConfigurationError`` if it isn't one."""
    try:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError, nbformat.ValidationError) as err:  # JSON errors are ValueErrors
        raise ConfigurationError(f"cannot read notebook {path}: {err}") from err
    return notebook


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellFailure:
    """The cell that stopped the notebook; ``index`` counts the executed notebook's cells from 0."""

    index: int
    execution_count: int | None
    ename: str
    evalue: str
    source: str


@dataclass(frozen=True)
class StepFailure:
    """Where a failed run's error came from: the deepest failed step."""

    step_id: str
    module: str
    target: str
    state: str
    error_type: str
    message: str


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    project: str
    workspace: str
    workflow: str
    arguments: list[JSON]
    status: str
    duration: float | None
    steps: int
    result: JSON = None
    error: JSON = None
    failed_step: StepFailure | None = None
    tree: list[str] = field(default_factory=list)
    """The step tree, one line per step (as ``coflux runs show`` prints it)."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def finished(self) -> bool:
        return self.status != "running"


@dataclass(frozen=True)
class HeadlessResult:
    notebook: Path
    output: Path | None
    parameters: dict[str, Parameter]
    url: str | None
    """The server's URL; ``None`` for an embedded server (gone once the notebook ran)."""
    cell_error: CellFailure | None = None
    runs: list[RunSummary] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.cell_error is None and all(run.ok for run in self.runs)

    @property
    def exit_code(self) -> int:
        """0 when every cell ran and every run succeeded, else 1 (``coflux run``'s exit status)."""
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["notebook"] = str(self.notebook)
        data["output"] = str(self.output) if self.output else None
        data["embedded"] = self.url is None
        data["ok"] = self.ok
        return data


def summarize_run(project: str, data: Mapping[str, Any]) -> RunSummary:
    """A finished (or still running) run, from the REST view of its tree."""
    steps = list(data.get("steps") or [])
    root = steps[0] if steps else {}
    executions = root.get("executions") or []
    finished = executions[-1].get("completed_at") if executions else None
    started = data.get("created_at")
    duration = finished - started if finished is not None and started is not None else None
    failed = _failed_step(steps) if data.get("status") == "failed" else None
    return RunSummary(
        run_id=str(data["run_id"]),
        project=project,
        workspace=str(data.get("run_workspace") or data.get("workspace")),
        workflow=f"{root.get('module')}:{root.get('target')}",
        arguments=list(root.get("arguments") or []),
        status=str(data.get("status")),
        duration=duration,
        steps=len(steps),
        result=data.get("result"),
        error=data.get("error"),
        failed_step=failed,
        tree=text_tree(dict(data)).splitlines()[1:],
    )


def _failed_step(steps: list[dict[str, Any]]) -> StepFailure | None:
    """Where a failed run's error started: from the root, follow the failed children that failed
    with the same error (a child's error re-raised) as deep as they go."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for step in steps:
        children.setdefault(step.get("parent_step_id"), []).append(step)
    step = steps[0] if steps else {}
    error = _step_error(step)
    if error is None:
        return None
    while True:
        same = (c for c in children.get(step["step_id"], []) if _same_error(_step_error(c), error))
        child = next(same, None)
        if child is None:
            break
        step, error = child, _step_error(child) or error
    return StepFailure(str(step["step_id"]), str(step.get("module")), str(step.get("target")), *error)


def _same_error(one: tuple[str, str, str] | None, other: tuple[str, str, str]) -> bool:
    return one is not None and one[1:] == other[1:]


def _step_error(step: dict[str, Any]) -> tuple[str, str, str] | None:
    """The final execution's (state, error type, message) when it failed, timed out or was abandoned."""
    executions = step.get("executions") or []
    if not executions or executions[-1].get("state") not in _FAILED_STATES:
        return None
    state = str(executions[-1]["state"])
    error = executions[-1].get("error") or {}
    message = error.get("message") or f"the step's execution {state.replace('_', ' ')}"
    return state, str(error.get("type") or state), str(message)


# -- execution ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _server(url: str | None, token: str | None) -> Iterator[tuple[str, str | None]]:
    if url:
        _check_reachable(url, token)
        yield url.rstrip("/"), token
        return
    with EmbeddedServer() as server:
        yield server.url, server.token


def _check_reachable(url: str, token: str | None) -> None:
    """Raise ``ServerUnavailable`` before any kernel starts. Any answer will do, even a refusal: a
    project's token may not list projects."""
    try:
        Client(url=url, token=token).projects()
    except ServerUnavailable:
        raise
    except RequestError:
        return


def kernel_environment(
    notebook: Path, url: str, token: str | None, project: str, workspace: str
) -> dict[str, str]:
    """The kernel's environment: ours plus the settings that make it a worker of ``url``."""
    env = dict(os.environ)
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
    settings = resolve_settings(url, token, project, workspace)  # url: only the flag counts
    with _server(url, settings.token) as (server_url, server_token):
        env = kernel_environment(path, server_url, server_token, settings.project, settings.workspace)
        client = NotebookClient(
            notebook,
            kernel_name=KERNEL_NAME,
            timeout=math.ceil(timeout),
            interrupt_on_timeout=True,  # the kernel stays usable to ask it for its runs
            error_on_timeout={"ename": _CELL_TIMEOUT, "evalue": f"the cell ran longer than {timeout:g} s"},
            store_widget_state=True,
            resources={"metadata": {"path": str(path.resolve().parent)}},
            extra_arguments=["--ext=coflux"],
        )
        with _kernel(client, env):
            try:
                failure, started, warnings = _execute(client)
            finally:  # also when interrupted: what ran is worth keeping
                if output is not None:
                    nbformat.write(notebook, output)  # type: ignore[no-untyped-call]
            runs = wait_for_runs(server_url, server_token, started, time.monotonic() + timeout)
    warnings += [f"run {r.run_id} was still running after {timeout:g} s" for r in runs if not r.finished]
    return HeadlessResult(path, output, parameters, url and server_url, failure, runs, warnings)


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
def _kernel(client: Any, env: dict[str, str]) -> Iterator[None]:
    """The notebook's kernel, started with ``env``, for the duration."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(client.setup_kernel(env=env))
        except Exception as err:  # jupyter_client raises assorted types for a kernel that won't start
            raise CofluxError(f"the {KERNEL_NAME} kernel did not start: {err}") from err
        yield


# -- summary --------------------------------------------------------------------------------------


def format_summary(result: HeadlessResult) -> str:
    """The human summary ``coflux run`` prints."""
    lines = [f"Notebook {result.notebook}: " + ("a cell failed" if result.cell_error else "all cells ran")]
    failure = result.cell_error
    if failure is not None:
        count = f" (In [{failure.execution_count}])" if failure.execution_count else ""
        lines.append(f"  cell {failure.index}{count} failed: {failure.ename}: {failure.evalue}")
        first = next((line for line in failure.source.splitlines() if line.strip()), "")
        lines.append(f"    {first}")
    if not result.runs:
        lines.append("No runs were started.")
    for run in result.runs:
        lines.extend(_run_lines(run))
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    if result.output is not None:
        lines.append(f"Executed notebook written to {result.output}")
    return "\n".join(lines)


def _run_lines(run: RunSummary) -> list[str]:
    arguments = ", ".join(json.dumps(a, ensure_ascii=False) for a in run.arguments)
    duration = f" in {run.duration:.2f} s" if run.duration is not None else ""
    plural = "" if run.steps == 1 else "s"
    lines = [
        f"Run {run.run_id} {run.workflow}({arguments}) in {run.project}/{run.workspace}: "
        f"{run.status}{duration}, {run.steps} step{plural}"
    ]
    shown = run.tree[:TREE_LINES]
    lines.extend(shown)
    if len(run.tree) > len(shown):
        lines.append(f"  ... and {len(run.tree) - len(shown)} more steps (coflux runs show {run.run_id})")
    if run.ok:
        lines.append(f"  result: {json.dumps(run.result, ensure_ascii=False)}")
    step = run.failed_step
    if step is not None:
        lines.append(f"  step {step.step_id} {step.module}:{step.target} {step.state}:")
        lines.append(f"    {step.error_type}: {step.message}")
    elif run.status in ("failed", "cancelled") and isinstance(run.error, dict):
        lines.append(f"  {run.error.get('type')}: {run.error.get('message')}")
    return lines
