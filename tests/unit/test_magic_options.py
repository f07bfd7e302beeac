"""The magics' options map onto the decorator's, and bad ones are cell errors with a clear message."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from coflux.notebook.kernel import module_name_for
from coflux.notebook.magics import _target_parser, target_options
from coflux.worker import Cache, Retries
from coflux.worker.options import TargetOptions


def options(line: str) -> dict[str, object]:
    return target_options(_target_parser("%%coflux_task").parse_args(line.split()))


def test_each_option_reaches_the_decorator_form() -> None:
    assert options("") == {}
    assert options("--cache") == {"cache": True}
    assert options("--cache --cache-max-age 60 --cache-params a,b --cache-namespace ns") == {
        "cache": Cache(max_age=60.0, params=["a", "b"], namespace="ns")
    }
    assert options("--memo") == {"memo": True}
    assert options("--memo a,b --defer --wait x") == {"memo": ["a", "b"], "defer": True, "wait": ["x"]}
    assert options("--retries 3 --backoff 1,5") == {"retries": Retries(limit=3, backoff=(1.0, 5.0))}
    assert options("--timeout 2.5 --delay 1 --version v7") == {"timeout": 2.5, "delay": 1.0, "version": "v7"}
    assert options("--requires gpu=a100 --requires gpu=h100 --requires zone=eu") == {
        "requires": {"gpu": ["a100", "h100"], "zone": ["eu"]}
    }


def test_the_options_are_valid_target_options() -> None:
    step = TargetOptions().updated(**options("--cache-max-age 5 --retries 2 --timeout 3 --requires k=v")).step
    assert isinstance(step.cache, dict) and step.cache["max_age"] == 5.0
    assert step.retries.limit == 2 and step.timeout == 3.0 and step.requires == {"k": ["v"]}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--bogus", "unrecognized arguments: --bogus"),
        ("--retries many", "invalid int value"),
        ("--backoff 1", "--backoff takes MIN,MAX"),
        ("--requires gpu", "--requires takes KEY=VALUE"),
    ],
)
def test_bad_options_are_usage_errors(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        options(line)


def test_a_notebook_module_is_named_after_its_file() -> None:
    assert module_name_for("/home/ana/work/Weather report.ipynb") == "Weather_report"
    assert module_name_for("pipeline.ipynb") == "pipeline"
    assert module_name_for(None) == "notebook"
    assert module_name_for("/x/---.ipynb") == "notebook"
