"""The example notebooks run headlessly with `coflux run` (an embedded server, the notebook's kernel as
the worker, targets defined with the magics), and a failing workflow fails the command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.support.harness import ROOT, coflux_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    """A copy of the example notebooks, so that outputs never land in the repository."""
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, folder)
    return folder


def test_the_ci_notebook_takes_parameters_and_reports_its_run(notebooks: Path) -> None:
    result = coflux_run(notebooks / "ci.ipynb", "--param", "n=5", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    [run] = report["runs"]
    assert run["workflow"] == "ci:sum_of_squares" and run["arguments"] == [5]
    assert run["status"] == "succeeded" and run["result"] == 30
    assert run["steps"] == 6  # the workflow and its five squares

    text = coflux_run(notebooks / "ci.ipynb", "--param", "n=5")
    assert text.returncode == 0, text.stdout + text.stderr
    assert "ci:sum_of_squares(5)" in text.stdout and "succeeded" in text.stdout
    assert "result: 30" in text.stdout


def test_the_quickstart_notebook_runs_and_its_run_tree_is_saved(notebooks: Path) -> None:
    output = notebooks / "quickstart.out.ipynb"
    result = coflux_run(notebooks / "quickstart.ipynb", "--output", str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "quickstart:weather" in result.stdout and "succeeded" in result.stdout
    executed = nbformat.read(output, as_version=4)
    widget_views = [
        out
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]
    assert widget_views, "the run displays as its run tree widget"
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    trees = [m["state"] for m in state.values() if "run" in m["state"] and "view" in m["state"]]
    assert any(tree["run"].get("status") == "succeeded" for tree in trees), "saved in its final state"


def test_the_workspaces_notebook_shows_inheritance_and_a_rerun(notebooks: Path) -> None:
    result = coflux_run(notebooks / "workspaces.ipynb", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [(r["workflow"], r["workspace"], r["status"]) for r in runs] == [
        ("workspaces:experiment", "production", "succeeded"),
        ("workspaces:experiment", "dev", "succeeded"),
    ]


def test_a_failing_workflow_fails_the_notebook_and_names_the_step(tmp_path: Path) -> None:
    notebook = tmp_path / "report.ipynb"
    cells = [
        "%%coflux_task\ndef parse(text):\n    return int(text)",
        "%%coflux_workflow\ndef report(rows):\n    return sum(parse(r) for r in rows)",
        "run = report.run(['1', 'two', '3'])",
    ]
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), notebook)
    result = coflux_run(notebook)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "report:report" in result.stdout and "failed" in result.stdout
    assert "report:parse" in result.stdout, "the step where the error began"
    assert "ValueError: invalid literal for int() with base 10: 'two'" in result.stdout


def test_the_assets_notebook_persists_a_plot_and_a_csv_and_shows_them(notebooks: Path) -> None:
    output = notebooks / "assets.out.ipynb"
    result = coflux_run(notebooks / "assets.ipynb", "--output", str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "assets:weather(14)" in result.stdout and "succeeded" in result.stdout
    assert "assets:report(DataFrame 14\u00d72 (day: int64, temp: float64))" in result.stdout, (
        "the DataFrame passed between the steps"
    )
    executed = nbformat.read(output, as_version=4)
    texts = [
        out["data"].get("text/plain", "")
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "data" in out
    ]
    assert "(['temperatures.csv', 'temperatures.png'], 109)" in texts
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    [viewer] = [m["state"]["asset"] for m in state.values() if m["state"].get("asset")]
    assert viewer["name"] == "report"
    previews = viewer["previews"]
    assert previews["temperatures.png"]["kind"] == "image" and previews["temperatures.png"]["b64"]
    table = previews["temperatures.csv"]
    assert table["columns"] == ["day", "temp"] and table["shape"] == [14, 2]
