"""Workflows for the command-line tests: a pipeline that fails until a file exists, a workflow
whose task only a worker of ``e2e_cli_parse`` serves, and a step that logs."""

from __future__ import annotations

from pathlib import Path

import e2e_cli_parse  # its task is served only by a worker given that module

import coflux as cf


@cf.task()
def load(name: str) -> list[int]:
    cf.log_info("loading {name}", name=name)
    print("three rows")
    return [1, 2, 3]


@cf.task()
def check(row: int, fixed: str) -> int:
    if row == 3 and not Path(fixed).exists():
        raise ValueError(f"bad row {row}")
    return row * 10


@cf.workflow()
def pipeline(name: str, fixed: str) -> int:
    return sum(check(row, fixed) for row in load(name))


@cf.workflow()
def report(name: str) -> str:
    return e2e_cli_parse.parse(name)


@cf.workflow()
def quiet(n: int) -> int:
    return n


@cf.task()
def pair(key: tuple[int, int]) -> dict[tuple[int, int], bytes]:
    return {key: b"ab"}


@cf.workflow()
def keyed(n: int) -> dict[int, dict[tuple[int, int], bytes]]:
    return {n: pair((n, n))}
