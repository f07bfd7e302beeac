"""Targets: the ``@cf.task`` and ``@cf.workflow`` decorators and what they return.

A :class:`Target` wraps a plain function. Called inside an execution it submits a child step and
waits for its value; called anywhere else it is the plain function (so notebooks and unit tests can
call it directly). Keyword arguments are bound to parameters here, so the wire carries one list of
values in parameter order with defaults applied.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import math
import textwrap
import types
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypedDict, TypeVar, overload

from coflux.errors import ExecutionCancelled
from coflux.models import JSON, NO_DEFAULT, Parameter, TargetDefinition, TargetType
from coflux.worker import context, values
from coflux.worker.execution import Execution, LocalExecution
from coflux.worker.options import Cache, Retries, Seconds, TargetOptions

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from typing_extensions import Unpack

    from coflux.client import Run

P = ParamSpec("P")
R = TypeVar("R")

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_SUBMIT_HEAD = (
    '{"type":"submit","request_id":%d,"parent_execution_id":%s,"call_index":%d,"await":%s,"arguments":%s'
)


class Options(TypedDict, total=False):
    """The options every target takes (``cf.task``, ``cf.workflow``, ``with_options``)."""

    cache: bool | Seconds | Cache | None
    memo: bool | str | Iterable[str] | None
    retries: int | bool | Retries | None
    timeout: Seconds | None
    delay: Seconds | None
    defer: bool | str | Iterable[str] | None
    wait: bool | str | Iterable[str] | None
    requires: Mapping[str, Any] | None
    version: str | None


def code_version(fn: Callable[..., Any], source: str | None = None) -> str:
    """The default version: the first 16 hex digits of a SHA-256 over the function's own syntax
    tree. Formatting, comments, the docstring and the decorators don't count; any code change does.
    ``source`` overrides the text ``inspect`` finds (notebook cells). Without any source text the
    compiled code stands in (then line moves also count)."""
    try:
        text = source if source is not None else inspect.getsource(fn)
        node = _function_node(ast.parse(textwrap.dedent(text)), fn.__name__)
    except (OSError, TypeError, SyntaxError):
        node = None
    if node is None:
        return hashlib.sha256(_code_fingerprint(fn.__code__)).hexdigest()[:16]
    node.decorator_list = []
    body = node.body
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        node.body = body[1:] if isinstance(first.value.value, str) else body
    dumped = ast.dump(node, annotate_fields=True, include_attributes=False)
    return hashlib.sha256(dumped.encode()).hexdigest()[:16]


def _function_node(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    return None


def _code_fingerprint(code: types.CodeType) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        is_code = isinstance(const, types.CodeType)
        parts.append(_code_fingerprint(const) if is_code else repr(const).encode())
    return b"\x00".join(parts)


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@functools.lru_cache(maxsize=1024)
def _plain(signature: inspect.Signature) -> bool:
    """Whether every parameter is positional (so a full positional call binds as it is)."""
    return all(p.kind in _POSITIONAL for p in signature.parameters.values())


def bind_arguments(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The positional argument list for a call: keywords bound to their parameters, defaults
    applied, ``*args`` extras appended. Keyword-only parameters and ``**kwargs`` can't travel (the
    wire has only positions): they must be left at their defaults."""
    if not kwargs and len(args) == len(signature.parameters) and _plain(signature):
        return list(args)  # the common case, without Signature.bind's cost on every call
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    result: list[Any] = []
    for parameter in signature.parameters.values():
        value = bound.arguments[parameter.name]
        kind = parameter.kind
        if kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            result.append(value)
        elif kind is parameter.VAR_POSITIONAL:
            result.extend(value)
        elif (kind is parameter.KEYWORD_ONLY and value is not parameter.default) or (
            kind is parameter.VAR_KEYWORD and value
        ):
            raise TypeError(
                f"{parameter.name!r}: keyword-only parameters and **kwargs can't be passed to a"
                " target; make the parameter positional"
            )
    return result


