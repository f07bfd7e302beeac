"""Targets and their options: what the decorators declare, how calls bind, code-aware versions."""

from __future__ import annotations

import datetime
import textwrap
from typing import Any

import pytest

import coflux.worker as cf
from coflux.models import Parameter, RetryPolicy, TargetType
from coflux.worker.execution import LocalExecution
from coflux.worker.options import UNLIMITED_RETRIES
from coflux.worker.targets import bind_arguments, code_version


def _version(source: str, decorator: str = "@cf.task()") -> str:
    """The default version of a target defined from source text (as a notebook cell would)."""
    namespace: dict[str, Any] = {"cf": cf, "__name__": "cells"}
    text = f"{decorator}\n{textwrap.dedent(source)}"
    exec(compile(text, "<cell>", "exec"), namespace)
    target = next(v for v in namespace.values() if isinstance(v, cf.Target))
    # exec'd code has no file to read back: pass the text, as the notebook magics do.
    return code_version(target.fn, source=text)


def test_decorator_options_become_the_definition() -> None:
    @cf.task(
        name="fetch",
        cache=cf.Cache(max_age=60, params=["url"], namespace="ns"),
        memo=["url"],
        retries=cf.Retries(3, backoff=(1, 30), when=ConnectionError),
        timeout=datetime.timedelta(minutes=2),
        delay=5,
        defer=True,
        wait=["url"],
        requires={"gpu": True, "region": ["eu", "us"]},
        version="v7",
    )
    def load(url: str, retries: int = 2, *extra: str) -> bytes:
        return url.encode()

    definition = load.definition
    assert (definition.module, definition.name, definition.type) == (
        __name__,
        "fetch",
        TargetType.TASK,
    )
    assert definition.version == "v7"
    assert definition.parameters == (
        Parameter("url", "positional_or_keyword", False, annotation="str"),
        Parameter("retries", "positional_or_keyword", True, default=2, annotation="int"),
        Parameter("extra", "var_positional", False, annotation="str"),
    )
    options = definition.to_json()["options"]
    assert options == {
        "retries": {
            "limit": 3,
            "backoff_min": 1.0,
            "backoff_max": 30.0,
            "when": ["builtins.ConnectionError"],
        },
        "timeout": 120.0,
        "delay": 5.0,
        "cache": {"max_age": 60.0, "params": ["url"], "namespace": "ns", "version": None},
        "memo": ["url"],
        "defer": True,
        "wait": ["url"],
        "version": "v7",
        "requires": {"gpu": ["true"], "region": ["eu", "us"]},
    }


def test_bare_decorator_and_workflow_type() -> None:
    @cf.workflow
    def pipeline(x: int) -> int:
        return x

    @cf.task
    def step() -> None:
        pass

    assert isinstance(pipeline, cf.Workflow)
    assert pipeline.definition.type is TargetType.WORKFLOW
    assert step.definition.type is TargetType.TASK
    assert step.definition.to_json()["options"] == {
        "retries": RetryPolicy().to_json(),
        "version": step.version,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, RetryPolicy()),
        (2, RetryPolicy(limit=2)),
        (True, RetryPolicy(limit=UNLIMITED_RETRIES, backoff_min=1.0, backoff_max=60.0)),
        (cf.Retries(5, backoff=(2, 10)), RetryPolicy(limit=5, backoff_min=2.0, backoff_max=10.0)),
        (
            cf.Retries(1, when=(KeyError, OSError)),
            RetryPolicy(limit=1, when=("builtins.KeyError", "builtins.OSError")),
        ),
        (cf.Retries(1, when=lambda e: True), RetryPolicy(limit=1)),
    ],
)
def test_retries_forms(value: Any, expected: RetryPolicy) -> None:
    @cf.task(retries=value)
    def flaky() -> None:
        pass

    assert flaky.definition.options.retries == expected


def test_retries_predicate_verdict_is_worker_side() -> None:
    retries = cf.Retries(3, when=lambda e: "transient" in str(e))
    target = cf.task(retries=retries)(lambda: None)
    assert target.options.retryable(RuntimeError("transient glitch")) is True
    assert target.options.retryable(RuntimeError("bad input")) is False
    by_type = cf.task(retries=cf.Retries(3, when=OSError))(lambda: None)
    assert by_type.options.retryable(FileNotFoundError("x")) is True  # subclasses count
    assert by_type.options.retryable(ValueError("x")) is False
    assert cf.task(retries=3)(lambda: None).options.retryable(ValueError()) is None


