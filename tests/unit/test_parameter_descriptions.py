"""What a worker declares of each parameter for forms (its default as plain JSON, its annotation as
written), what the server accepts of it, and how a declaration without them reads."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import pytest

from coflux.errors import ProtocolError
from coflux.models import NO_DEFAULT, Parameter, TargetDefinition
from coflux.orchestrator import checks
from coflux.worker.targets import ANNOTATION_MAX, DESCRIBED_MAX, describe_parameters


def _described(fn: Any) -> list[dict[str, Any]]:
    return [p.to_json() for p in describe_parameters(inspect.signature(fn))]


def test_plain_json_defaults_and_annotations_are_declared() -> None:
    def flow(
        name: str,
        times: int = 2,
        ratio: float = 0.5,
        tags: list[str] = ["a", "b"],  # noqa: B006
        options: dict[str, Any] = {"deep": [1, None, True]},  # noqa: B006
        nothing: None = None,
        *rest: int,
        flag: bool = False,
        **more: str,
    ) -> None: ...

    assert _described(flow) == [
        {"name": "name", "kind": "positional_or_keyword", "has_default": False, "annotation": "str"},
        {
            "name": "times",
            "kind": "positional_or_keyword",
            "has_default": True,
            "default": 2,
            "annotation": "int",
        },
        {
            "name": "ratio",
            "kind": "positional_or_keyword",
            "has_default": True,
            "default": 0.5,
            "annotation": "float",
        },
        {
            "name": "tags",
            "kind": "positional_or_keyword",
            "has_default": True,
            "default": ["a", "b"],
            "annotation": "list[str]",
        },
        {
            "name": "options",
            "kind": "positional_or_keyword",
            "has_default": True,
            "default": {"deep": [1, None, True]},
            "annotation": "dict[str, Any]",
        },
        {
            "name": "nothing",
            "kind": "positional_or_keyword",
            "has_default": True,
            "default": None,
            "annotation": "None",
        },
        {"name": "rest", "kind": "var_positional", "has_default": False, "annotation": "int"},
        {"name": "flag", "kind": "keyword_only", "has_default": True, "default": False, "annotation": "bool"},
        {"name": "more", "kind": "var_keyword", "has_default": False, "annotation": "str"},
    ]


def test_defaults_json_cannot_carry_are_left_out_but_still_counted() -> None:
    loop: list[Any] = []
    loop.append(loop)

    class Count(int):
        pass

    three = Count(3)  # JSON would carry 3, but the worker's default is a Count

    def flow(  # and no annotations at all
        path=Path("."),
        nan=math.nan,
        pair=(1, 2),
        keys={1: "one"},  # noqa: B006
        nested=[{"ok": 1}, {2}],  # noqa: B006
        cycle=loop,
        subclass=three,
        plain=True,
    ) -> None: ...

    described = describe_parameters(inspect.signature(flow))
    assert [p.has_default for p in described] == [True] * 8
    assert [p.default is NO_DEFAULT for p in described] == [True] * 7 + [False]
    assert [p.annotation for p in described] == [None] * 8
    assert "default" not in described[0].to_json()
    assert "annotation" not in described[0].to_json()


def test_evaluated_annotations_read_short() -> None:
    def flow(a, b, c, d):  # annotated below with evaluated objects, not strings
        ...

    flow.__annotations__ = {"a": Path, "b": list[Path], "c": int | None, "d": "list[Path]"}
    assert [p.annotation for p in describe_parameters(inspect.signature(flow))] == [
        "Path",
        "list[pathlib.Path]",
        "int | None",
        "list[Path]",
    ]


def test_what_a_declaration_carries_is_bounded() -> None:
    big = "x" * (DESCRIBED_MAX // 2)

    def flow(a: str = big, b: str = big, c: int = 1) -> None: ...

    flow.__annotations__["c"] = "int" * ANNOTATION_MAX
    a, b, c = describe_parameters(inspect.signature(flow))
    assert (a.default, a.annotation) == (big, "str")
    assert (b.default, b.annotation) == (NO_DEFAULT, None)  # past the budget: left out
    assert (c.default, c.annotation) == (1, None)  # an annotation too long is left out


def _declare(parameters: list[dict[str, Any]]) -> TargetDefinition:
    [target] = checks.declarations(
        [{"module": "m", "name": "f", "type": "workflow", "parameters": parameters}]
    )
    return target


def test_the_server_checks_and_keeps_them() -> None:
    target = _declare(
        [{"name": "a", "has_default": True, "default": {"k": [1.5, None]}, "annotation": "dict"}]
    )
    assert target.parameters == (
        Parameter("a", has_default=True, default={"k": [1.5, None]}, annotation="dict"),
    )
    assert target.to_json()["parameters"] == [
        {
            "name": "a",
            "kind": "positional_or_keyword",
            "has_default": True,
            "default": {"k": [1.5, None]},
            "annotation": "dict",
        }
    ]
    assert _declare([{"name": "a", "has_default": True, "default": None}]).parameters[0].default is None
    for bad in (
        {"name": "a", "default": math.inf},
        {"name": "a", "default": [1, math.nan]},
        {"name": "a", "annotation": 3},
        {"name": "a", "annotation": "x" * (checks.NAME_MAX + 1)},
    ):
        with pytest.raises(ProtocolError, match="bad target declaration: a parameter's"):
            _declare([bad])


def test_a_declaration_stored_without_them_reads_as_before() -> None:
    old = {
        "module": "m",
        "name": "f",
        "type": "workflow",
        "parameters": [{"name": "a", "kind": "positional_or_keyword", "has_default": True}],
    }
    definition = TargetDefinition.from_json(old)
    assert definition.parameters == (Parameter("a", has_default=True),)
    assert definition.parameters[0].default is NO_DEFAULT
    assert definition.to_json()["parameters"] == old["parameters"]
    assert hash(definition.parameters[0]) == hash(Parameter("a", has_default=True, default=[1]))
