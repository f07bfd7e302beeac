"""Notebook parameters, as papermill takes them: values read like its ``-p``, and a cell tagged
``injected-parameters`` put right after the cell tagged ``parameters``."""

from __future__ import annotations

import ast
import keyword
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat

from coflux.errors import ConfigurationError

Parameter = int | float | bool | str | None
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


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


def declared_parameters(notebook: Any) -> list[str] | None:
    """The names the first cell tagged ``parameters`` assigns at its top level, in order (``[]``
    without such a cell); None when its code can't be read (then nobody can tell)."""
    cell = next((c for c in notebook.cells if _tagged(c, PARAMETERS_TAG)), None)
    if cell is None:
        return []
    lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return None
    names: dict[str, None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            names.update(dict.fromkeys(_assigned(target)))
    return list(names)


def _assigned(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _assigned(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _assigned(element)]
    return []  # an attribute or a subscript: not a parameter of its own


def check_parameters(notebook: Any, parameters: Mapping[str, Parameter]) -> None:
    """Raise ``ValueError`` naming the known parameters when ``parameters`` has a key that the
    notebook's ``parameters`` cell doesn't assign (the value would set a name nothing reads)."""
    known = declared_parameters(notebook)
    if known is None or not parameters:
        return
    unknown = [key for key in parameters if key not in known]
    if not known:
        raise ValueError(
            f"the notebook has no parameters to set (no cell is tagged {PARAMETERS_TAG!r}): "
            f"--param {', '.join(unknown)} would set names it never reads"
        )
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        raise ValueError(
            f"the notebook has no parameter {listed}; its parameters are {', '.join(known)} "
            f"(assigned in the cell tagged {PARAMETERS_TAG!r})"
        )


def read_notebook(path: Path) -> Any:
    """The notebook at ``path`` (nbformat 4); ``ConfigurationError`` if it isn't one."""
    try:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError, nbformat.ValidationError) as err:  # JSON errors are ValueErrors
        raise ConfigurationError(f"cannot read notebook {path}: {err}") from err
    return notebook


# -- results --------------------------------------------------------------------------------------
