"""`coflux run NOTEBOOK --param K=V` with a K the notebook doesn't have is a usage error (exit 2)
that names the parameters it has; nothing is started."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coflux.cli import main
from coflux.headless import declared_parameters


def _notebook(folder: Path, *cells: object) -> Path:
    path = folder / "report.ipynb"
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


PARAMETERS = {"tags": ["parameters"]}


def test_the_parameters_are_the_names_the_tagged_cell_assigns() -> None:
    notebook = new_notebook(
        cells=[
            new_code_cell("x = 1"),
            new_code_cell(
                "%load_ext coflux\nn = 3\nrate: float = 0.5\nlow, (high, *rest) = 1, (2, 3)\n"
                "expected = n * rate\nconfig['k'] = 1\nn = 4\nprint(n)",
                metadata=PARAMETERS,
            ),
        ]
    )
    assert declared_parameters(notebook) == ["n", "rate", "low", "high", "rest", "expected"]
    assert declared_parameters(new_notebook(cells=[new_code_cell("n = 1")])) == []
    broken = new_notebook(cells=[new_code_cell("n = (", metadata=PARAMETERS)])
    assert declared_parameters(broken) is None  # can't tell: nothing is refused


def test_an_unknown_parameter_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    notebook = _notebook(
        tmp_path, new_markdown_cell("# Report"), new_code_cell("n = 3\nlabel = 'x'", metadata=PARAMETERS)
    )
    outcome = CliRunner().invoke(main, ["run", str(notebook), "--param", "n=5", "--param", "m=5"])
    assert outcome.exit_code == 2
    assert (
        "the notebook has no parameter 'm'; its parameters are n, label (assigned in the cell tagged "
        "'parameters')"
    ) in " ".join(outcome.stderr.split())
    assert "Traceback" not in outcome.stderr


@pytest.mark.parametrize("cells", [[new_code_cell("n = 3")], []])
def test_a_notebook_without_parameters_takes_none(tmp_path: Path, cells: list[object]) -> None:
    outcome = CliRunner().invoke(main, ["run", str(_notebook(tmp_path, *cells)), "-p", "n=5"])
    assert outcome.exit_code == 2
    assert "the notebook has no parameters to set (no cell is tagged 'parameters')" in " ".join(
        outcome.stderr.split()
    )