class Target(Generic[P, R]):
    """A task or workflow. ``definition`` is what the worker declares to the server."""

    type: TargetType = TargetType.TASK

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        module: str | None = None,
        options: TargetOptions | None = None,
        source: str | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.module = module or fn.__module__
        self.signature = inspect.signature(fn)
        options = options or TargetOptions()
        if options.step.version is None:
            step = replace(options.step, version=code_version(fn, source))
            options = TargetOptions(step=step, retries=options.retries)
        self.options = options
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    @property
    def version(self) -> str:
        return self.options.step.version or ""

    @property
    def definition(self) -> TargetDefinition:
        parameters = describe_parameters(self.signature)
        return TargetDefinition(
            module=self.module,
            name=self.name,
            type=self.type,
            parameters=parameters,
            options=self.options.step,
            version=self.version,
        )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        ctx = context.current()
        if ctx is None:
            return self.fn(*args, **kwargs)
        channel = ctx.channel
        message, encoded, call = self._message(ctx, args, kwargs, awaits=True)
        lease = channel.leased(call) if call is not None else None
        if lease is not None:  # a cache hit this worker may answer itself: no round trip
            channel.record(message, ctx.execution_id, lease)
            value: R = values.decode(lease.outcome.get("value"), channel)
            return value
        request = channel.request(message, ctx.execution_id, encoded, call)
        return Execution[R](channel, request=request, owner=ctx.execution_id).result()

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Execution[R]:
        """Start the target as a child step and return its handle at once (outside an execution:
        run it here and return a finished handle)."""
        ctx = context.current()
        if ctx is None:
            try:
                return LocalExecution(self.fn(*args, **kwargs))
            except Exception as error:
                return LocalExecution(error=error)
        message, encoded, _ = self._message(ctx, args, kwargs, awaits=False)
        request = ctx.channel.request(message, ctx.execution_id, encoded)
        return Execution(ctx.channel, request=request, owner=ctx.execution_id)

    def _message(
        self,
        ctx: context.ExecutionContext,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        awaits: bool,
    ) -> tuple[dict[str, JSON], str | None, Hashable | None]:
        """The submit for a call: the message, the same as JSON text when cheap to make, and what
        identifies an awaited call for cache leases (:mod:`coflux.worker.leases`), if it can have one."""
        if ctx.aborted:
            raise ExecutionCancelled(ctx.execution_id, f"{ctx.execution_id} was aborted")
        channel = ctx.channel
        if not kwargs and len(args) == self._positional:
            bound = list(args)  # the common call, without hashing the signature each time
        else:
            bound = bind_arguments(self.signature, args, kwargs)
        arguments = [values.encode(v, channel) for v in bound]
        request_id, call_index = channel.next_request_id(), ctx.next_call_index()
        options = self._submit_options()
        message = {
            "type": "submit",
            "request_id": request_id,
            "parent_execution_id": ctx.execution_id,
            "call_index": call_index,
            "module": self.module,
            "target": self.name,
            "target_type": self.type.value,
            "arguments": arguments,
            "options": options,
            "await": awaits,
        }
        # The same message as text, its constant part encoded once per target (a chain of calls
        # spends most of its encoding on the options otherwise); in a group, encoded whole.
        encoded = call = None
        if options is self._options_json:
            head = (request_id, json.dumps(ctx.execution_id), call_index, "true" if awaits else "false")
            encoded_arguments = _ENCODE(arguments)
            encoded = _SUBMIT_HEAD % (*head, encoded_arguments) + self._submit_tail
            if awaits and ctx.run_id is not None:
                call = (ctx.run_id, ctx.workspace, self._submit_tail, encoded_arguments)
        return message, encoded, call

    def _submit_options(self) -> dict[str, JSON]:
        options: dict[str, JSON] = self._options_json
        group = context.current_group()
        if group is not None:
            options = {**options, "group": group}
        return options

    @functools.cached_property
    def _options_json(self) -> dict[str, JSON]:
        step_options: dict[str, JSON] = self.options.step.to_json()
        return step_options

    @functools.cached_property
    def _positional(self) -> int:
        """How many positional arguments bind as they are (-1: a call always goes through binding)."""
        return len(self.signature.parameters) if _plain(self.signature) else -1

    @functools.cached_property
    def _submit_tail(self) -> str:
        """``,"module":...,"options":{...}}``: what ends every submit of this target."""
        constant = {
            "module": self.module,
            "target": self.name,
            "target_type": self.type.value,
            "options": self._options_json,
        }
        return "," + _ENCODE(constant)[1:]

    def with_options(self, **options: Unpack[Options]) -> Target[P, R]:
        """A copy of this target with some options replaced, for one call site:
        ``load.with_options(timeout=10).submit(url)``."""
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.__dict__.pop("_options_json", None)
        copy.__dict__.pop("_submit_tail", None)
        copy.options = self.options.updated(**options)
        return copy

    def __repr__(self) -> str:
        return f"<{self.type.value} {self.module}:{self.name}>"


