"""Draw which part of the sandbox uses which, and check that every arrow points down.

The sandbox (``runbook_lib/sim``) is split into parts named after what they imitate. A
reader should be able to change one part knowing only the parts below it, which holds
only while imports run one way. This script reads every import of the sandbox's modules
with :mod:`ast` (at module level, inside functions and under ``if TYPE_CHECKING:`` alike,
since a circle that only a type checker sees still ties two modules together) and

* writes ``docs/sandbox-imports.md``: a Mermaid drawing of the parts and a table of each
  part's modules with what they import;
* reports a circle between modules, an import that points up the stack of parts
  (:data:`LAYERS`), and an import across the sandbox's boundary with the library.

Run ``.venv/bin/python scripts/sim_imports.py`` after changing an import (it rewrites the
page and exits 1 if it found a problem); ``--check`` only compares, as
``tests/test_sim_imports.py`` does. It is a development tool, not part of the package.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LAUNCHERS",
    "LAYERS",
    "PAGE",
    "Import",
    "Module",
    "boundary_problems",
    "find_cycle",
    "layer_problems",
    "main",
    "part_of",
    "read_package",
    "render_page",
]

ROOT = Path(__file__).resolve().parent.parent
SIM = "runbook_lib.sim"
PAGE = ROOT / "docs" / "sandbox-imports.md"

TOP = "top"
LAYERS: tuple[tuple[str, str], ...] = (
    ("plumbing", "HTTPS servers, CA, clock, ids, request log, faults, admin routes"),
    ("directory", "users, groups and members as records; the seeded tenant"),
    ("provisioning", "what a job is and keeps: run state, schema, expressions, secrets, logs"),
    ("tenant", "the tenant state behind one lock; tokens, permission grants, well-known ids"),
    ("signin", "the Entra ID sign-in stand-in"),
    ("provisioning.engine", "plan, export of users and groups, cycles, quarantine, SCIM client"),
    ("graph", "routing, OData, batch, per-route handlers, shapes, permissions"),
    ("iru", "the Iru SCIM service and Enterprise API"),
    (TOP, "the Sandbox handle, pre-provisioning, runbook sim"),
)
"""The sandbox's parts from the bottom up: a module imports only its own part and parts
listed before it."""

LAUNCHERS = frozenset({"runbook_lib.cli", "runbook_lib._check_demo"})
"""Library modules that start the sandbox (``runbook run``, ``runbook sim``, ``make check``).

They import its public package only; nothing else in the library imports the sandbox, so
the clients and steps cannot tell a sandbox from a tenant."""


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target (a module), where it is, and how it is reached."""

    target: str
    line: int
    how: str  # "module", "function" or "type-checking"


@dataclass(slots=True)
class Module:
    """A module of the package: its dotted name, first docstring line and imports."""

    name: str
    path: Path
    summary: str
    imports: list[Import] = field(default_factory=list)


def _module_name(package_dir: Path, package: str, path: Path) -> str:
    parts = list(path.relative_to(package_dir).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _base(module: str, path: Path, level: int) -> str:
    """The package a relative import of ``level`` dots starts from."""
    parts = module.split(".")
    if path.name != "__init__.py":
        parts.pop()
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, how: str) -> Iterable[tuple[ast.Import | ast.ImportFrom, str]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, how
        elif isinstance(child, ast.If) and _type_checking(child.test):
            for statement in child.body:
                yield from _walk(ast.Module(body=[statement], type_ignores=[]), "type-checking")
            for statement in child.orelse:
                yield from _walk(ast.Module(body=[statement], type_ignores=[]), how)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, "function")
        else:
            yield from _walk(child, how)


def _imports(tree: ast.Module, module: str, path: Path, known: set[str]) -> list[Import]:
    found: list[Import] = []
    for node, how in _walk(tree, "module"):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, how) for alias in node.names)
            continue
        source = node.module or ""
        if node.level:
            base = _base(module, path, node.level)
            source = f"{base}.{source}" if source else base
        for alias in node.names:
            # ``from . import _x`` imports the module ``_x``; ``from .m import f`` imports ``m``.
            submodule = f"{source}.{alias.name}"
            found.append(Import(submodule if submodule in known else source, node.lineno, how))
    return found


