"""``%%coflux_task``, ``%%coflux_workflow`` and the ``%coflux`` line magic.

A target cell defines one function. The magic runs the cell in the notebook's namespace (so the
function's globals are the notebook's), wraps the function as a target of the notebook's module,
binds its name to the target and declares it to the server. Re-running the cell declares the new
source, and so a new code version.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from coflux.address import relocation_note
from coflux.errors import CofluxError
from coflux.notebook.kernel import KernelSession, current
from coflux.worker import Cache, Retries, Target, Task, Workflow
from coflux.worker.options import TargetOptions

CONNECT_TIMEOUT = 10.0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as a cell error instead of exiting the kernel."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}\nusage: {self.format_usage().strip()[7:]}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or self.format_help())


def _target_parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, add_help=False)
    parser.add_argument("--name", help="the target's name (default: the function's)")
    parser.add_argument("--cache", action="store_true", help="cache results across runs")
    parser.add_argument("--cache-max-age", type=float, metavar="S", help="cache hits younger than S s")
    parser.add_argument("--cache-params", metavar="A,B", help="the cache key covers these parameters")
    parser.add_argument("--cache-namespace", metavar="NS", help="share cache entries under NS")
    parser.add_argument("--memo", nargs="?", const="", metavar="A,B", help="memoise within a run")
    parser.add_argument("--retries", type=int, metavar="N", help="retry a failure up to N times")
    parser.add_argument("--backoff", metavar="MIN,MAX", help="seconds between retries (a ramp)")
    parser.add_argument("--timeout", type=float, metavar="S", help="time out after S s")
    parser.add_argument("--delay", type=float, metavar="S", help="run no earlier than S s after submit")
    parser.add_argument("--defer", nargs="?", const="", metavar="A,B", help="newest duplicate wins")
    parser.add_argument("--wait", nargs="?", const="", metavar="A,B", help="hold until arguments resolve")
    parser.add_argument("--requires", action="append", default=[], metavar="K=V", help="worker tags")
    parser.add_argument("--version", help="pin the code version (default: a digest of the source)")
    return parser


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _names_or_all(value: str | None) -> bool | list[str] | None:
    """``--memo`` alone means all parameters; ``--memo a,b`` those two."""
    if value is None:
        return None
    return _names(value) or True


def target_options(args: argparse.Namespace) -> dict[str, Any]:
    """The decorator's keywords from the magic's parsed options."""
    options: dict[str, Any] = {}
    if args.cache_max_age is not None or args.cache_params or args.cache_namespace:
        params = _names(args.cache_params) if args.cache_params else None
        options["cache"] = Cache(max_age=args.cache_max_age, params=params, namespace=args.cache_namespace)
    elif args.cache:
        options["cache"] = True
    for key in ("memo", "defer", "wait"):
        value = _names_or_all(getattr(args, key))
        if value is not None:
            options[key] = value
    if args.retries is not None or args.backoff:
        backoff = (0.0, 0.0)
        if args.backoff:
            try:
                low, high = (float(v) for v in args.backoff.split(","))
            except ValueError as err:
                raise UsageError(f"--backoff takes MIN,MAX in seconds, not {args.backoff!r}") from err
            backoff = (low, high)
        options["retries"] = Retries(limit=args.retries if args.retries is not None else 1, backoff=backoff)
    for key in ("timeout", "delay", "version"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.requires:
        requires: dict[str, list[str]] = {}
        for item in args.requires:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"--requires takes KEY=VALUE, not {item!r}")
            requires.setdefault(key, []).append(value)
        options["requires"] = requires
    return options


def _defined_function(tree: ast.Module, prog: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if len(functions) != 1:
        found = ", ".join(f.name for f in functions) or "none"
        raise UsageError(f"{prog}: the cell must define exactly one function (found: {found})")
    return functions[0]


@magics_class
class CofluxMagics(Magics):
    """The magics; ``session`` is the kernel's (one per kernel)."""

    def __init__(self, shell: Any, session: KernelSession) -> None:
        super().__init__(shell)
        self.session = session

    @cell_magic
    def coflux_task(self, line: str, cell: str) -> None:
        """Define a task: ``%%coflux_task [--cache] [--retries N] ...`` over a cell with one def."""
        self._define(Task, "%%coflux_task", line, cell)

    @cell_magic
    def coflux_workflow(self, line: str, cell: str) -> None:
        """Define a workflow: ``%%coflux_workflow [options]`` over a cell with one def."""
        self._define(Workflow, "%%coflux_workflow", line, cell)

    def _define(self, kind: type[Target[..., Any]], prog: str, line: str, cell: str) -> None:
        args = _target_parser(prog).parse_args(_split(line))
        try:
            options = TargetOptions().updated(**target_options(args))
        except (TypeError, ValueError) as err:
            raise UsageError(f"{prog}: {err}") from err
        shell = self.shell
        assert shell is not None
        # Compiled one line down, under the magic's line, and registered with IPython's line
        # cache as the cell shows it: tracebacks (``Cell In[5], line 3``), SyntaxErrors and
        # inspect.getsource see the cell, with the line numbers the notebook shows.
        code = "\n" + shell.transform_cell(cell)
        shown = f"{prog} {line}".rstrip() + code
        filename = shell.compile.cache(shown, _cell_number(shell), raw_code=cell)
        tree = ast.parse(code, filename)  # a SyntaxError is the cell's own, pointing at its line
        node = _defined_function(tree, prog)
        exec(compile(tree, filename, "exec"), shell.user_ns)  # the cell's own errors propagate
        function = shell.user_ns.get(node.name)
        if not callable(function):
            raise UsageError(f"{prog}: {node.name} is not a function after running the cell")
        source = ast.get_source_segment(code, node)
        self._follow_notebook()
        target = kind(function, name=args.name, module=self.session.module, options=options, source=source)
        shell.user_ns[node.name] = target
        warning = self.session.declare(target)
        if warning is not None:
            print(f"Coflux: {warning}")
        elif not self.session.started:
            print(f"{target!r} defined; this kernel is not connected to a server (%coflux connect)")

    @line_magic
    def coflux(self, line: str) -> Any:
        """``%coflux status|connect|workspace|workspaces|runs|module`` (``%coflux help``)."""
        words = _split(line)
        command, rest = (words[0], words[1:]) if words else ("status", [])
        handler: Callable[[list[str]], Any] | None = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise UsageError(f"%coflux: unknown command {command!r}; try {_COMMANDS}")
        self._follow_notebook()
        try:
            return handler(rest)
        except (CofluxError, TimeoutError) as err:
            raise UsageError(f"%coflux {command}: {err}") from err

    def _follow_notebook(self) -> None:
        """A notebook renamed since the last magic: say what that means for its module."""
        told = self.session.follow_notebook()
        if told is not None:
            print(f"Coflux: {told}")

    def _cmd_help(self, rest: list[str]) -> None:
        print(_HELP)

    def _cmd_status(self, rest: list[str]) -> None:
        connection = self.session.connection()
        if connection is None:
            print("Coflux: not connected (%coflux connect [URL] [--token T])")
        elif connection.state == "refused":
            print(f"Coflux: {self.session.refusal(connection)}")
        else:
            print(f"Coflux: {connection.headline()}")
        status = self.session.status()
        print(f"module {status['module']}, concurrency {status['concurrency']}")
        if not status["targets"]:
            print("targets: none yet (%%coflux_task, %%coflux_workflow)")
            return
        print("targets:")
        for line in status["targets"]:
            print(f"  {line}")

    def _cmd_connect(self, rest: list[str]) -> None:
        parser = _Parser(prog="%coflux connect", add_help=False)
        parser.add_argument("url", nargs="?")
        parser.add_argument("--project")
        parser.add_argument("--workspace")
        parser.add_argument("--token")
        parser.add_argument("--concurrency", type=int)
        args = parser.parse_args(rest)
        try:
            self.session.connect(
                args.url,
                token=args.token,
                project=args.project,
                workspace=args.workspace,
                concurrency=args.concurrency,
                wait=CONNECT_TIMEOUT,
            )
        except TimeoutError as err:
            raise UsageError(f"%coflux connect: {err} (the worker keeps trying)") from err
        except CofluxError as err:
            connection = self.session.connection()
            if connection is None or connection.state != "refused":
                raise
            raise UsageError(f"%coflux connect: {self.session.refusal(connection)}") from err
        connection = self.session.connection()
        if connection is not None and connection.given_url is not None:
            print(f"Coflux: {relocation_note(connection.given_url, connection.url)}")
        self._cmd_status([])

    def _cmd_workspace(self, rest: list[str]) -> None:
        parser = _Parser(prog="%coflux workspace", add_help=False)
        parser.add_argument("name", nargs="?")
        parser.add_argument("--base")
        args = parser.parse_args(rest)
        if args.name is None:
            print(self.session.workspace)
            return
        self.session.switch_workspace(args.name, base=args.base)
        print(f"Coflux: this kernel now serves and runs in workspace {args.name!r}")

    def _cmd_workspaces(self, rest: list[str]) -> Any:
        from coflux.notebook.widgets import WorkspaceSwitcher

        return WorkspaceSwitcher(session=self.session)

    def _cmd_module(self, rest: list[str]) -> None:
        if len(rest) != 1:
            print(self.session.module)
            return
        self.session.set_module(rest[0])
        print(f"Coflux: targets defined from now on belong to module {rest[0]!r}")

    def _cmd_runs(self, rest: list[str]) -> None:
        parser = _Parser(prog="%coflux runs", add_help=False)
        parser.add_argument("workflow", nargs="?", help="MODULE:NAME or NAME (in this notebook's module)")
        parser.add_argument("--limit", type=int, default=20)
        args = parser.parse_args(rest)
        workflow = args.workflow
        if workflow and ":" not in workflow:
            workflow = f"{self.session.module}:{workflow}"
        runs = self.session.client().runs(workflow=workflow, limit=args.limit)
        if not runs:
            print("no runs" + (f" of {workflow}" if workflow else "") + f" in {self.session.workspace}")
            return
        for run in runs:
            started = datetime.datetime.fromtimestamp(run["created_at"]).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{run['run_id']}  {run['status']:<10} {run['module']}:{run['target']}  {started}")


_COMMANDS = "status, connect, workspace, workspaces, runs, module, help"
_HELP = """%coflux status                      the kernel's connection, workspace and targets
%coflux connect [URL] [--project P] [--workspace W] [--token T] [--concurrency N]
%coflux workspace [NAME [--base B]]  show, or switch to (creating if needed) a workspace
%coflux workspaces                  the workspace switcher widget
%coflux runs [WORKFLOW] [--limit N]  recent runs in this workspace
%coflux module [NAME]               the module new targets belong to (default: the notebook's name)"""


def _cell_number(shell: Any) -> int:
    """The execution count of the cell being run, as the notebook shows it (``[5]``). IPython 9
    counts the cell before running it, IPython 8 after; its input history has the cell either way."""
    history = getattr(getattr(shell, "history_manager", None), "input_hist_parsed", None)
    return len(history) - 1 if history else int(shell.execution_count)


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise UsageError(f"cannot parse the options: {err}") from err


def load(shell: Any) -> KernelSession:
    """Register the magics on ``shell``; connect when the kernel knows a server."""
    session = current(shell.user_ns)
    shell.register_magics(CofluxMagics(shell, session))
    return session