def test_bad_option_values_are_refused() -> None:
    with pytest.raises(ValueError, match="backoff"):
        cf.Retries(3, backoff=(10, 1))
    with pytest.raises(TypeError, match="when"):
        cf.Retries(3, when="ValueError")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        cf.task(timeout=-1)(lambda: None)
    with pytest.raises(TypeError, match="unknown target option"):
        cf.task(lambda: None).with_options(colour="red")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("cache", "expected"),
    [
        (True, {"max_age": None, "params": None, "namespace": None, "version": None}),
        (3600, {"max_age": 3600.0, "params": None, "namespace": None, "version": None}),
        (
            cf.Cache(params="a"),
            {"max_age": None, "params": ["a"], "namespace": None, "version": None},
        ),
        (False, None),
    ],
)
def test_cache_forms(cache: Any, expected: Any) -> None:
    target = cf.task(cache=cache)(lambda a: a)
    assert target.definition.options.cache == expected


def test_with_options_overrides_one_call_site_only() -> None:
    @cf.task(timeout=10, retries=2)
    def work(x: int) -> int:
        return x

    quick = work.with_options(timeout=1, memo=True)
    assert quick.definition.options.timeout == 1.0
    assert quick.definition.options.memo is True
    assert quick.definition.options.retries.limit == 2
    assert work.definition.options.timeout == 10.0
    assert work.definition.options.memo is None
    assert quick(3) == 3


def test_keyword_arguments_bind_to_positions_with_defaults() -> None:
    def f(a: int, b: int = 2, c: str = "x") -> None: ...

    import inspect

    signature = inspect.signature(f)
    assert bind_arguments(signature, (1,), {"c": "y"}) == [1, 2, "y"]
    assert bind_arguments(signature, (), {"b": 5, "a": 0}) == [0, 5, "x"]
    with pytest.raises(TypeError):
        bind_arguments(signature, (), {"b": 5})

    def g(a: int, *rest: int, flag: bool = False) -> None: ...

    signature = inspect.signature(g)
    assert bind_arguments(signature, (1, 2, 3), {}) == [1, 2, 3]
    with pytest.raises(TypeError, match="keyword-only"):
        bind_arguments(signature, (1,), {"flag": True})


def test_outside_an_execution_calls_run_locally() -> None:
    calls: list[tuple[int, int]] = []

    @cf.task()
    def add(a: int, b: int = 10) -> int:
        calls.append((a, b))
        return a + b

    @cf.workflow()
    def total(xs: list[int]) -> int:
        handles = [add.submit(x) for x in xs]
        return sum(h.result() for h in handles) + add(0, b=1)

    assert total([1, 2]) == 11 + 12 + 1
    assert calls == [(1, 10), (2, 10), (0, 1)]

    @cf.task()
    def broken() -> None:
        raise KeyError("nope")

    handle = broken.submit()
    assert isinstance(handle, LocalExecution)
    with pytest.raises(KeyError):
        handle.result()


def test_version_ignores_formatting_comments_and_docstring() -> None:
    original = _version(
        """
        def clean(rows):
            return [r.strip() for r in rows if r]
        """
    )
    reformatted = _version(
        '''
        def clean(rows):
            """Drop empty rows."""
            # strip whitespace
            return [
                r.strip()   for r in rows
                if r
            ]
        ''',
        decorator="@cf.task(retries=3)",
    )
    assert len(original) == 16
    assert original == reformatted


def test_version_changes_when_the_code_changes() -> None:
    original = _version("def clean(rows):\n    return [r.strip() for r in rows if r]\n")
    changed = _version("def clean(rows):\n    return [r.lower() for r in rows if r]\n")
    assert original != changed


def test_version_of_a_module_function_reads_its_source() -> None:
    def here(x: int) -> int:
        return x + 1

    assert code_version(here) == code_version(here, source="def here(x: int) -> int: return x+1")
    assert cf.task(here).version == code_version(here)
    assert cf.task(version="pinned")(here).version == "pinned"


def test_log_functions_outside_an_execution_use_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="coflux"):
        cf.log_info("loaded {n} rows", n=3)
        cf.log_warning(x=1)
    assert [r.getMessage() for r in caplog.records] == ["loaded 3 rows", "x=1"]
