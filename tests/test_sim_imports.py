"""The sandbox's imports run one way, stay on their side of the library line, and are drawn.

Every import of every module counts, wherever it is written: at module level, inside a
function, and under ``if TYPE_CHECKING:`` too (a circle only a type checker sees still
means neither module can be read or moved without the other). The checks themselves live
in ``scripts/sim_imports.py``, which also draws ``docs/sandbox-imports.md``; this test
loads that script and fails on:

* a circle between modules of ``runbook_lib.sim``;
* an import from one part of the sandbox (``graph``, ``tenant``...) into a part that is
  not below it in ``LAYERS``;
* the sandbox importing the library, or the library importing the sandbox other than in
  the two launchers, through the public ``runbook_lib.sim``;
* a committed drawing that no longer matches the imports.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sim_imports", ROOT / "scripts" / "sim_imports.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sandbox(tool: ModuleType) -> dict[str, object]:
    return dict(tool.read_package(ROOT / "runbook_lib" / "sim", "runbook_lib.sim"))


def test_no_module_of_the_sandbox_imports_itself_through_others(
    tool: ModuleType, sandbox: dict[str, object]
) -> None:
    cycle = tool.find_cycle(sandbox)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_every_arrow_between_parts_points_down(
    tool: ModuleType, sandbox: dict[str, object]
) -> None:
    assert tool.layer_problems(sandbox) == []


def test_the_sandbox_and_the_library_do_not_reach_into_each_other(tool: ModuleType) -> None:
    library = tool.read_package(ROOT / "runbook_lib", "runbook_lib")
    assert tool.boundary_problems(library) == []


def test_the_committed_drawing_is_current(tool: ModuleType, sandbox: dict[str, object]) -> None:
    assert tool.PAGE == ROOT / "docs" / "sandbox-imports.md"
    if tool.PAGE.read_text(encoding="utf-8") != tool.render_page(sandbox):
        pytest.fail(
            "docs/sandbox-imports.md does not match the sandbox's imports: run "
            "`.venv/bin/python scripts/sim_imports.py` and commit the page."
        )


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "pkg"


def test_a_circle_is_found_through_functions_and_type_checking(
    tool: ModuleType, tmp_path: Path
) -> None:
    """The check is not fooled by the two usual ways of hiding a circle."""
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "_a.py": """
                def later():
                    from ._b import thing
                    return thing
                """,
            "_b.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from .sub import _c
                thing = 1
                """,
            "sub/__init__.py": "",
            "sub/_c.py": "from .. import _a\n",
        },
    )
    cycle = tool.find_cycle(tool.read_package(package, "pkg"))
    assert cycle == ["pkg._a", "pkg._b", "pkg.sub._c", "pkg._a"]


def test_an_upward_arrow_and_a_reach_into_the_library_are_reported(tool: ModuleType) -> None:
    def module(name: str, target: str = "", line: int = 0, how: str = "module") -> object:
        imports = [tool.Import(target, line, how)] if target else []
        return tool.Module(name, Path(name), "", imports)

    state, wire = "runbook_lib.sim.tenant._state", "runbook_lib.sim.graph._wire"
    sandbox = {state: module(state, wire, 3, "type-checking"), wire: module(wire)}
    [problem] = tool.layer_problems(sandbox)
    assert f"tenant._state:3 imports {wire}" in problem
    step, scim = "runbook_lib.steps.connect", "runbook_lib.sim.iru._scim"
    library = {
        step: module(step, state, 9, "function"),
        scim: module(scim, "runbook_lib._graph", 5),
    }
    problems = tool.boundary_problems(library)
    assert len(problems) == 2
    assert any("iru._scim:5 imports the library's runbook_lib._graph" in p for p in problems)
    assert any(p.startswith("runbook_lib.steps.connect:9") for p in problems)
