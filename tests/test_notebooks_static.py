"""The notebooks stay thin, stable and free of secrets."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from runbook_lib._runner import NOTEBOOKS
from runbook_lib.notebook import TITLES

ROOT = Path(__file__).resolve().parent.parent
MAX_CODE_LINES = 8


def _load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_shape(name: str) -> None:
    nb = _load(name)
    nbformat.validate(nb)
    assert nb.metadata["runbook"]["title"] == TITLES[name]
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith(f"# {TITLES[name]}")
    ids = [c["id"] for c in nb.cells]
    assert len(ids) == len(set(ids))
    assert {"parameters", "session", "verify"} <= set(ids)
    assert "session.finish()" in nb.cells[-1].source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_comments_every_value_and_holds_no_secret(name: str) -> None:
    params = [c for c in _load(name).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for line in params[0].source.splitlines():
        if line.strip():
            assert "#" in line, f"parameter line without a comment: {line}"
    assert not re.search(r"(?i)(token|secret|password)\s*[:=]", params[0].source)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_code_cells_only_call_the_library(name: str) -> None:
    for cell in _load(name).cells:
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        lines = [line for line in cell.source.splitlines() if line.strip()]
        assert len(lines) <= MAX_CODE_LINES, f"cell {cell['id']} has {len(lines)} lines"
        for line in lines:
            if line.startswith((" ", ")")):
                continue  # the continuation of a call split over several lines
            assert re.match(
                r"^(from runbook_lib[\w.]* import |session\b|session = start\()", line
            ), line


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_have_no_errors(name: str) -> None:
    for cell in _load(name).cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", (
                f"{name} cell {cell['id']} has an error output"
            )