def _summary(tree: ast.Module) -> str:
    doc = ast.get_docstring(tree) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def read_package(package_dir: Path, package: str) -> dict[str, Module]:
    """Every module below ``package_dir`` (named from ``package``) with its imports."""
    paths = sorted(package_dir.rglob("*.py"))
    known = {_module_name(package_dir, package, path) for path in paths}
    modules: dict[str, Module] = {}
    for path in paths:
        name = _module_name(package_dir, package, path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[name] = Module(name, path, _summary(tree), _imports(tree, name, path, known))
    return modules


def _edges(modules: Mapping[str, Module]) -> dict[str, list[str]]:
    return {
        name: sorted({i.target for i in module.imports if i.target in modules})
        for name, module in modules.items()
    }


def find_cycle(modules: Mapping[str, Module]) -> list[str] | None:
    """A circle of imports as ``[a, b, ..., a]``, or None when the imports run one way."""
    edges = _edges(modules)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in edges[name]:
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found is not None:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(edges):
        if name not in state:
            found = visit(name)
            if found is not None:
                return found
    return None


def part_of(module: str) -> str:
    """The part (a key of :data:`LAYERS`) a sandbox module belongs to."""
    rest = module.removeprefix(SIM).lstrip(".").split(".")
    packages = [p for p in rest if p and not p.startswith("_")]
    return ".".join(packages) or TOP


def _rank() -> dict[str, int]:
    return {name: index for index, (name, _) in enumerate(LAYERS)}


def layer_problems(modules: Mapping[str, Module]) -> list[str]:
    """Imports that leave a module's part for a part that is not below it."""
    rank = _rank()
    problems: list[str] = []
    for name, module in sorted(modules.items()):
        source = part_of(name)
        if source not in rank:
            problems.append(f"{name}: the part {source!r} is missing from LAYERS")
            continue
        for imported in module.imports:
            if imported.target not in modules:
                continue
            target = part_of(imported.target)
            if target != source and rank.get(target, len(rank)) >= rank[source]:
                problems.append(
                    f"{name}:{imported.line} imports {imported.target}: {source} may only "
                    f"use parts below it, and {target} is not"
                )
    return problems


def boundary_problems(library: Mapping[str, Module]) -> list[str]:
    """Imports across the line between the library and the sandbox (both directions)."""
    problems: list[str] = []
    for name, module in sorted(library.items()):
        in_sandbox = name == SIM or name.startswith(SIM + ".")
        for imported in module.imports:
            target = imported.target
            to_sandbox = target == SIM or target.startswith(SIM + ".")
            to_library = target == "runbook_lib" or target.startswith("runbook_lib.")
            if in_sandbox and to_library and not to_sandbox:
                problems.append(f"{name}:{imported.line} imports the library's {target}")
            elif not in_sandbox and to_sandbox and (name not in LAUNCHERS or target != SIM):
                problems.append(
                    f"{name}:{imported.line} imports {target}; only the launchers "
                    f"({', '.join(sorted(LAUNCHERS))}) may start the sandbox, through {SIM}"
                )
    return problems


def _short(module: str) -> str:
    return module.removeprefix(SIM).lstrip(".") or "runbook_lib.sim"


def _node(part: str) -> str:
    # A prefix keeps Mermaid from reading the part "graph" as its keyword.
    return "part_" + part.replace(".", "_")


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def _markdown(text: str) -> str:
    """A docstring sentence as Markdown: reST roles and double backticks become code."""
    text = _ROLE.sub(lambda m: "`" + m.group(1).lstrip(".").rsplit(".", 1)[-1] + "`", text)
    return text.replace("``", "`").replace("|", "\\|")


def _label(part: str) -> str:
    return part.replace(".", "/") if part != TOP else "runbook_lib.sim (top)"


def render_page(modules: Mapping[str, Module]) -> str:
    """The Markdown page: the drawing of the parts, then each part's modules."""
    description = dict(LAYERS)
    part_edges = sorted(
        {
            (part_of(name), part_of(i.target))
            for name, module in modules.items()
            for i in module.imports
            if i.target in modules and part_of(i.target) != part_of(name)
        },
        key=lambda edge: (-_rank()[edge[0]], -_rank()[edge[1]]),
    )
    lines = [
        "# How the sandbox's parts depend on each other",
        "",
        "<!-- Generated by scripts/sim_imports.py from the imports in runbook_lib/sim; "
        "do not edit by hand. -->",
        "",
        "The sandbox (`runbook_lib/sim`, see [the sandbox](sandbox.md)) is split into parts "
        "named after what they stand in for. An arrow goes from a part to a part it imports; "
        "every arrow points down, from the `Sandbox` handle at the top, through the Graph "
        "handlers and the provisioning engine, to the tenant state and the records and plumbing "
        "beneath it. No module imports, directly or through others, a module that imports it.",
        "",
        "`tests/test_sim_imports.py` fails on a circle, on an arrow that points up and when "
        "this page is out of date; after changing an import, run "
        "`.venv/bin/python scripts/sim_imports.py` to redraw it.",
        "",
        "```mermaid",
        "graph TD",
    ]
    for part, _ in reversed(LAYERS):
        lines.append(f'    {_node(part)}["{_label(part)}"]')
    lines.extend(f"    {_node(a)} --> {_node(b)}" for a, b in part_edges)
    lines += ["```", "", "## The parts, from the top down", ""]
    lines += ["| Part | Holds | Imports |", "|---|---|---|"]
    for part, _ in reversed(LAYERS):
        uses = sorted({b for a, b in part_edges if a == part}, key=lambda p: -_rank()[p])
        used = ", ".join(f"`{_label(p)}`" for p in uses) or "nothing of the sandbox"
        lines.append(f"| `{_label(part)}` | {description[part]} | {used} |")
    lines += ["", "## Modules", ""]
    for part, _ in reversed(LAYERS):
        members = sorted(name for name in modules if part_of(name) == part)
        lines += [f"### {_label(part)}", "", "| Module | What it is | Imports |", "|---|---|---|"]
        for name in members:
            module = modules[name]
            targets = sorted({_short(i.target) for i in module.imports if i.target in modules})
            imported = ", ".join(f"`{t}`" for t in targets) or "—"
            summary = _markdown(module.summary) or "—"
            lines.append(f"| `{_short(name)}` | {summary} | {imported} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with ``--check`` compare) the page; 1 when something is wrong."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare the page")
    args = parser.parse_args(argv)
    modules = read_package(ROOT / "runbook_lib" / "sim", SIM)
    library = read_package(ROOT / "runbook_lib", "runbook_lib")
    problems = layer_problems(modules) + boundary_problems(library)
    cycle = find_cycle(modules)
    if cycle is not None:
        problems.insert(0, "import circle: " + " -> ".join(cycle))
    page = render_page(modules)
    stale = not PAGE.exists() or PAGE.read_text(encoding="utf-8") != page
    if stale and args.check:
        problems.append(f"{PAGE.relative_to(ROOT)} is out of date: run scripts/sim_imports.py")
    elif stale:
        PAGE.write_text(page, encoding="utf-8")
        print(f"wrote {PAGE.relative_to(ROOT)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
