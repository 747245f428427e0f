"""pytest-notebook: the committed notebooks' outputs still match a fresh sandbox run.

The committed notebooks carry the outputs the docs site shows (``make notebooks`` refreshes
them). Re-executing them in order against a new sandbox with the same seed must reproduce those
outputs; only the sandbox's ephemeral ports are masked. A diff means a change altered what
admins and docs readers see, and the notebooks need refreshing.
"""

from __future__ import annotations

import os
from pathlib import Path

import papermill as pm
import pytest
from pytest_notebook.nb_regression import NBRegressionFixture

from runbook_lib._runner import NOTEBOOKS, load_parameters

ROOT = Path(__file__).resolve().parent.parent
PORT = (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT")
WHEN = (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TIMESTAMP")


def test_committed_notebooks_reproduce_on_a_fresh_sandbox(sandbox, tmp_path: Path) -> None:
    env = {**os.environ, **sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.2"}
    # One run folder for all pages, as `runbook run` (and so `make notebooks`) gives them: page
    # 08 then reuses page 07's comparison and says so, as in the committed outputs.
    (tmp_path / "run").mkdir()
    env["RUNBOOK_RESULTS_DIR"] = str(tmp_path / "run")
    fixture = NBRegressionFixture(
        exec_timeout=120,
        exec_cwd=str(ROOT / "notebooks"),
        exec_env=env,
        diff_ignore=(
            "/cells/*/outputs/*/traceback",
            "/cells/*/metadata/execution",
            "/metadata/language_info",
            "/metadata/widgets",
            "/metadata/papermill",
            "/cells/*/metadata/papermill",
            "/cells/*/execution_count",
            "/cells/*/outputs/*/execution_count",
        ),
        diff_replace=tuple(
            (path, *pattern)
            for path in (
                "/cells/*/outputs/*/text",
                "/cells/*/outputs/*/data/text/plain",
                "/cells/*/outputs/*/data/text/html",
            )
            for pattern in (PORT, WHEN)
        ),
        diff_use_color=False,
    )
    pages = load_parameters(ROOT / "parameters" / "sandbox.yaml")
    failures = []
    for name in NOTEBOOKS:
        path = ROOT / "notebooks" / f"{name}.ipynb"
        if name in pages:
            # The committed outputs came from a run with the sandbox's parameters: inject them
            # the same way (papermill keeps the stored outputs when it only prepares).
            prepared = tmp_path / path.name
            pm.execute_notebook(
                str(path),
                str(prepared),
                parameters=pages[name],
                prepare_only=True,
                progress_bar=False,
            )
            path = prepared
        result = fixture.check(str(path), raise_errors=False)
        if result.diff_filtered:
            failures.append(f"{name}:\n{result.diff_string}")
    if failures:
        pytest.fail(
            "Notebook outputs changed; run `make notebooks` if intended.\n" + "\n".join(failures)
        )