class Task(Target[P, R]):
    type = TargetType.TASK


class Workflow(Target[P, R]):
    type = TargetType.WORKFLOW

    def run(self, *args: Any, project: str | None = None, workspace: str | None = None, **kwargs: Any) -> Run:
        """Start a run of this workflow on the server (settings as for ``cf.Client``)."""
        from coflux.client import Client

        arguments = bind_arguments(self.signature, args, kwargs)
        client = Client(project=project, workspace=workspace)
        return client.start_run(f"{self.module}:{self.name}", *arguments)


def _decorate(
    cls: type[Target[Any, Any]],
    fn: Callable[..., Any] | None,
    name: str | None,
    options: Options,
) -> Any:
    target_options = TargetOptions().updated(**options)

    def decorate(f: Callable[..., Any]) -> Target[Any, Any]:
        return cls(f, name=name, options=target_options)

    return decorate if fn is None else decorate(fn)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *, name: str | None = None, **options: Unpack[Options]
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, **options: Unpack[Options]
) -> Any:
    """Make a function a task: ``@cf.task`` or ``@cf.task(cache=True, retries=3, ...)``.

    Options: ``cache`` (True, seconds or ``cf.Cache``), ``memo`` (True or names), ``retries`` (N,
    True or ``cf.Retries``), ``timeout``/``delay`` (seconds), ``defer``, ``wait`` (True or names),
    ``requires`` (tags), ``version`` (default: a digest of the function's code)."""
    return _decorate(Task, fn, name, options)


@overload
def workflow(fn: Callable[P, R], /) -> Workflow[P, R]: ...


@overload
def workflow(
    *, name: str | None = None, **options: Unpack[Options]
) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...


def workflow(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, **options: Unpack[Options]
) -> Any:
    """Make a function a workflow, an entry point runs start from; options as for :func:`task`."""
    return _decorate(Workflow, fn, name, options)


DESCRIBED_MAX = 8 * 1024
"""Characters of JSON that the defaults and annotations of one target's parameters may take in its
declaration together (the server takes declarations of up to 16 KiB): past it, parameters are
declared without them."""
ANNOTATION_MAX = 200
"""The longest annotation declared (a longer one is left out)."""


def describe_parameters(signature: inspect.Signature) -> tuple[Parameter, ...]:
    """The parameters as declared: kind and whether there is a default (what binding needs), and
    for forms, the default as plain JSON when it is one and the annotation as written."""
    parameters = []
    budget = DESCRIBED_MAX
    for p in signature.parameters.values():
        has_default = p.default is not inspect.Parameter.empty
        default = _plain_default(p.default) if has_default else NO_DEFAULT
        annotation = _annotation(p.annotation)
        size = (_size(default) if default is not NO_DEFAULT else 0) + len(annotation or "")
        if size > budget:
            default, annotation = NO_DEFAULT, None
        else:
            budget -= size
        kind = p.kind.name.lower()
        parameters.append(Parameter(p.name, kind, has_default, default=default, annotation=annotation))
    return tuple(parameters)


def _plain_default(value: object) -> JSON:
    """``value`` itself when it is plain JSON (None, bool, int, finite float, str, lists and dicts
    with text keys of those), else :data:`NO_DEFAULT`."""
    pending = [value]
    seen = 0
    while pending:
        item = pending.pop()
        seen += 1
        if seen > 10_000:  # a structure this big would not fit the declaration anyway
            return NO_DEFAULT
        if type(item) is list:
            pending.extend(item)
        elif type(item) is dict:
            if not all(type(key) is str for key in item):
                return NO_DEFAULT
            pending.extend(item.values())
        elif type(item) is float:
            if not math.isfinite(item):
                return NO_DEFAULT
        elif not (item is None or type(item) in (bool, int, str)):
            return NO_DEFAULT
    return value


def _size(value: JSON) -> int:
    """Characters of ``value`` as JSON (past any budget when it nests too deep to encode)."""
    try:
        return len(_ENCODE(value))
    except RecursionError:
        return DESCRIBED_MAX + 1


def _annotation(annotation: object) -> str | None:
    """The annotation as a short string (``int``, ``list[str]``, ``Path``), or None."""
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):  # postponed (``from __future__ import annotations``)
        text = annotation
    elif isinstance(annotation, type):
        text = annotation.__qualname__
    else:
        text = inspect.formatannotation(annotation)
    return text if 0 < len(text) <= ANNOTATION_MAX else None
