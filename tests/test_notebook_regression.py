"""pytest-notebook: the committed notebooks' outputs still match a fresh sandbox run.

The committed notebooks carry the outputs the docs site shows (``make notebooks`` refreshes
them). Re-executing them in order against a new sandbox with the same seed must reproduce those
outputs; only the sandbox's ephemeral ports are masked. A diff means a change altered what
admins and docs readers see, and the notebooks need refreshing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytest_notebook.nb_regression import NBRegressionFixture

from runbook_lib._runner import NOTEBOOKS

ROOT = Path(__file__).resolve().parent.parent
PORT = (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT")


def test_committed_notebooks_reproduce_on_a_fresh_sandbox(sandbox) -> None:
    env = {**os.environ, **sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.2"}
    env.pop("RUNBOOK_RESULTS_DIR", None)
    fixture = NBRegressionFixture(
        exec_timeout=120,
        exec_cwd=str(ROOT / "notebooks"),
        exec_env=env,
        diff_ignore=(
            "/cells/*/outputs/*/traceback",
            "/cells/*/metadata/execution",
            "/metadata/language_info",
            "/metadata/widgets",
        ),
        diff_replace=(
            ("/cells/*/outputs/*/text", *PORT),
            ("/cells/*/outputs/*/data/text/plain", *PORT),
            ("/cells/*/outputs/*/data/text/html", *PORT),
        ),
        diff_use_color=False,
    )
    failures = []
    for name in NOTEBOOKS:
        result = fixture.check(str(ROOT / "notebooks" / f"{name}.ipynb"), raise_errors=False)
        if result.diff_filtered:
            failures.append(f"{name}:\n{result.diff_string}")
    if failures:
        pytest.fail(
            "Notebook outputs changed; run `make notebooks` if intended.\n" + "\n".join(failures)
        )
