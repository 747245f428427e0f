"""Packaging rules: pinned dependencies, the conda file in step, a typed public API."""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_dependency_has_lower_and_upper_bounds() -> None:
    project = _pyproject()["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    for dep in deps:
        assert re.search(r">=[\d.]+", dep), f"{dep} has no lower bound"
        assert re.search(r"<[\d.]+", dep), f"{dep} has no upper bound"


def test_environment_yml_lists_the_same_set_as_pyproject() -> None:
    project = _pyproject()["project"]
    expected = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_lists, "environment.yml has no pip section"
    assert set(pip_lists[0]) == expected
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python == ["python>=3.11,<3.14"]


def test_mkdocs_jupyter_stays_on_the_line_that_supports_python_3_11() -> None:
    dev = _pyproject()["project"]["optional-dependencies"]["dev"]
    assert "mkdocs-jupyter>=0.26.3,<0.27" in dev


def test_every_module_declares_all_and_the_package_is_typed() -> None:
    import runbook_lib

    assert (Path(runbook_lib.__file__).parent / "py.typed").exists()
    for info in pkgutil.walk_packages(runbook_lib.__path__, "runbook_lib."):
        module = importlib.import_module(info.name)
        if info.name.endswith("__main__"):
            continue
        assert hasattr(module, "__all__"), f"{info.name} has no __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"


def test_readme_gives_the_two_commands_and_ci_calls_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
