"""Publishing the docs site: the GitHub Pages workflow, the Read the Docs config, and the build.

Both files are validated against the schemas check-jsonschema ships (SchemaStore's
github-workflows and readthedocs schemas, vendored: no download). The workflow's build step is
then run exactly as written, with the same command and mkdocs.yml, into a temporary folder,
and the site it would deploy must hold every page of the navigation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook_lib._checks import CheckResult, StepResult
from runbook_lib._runner import NOTEBOOKS

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "docs.yml"
READTHEDOCS = ROOT / ".readthedocs.yaml"


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def _steps(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step.get("name", step.get("uses", "")): step for step in job["steps"]}


@pytest.mark.parametrize(
    ("path", "schema"),
    [(WORKFLOW, "vendor.github-workflows"), (READTHEDOCS, "vendor.readthedocs")],
    ids=["github-workflow", "readthedocs"],
)
def test_config_is_valid_against_its_schema(path: Path, schema: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_refreshes_the_notebooks_builds_strictly_and_deploys_to_pages() -> None:
    workflow = _yaml(WORKFLOW)
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["group"] == "pages"
    assert workflow["concurrency"]["cancel-in-progress"] is False

    build = workflow["jobs"]["build"]
    steps = _steps(build)
    order = [step.get("uses", step.get("run", "")) for step in build["steps"]]
    assert order[0].startswith("actions/checkout@")
    assert steps["Set up Python 3.11"]["with"]["python-version"] == "3.11"
    refresh = order.index("make notebooks")  # re-executes the notebooks against the sandbox
    check = order.index(".venv/bin/python -m runbook_lib._errors_doc --check")
    run = steps["Build the site"]["run"]
    assert run.split()[:3] == [".venv/bin/mkdocs", "build", "--strict"]
    assert "--config-file mkdocs.yml" in run and '--site-dir "$SITE_DIR"' in run
    upload = next(i for i, u in enumerate(order) if u.startswith("actions/upload-pages-artifact@"))
    assert refresh < check < order.index(run) < upload
    assert build["steps"][upload]["with"]["path"] == build["env"]["SITE_DIR"]

    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert "steps.deployment.outputs.page_url" in deploy["environment"]["url"]
    (step,) = deploy["steps"]
    assert step["id"] == "deployment" and step["uses"].startswith("actions/deploy-pages@")


def test_readthedocs_builds_the_same_config_with_python_3_11() -> None:
    config = _yaml(READTHEDOCS)
    assert config["version"] == 2
    assert config["build"]["os"] in ("ubuntu-22.04", "ubuntu-24.04")
    assert config["build"]["tools"]["python"] == "3.11"
    assert config["mkdocs"] == {"configuration": "mkdocs.yml", "fail_on_warning": True}
    (install,) = config["python"]["install"]
    assert install == {"method": "pip", "path": ".", "extra_requirements": ["dev"]}
    workflow = _yaml(WORKFLOW)
    python = _steps(workflow["jobs"]["build"])["Set up Python 3.11"]["with"]["python-version"]
    assert python == config["build"]["tools"]["python"]


def _nav_pages(nav: list[Any]) -> list[str]:
    pages: list[str] = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_workflow_build_step_builds_every_page(tmp_path: Path) -> None:
    workflow = _yaml(WORKFLOW)
    build = workflow["jobs"]["build"]
    site = tmp_path / "site"
    env = {**os.environ, **build["env"], "SITE_DIR": str(site), "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        ["bash", "-e", "-c", _steps(build)["Build the site"]["run"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    pages = _nav_pages(config["nav"])
    assert {f"notebooks/{name}.ipynb" for name in NOTEBOOKS} <= set(pages)
    for page in pages:
        folder = "" if page == "index.md" else re.sub(r"\.(md|ipynb)$", "", page) + "/"
        html = (site / folder / "index.html").read_text(encoding="utf-8")
        assert "stylesheets/extra.css" in html, page
        if page.endswith(".ipynb"):
            assert "session.finish()" in html and "check(s) passed" in html, page
    assert (site / "stylesheets" / "extra.css").is_file()
    errors = (site / "errors" / "index.html").read_text(encoding="utf-8")
    assert "What you see" in errors and "What to do" in errors
    assert "Could not reach the sign-in authority" in errors
    article = errors[errors.index("<article") :]  # after the navigation and the contents list
    assert article.index("What you see") < article.index("For developers: the exception tree")


def test_step_tables_name_the_status_in_words() -> None:
    result = StepResult(
        "01-connect",
        "Connect",
        checks=[
            CheckResult.passed("Signed in", "yes"),
            CheckResult.failed("Iru SCIM pre-flight", "no answer", "Check the URL."),
            CheckResult.warned("Permissions", "could not be read"),
        ],
    )
    html = result._repr_html_()
    assert "<th>Status</th>" in html
    for word, symbol in (("pass", "✅"), ("fail", "❌"), ("warn", "⚠️")):
        cell = f'<td class="runbook-status runbook-status-{word}">'
        assert f'{cell}<span aria-hidden="true">{symbol}</span> {word}</td>' in html
