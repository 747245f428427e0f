"""The errors page (``docs/errors.md``), generated from the library so that it cannot fall behind.

``python -m runbook_lib._errors_doc`` rewrites the page; ``--check`` only says whether the
committed page is still what the library would print (exit 1 when not). A test runs the same
comparison, so a new or reworded message fails the tests until the page is regenerated.

How the messages are found
--------------------------
The source of every ``runbook_lib`` module is read with :mod:`ast` (the sandbox in ``sim`` aside:
it plays Microsoft and Iru, so its words are theirs). Every place that builds something an admin
reads is an entry:

* an error of the :class:`~runbook_lib.RunbookError` tree built with a message and a
  remediation (a ``raise``, or a helper that returns the error);
* a check that fails or warns (``CheckResult.failed`` / ``CheckResult.warned``): a row of the
  step's table;
* a problem of a parameters file (any dataclass with ``problem`` and ``fix`` fields).

An error built without a remediation is an internal signal (``GraphNotFound("not readable
yet")`` while polling), caught before anybody sees it, and is left out; so is a place that only
passes on another error's words (``exc.message``), which has its own entry.

The message and the fix are rebuilt from the expressions at that place: string literals and
f-strings, module constants (across imports), local variables, and the helpers they call (each
``return`` of ``_url_advice`` or ``_remediation`` is a variant). A value known only at run time
becomes a placeholder, shown as *<var>host</var>*. Variants stay paired the way the code pairs
them: the problem and the fix of one ``if`` branch, the two halves of one returned tuple, the
arguments of one call. The condition that selects a variant (``status == 401``, a key of the
AADSTS table) labels it.

What an entry *means* comes from :data:`CLASS_MEANINGS` (one sentence per error class, in an
admin's words), :data:`KIND_MEANINGS` (per pre-flight ``kind``) and :data:`MESSAGE_MEANINGS`
(a few messages that need more than their class says); a test keeps the three complete.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import html
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CLASS_MEANINGS",
    "KIND_MEANINGS",
    "MESSAGE_MEANINGS",
    "PAGE",
    "Entry",
    "collect_entries",
    "exception_classes",
    "main",
    "render_page",
]

PACKAGE = "runbook_lib"
PAGE = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
"""The page this module writes (``docs/errors.md`` beside the package in a checkout)."""

CLASS_MEANINGS: dict[str, str] = {
    "RunbookError": "The runbook stopped and says why.",
    "ConfigurationError": "A setting the runbook needs is missing or not valid, so it stopped "
    "before calling Microsoft or Iru. Nothing was changed.",
    "ParametersError": "The parameters file given to `runbook run` or `runbook check` cannot be "
    "used, so no page was run.",
    "SignInError": "Entra ID did not give the runbook a token, so nothing was read or changed.",
    "GraphError": "Microsoft Graph could not be reached, or refused or failed a call.",
    "GraphAuthError": "Graph refused the call: the sign-in lacks a permission or a directory "
    "role, or the token is not valid for this Graph.",
    "GraphNotFound": "Graph does not have the object the call names, or has not replicated it yet.",
    "GraphThrottled": "Graph kept answering *too many requests* or *unavailable* through all the "
    "retries.",
    "GraphOutcomeUnknown": "The answer to a create was lost on the way back. The runbook did not "
    "send it again, so nothing was made twice.",
    "ScimError": "Iru's SCIM endpoint answered in a way the runbook cannot use.",
    "PreflightError": "Page 01's pre-flight of the Iru SCIM endpoint failed: Entra's *Test "
    "connection* would fail the same way.",
    "StepError": "The tenant is not in the state this page starts from, so the page stopped "
    "before changing anything more.",
    "AmbiguousAppError": "Several enterprise apps carry the name the runbook looks for, and it "
    "will not guess which one is yours.",
    "ConsistencyTimeout": "An object Graph had just created did not become readable in time "
    "(Entra replicates new objects with a delay).",
    "StepFailed": "A page ended with checks that did not pass.",
}
"""What each error class means to an admin (a test keeps one for every class)."""

KIND_MEANINGS: dict[str, str] = {
    "insecure_url": "The SCIM URL is plain `http://`; Entra only provisions to `https://`.",
    "bad_url": "The SCIM URL is empty or not an `https://` URL with a host.",
    "dns": "The host name in the SCIM URL does not resolve: it is mistyped, or this machine's "
    "DNS cannot see it.",
    "connection": "Nothing answered at the SCIM URL's host and port, or the connection was cut "
    "before Iru answered.",
    "timeout": "The SCIM host did not answer in time.",
    "tls": "The TLS handshake with the SCIM host failed: its certificate is not trusted here "
    "(often a TLS-inspecting proxy), or the host is wrong.",
    "not_found": "The host answers, but nothing serves SCIM at that path (the web-app host, or a "
    "path without `/api/v1/scim`).",
    "unauthorized": "Iru refused the SCIM token.",
    "not_scim": "Something answered, but not a SCIM service as Entra expects one.",
    "server_error": "Iru is having an outage or is overloaded; it did not refuse the token.",
    "throttled": "Iru asked for fewer requests; it did not refuse the token.",
}
"""What each pre-flight ``kind`` (:class:`~runbook_lib.PreflightError`) means."""

MESSAGE_MEANINGS: dict[str, str] = {
    "Could not reach the sign-in authority": "The sign-in never reached Entra ID: the host in "
    "`RUNBOOK_AUTHORITY` does not resolve (DNS), refused the connection, or failed the TLS "
    "handshake (a TLS-inspecting proxy whose CA this machine does not trust).",
    "Sign-in for ": "Entra ID answered the sign-in with an error. Its first line names an "
    "`AADSTS` code; the fix depends on the code.",
    "Test connection failed": "Entra's *Test connection* (Graph's `validateCredentials`) did not "
    "accept the Tenant URL and token, so they were not saved.",
}
"""Meanings for messages that say more than their class; keyed by the message's start."""

SECTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "settings",
        "Settings and parameters",
        "These stop the runbook before it calls Microsoft or Iru, and name the `RUNBOOK_*` "
        "variable or the line of the parameters file to correct. "
        "[Settings and sign-in](settings.md) describes every setting and parameter.",
    ),
    (
        "signin",
        "Signing in to Entra ID",
        "A sign-in error repeats the first line of Entra's answer, which names an `AADSTS` code; "
        "the fix below is chosen by that code. A sign-in that never reaches Entra (the host "
        "does not resolve, the connection is refused, the TLS certificate is not trusted) is "
        "reported before any code. Every sign-in method is described in "
        "[Settings and sign-in](settings.md#sign-in).",
    ),
    (
        "graph",
        "Microsoft Graph",
        "Page 01 compares the permissions you hold with the ones the runbook needs before "
        "anything is written, and names each missing one with the pages it blocks and how to "
        "grant it. A call refused later anyway names the permission that call needs, from the "
        "same table ([Graph calls and permissions](graph-calls.md)). Graph answers a "
        "synchronization call that lacks a permission or the Application Administrator role "
        "with a bare 401 `UnknownError`; the runbook reads that as a missing permission too, "
        "not as a bad token. Graph errors keep Graph's `code`, its message and the "
        "`request-id` that Microsoft support asks for. Throttling (429) and unavailability "
        "(503/504) are retried after `Retry-After`, a bounded number of times, before any of "
        "these is shown.",
    ),
    (
        "scim",
        "The Iru SCIM endpoint",
        "Page 01's pre-flight sends the same harmless request as Entra's *Test connection* "
        "(a lookup of a user that cannot exist) and names what went wrong; the check's title "
        "shows the kind in brackets, e.g. *Iru SCIM pre-flight (dns)*. The later read-backs "
        "(pages 07 to 09) report an answer they cannot use.",
    ),
    (
        "steps",
        "Runbook steps",
        "A page that cannot start from the tenant as it is stops with one of these, before it "
        "changes anything more. Each names the page that puts things right.",
    ),
    (
        "checks",
        "Checks that did not pass, page by page",
        "Each page ends with a table of checks, each marked **pass**, **fail**, **warn** or "
        "**skip**. A failed check has a fix in the table's last column, and the page's closing "
        "cell then stops with *N check(s) failed: <check>: <detail>*, the first failure's fix "
        "and a HINT. A warning does not stop the runbook.",
    ),
)

_SECTION_OF_CLASS = {
    "ConfigurationError": "settings",
    "SignInError": "signin",
    "GraphError": "graph",
    "ConsistencyTimeout": "graph",
    "ScimError": "scim",
    "RunbookError": "steps",
}
_MAX_ALTERNATIVES = 120
_MAX_DEPTH = 6
_HOLE = re.compile("\x00([^\x01]*)\x01")
_KEY = "\x02"
"""Marks a label that is a table's key (shown as it is, not as "When ...")."""

# -- values --------------------------------------------------------------------------------


def _hole(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", " ", name).strip() or "value"
    return f"\x00{name}\x01"


def _is_hole(text: str) -> bool:
    return bool(_HOLE.fullmatch(text))


@dataclass(frozen=True)
class Text:
    """A string with placeholders (``\\x00name\\x01``)."""

    s: str


@dataclass(frozen=True)
class Tup:
    """A tuple whose items are known one by one."""

    items: tuple[Value, ...]


@dataclass(frozen=True)
class Seq:
    """A list or tuple of similar elements: any one element is one of ``elements``."""

    elements: tuple[Alt, ...]


@dataclass(frozen=True)
class Table:
    """A dict constant: ``items`` are (key, value expression) pairs."""

    name: str
    items: tuple[tuple[str, ast.expr], ...]


Value = Text | Tup | Seq | Table


@dataclass(frozen=True)
class Alt:
    """One possible value, with the choices it assumes and the conditions that select it.

    ``choices`` maps a choice point (an assignment, a call site, an element of a list) to the
    variant taken there, so that two values combine only when they assume the same; ``stmts``
    are the assignments used (two assignments in different branches of one ``if`` never
    combine); ``labels`` are the conditions, in words, under which the value is the one used.
    """

    value: Value
    choices: frozenset[tuple[Any, int]] = frozenset()
    stmts: frozenset[int] = frozenset()
    labels: tuple[str, ...] = ()

    def but(self, value: Value, *labels: str) -> Alt:
        """The same assumptions with another value (and more labels)."""
        return Alt(value, self.choices, self.stmts, _unique((*self.labels, *labels)))


def _text(s: str) -> Alt:
    return Alt(Text(s))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _as_text(value: Value) -> str:
    return value.s if isinstance(value, Text) else _hole("value")


def _literal(text: str) -> bool:
    """Whether ``text`` says something besides its placeholders."""
    return bool(re.search(r"[A-Za-z]", _HOLE.sub("", text)))


# -- the source ----------------------------------------------------------------------------

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class _Module:
    name: str
    tree: ast.Module
    constants: dict[str, ast.expr] = field(default_factory=dict)
    functions: dict[str, FunctionNode] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)


class _Source:
    """Every runbook_lib module's syntax tree, with the lookups the evaluator needs."""

    def __init__(self, root: Path) -> None:
        self.modules: dict[str, _Module] = {}
        self.parent: dict[int, ast.AST] = {}
        self.module_of: dict[int, _Module] = {}
        self.stmts: dict[int, ast.stmt] = {}
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            if "sim" in parts or parts[-1] in ("__main__", "_errors_doc"):
                continue
            package = ".".join(parts[:-1])
            name = package if parts[-1] == "__init__" else ".".join(parts)
            if parts[-1] == "__init__":
                package = name
            module = _Module(name, ast.parse(path.read_text(encoding="utf-8")))
            self._index(module, package)
            self.modules[name] = module
        self._calls: dict[int, list[ast.Call]] | None = None

    def _index(self, module: _Module, package: str) -> None:
        for node in module.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                if isinstance(node.targets[0], ast.Name):
                    module.constants[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                if isinstance(node.target, ast.Name):
                    module.constants[node.target.id] = node.value
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                module.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                module.classes[node.name] = node
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = (base, alias.name)
        for each in ast.walk(module.tree):
            for child in ast.iter_child_nodes(each):
                self.parent[id(child)] = each
            self.module_of[id(each)] = module
            if isinstance(each, ast.stmt):
                self.stmts[id(each)] = each

    # -- where a node is --
    def enclosing(self, node: ast.AST, kinds: tuple[type, ...]) -> Any:
        current = self.parent.get(id(node))
        while current is not None and not isinstance(current, kinds):
            current = self.parent.get(id(current))
        return current

    def function_of(self, node: ast.AST) -> FunctionNode | None:
        found: FunctionNode | None = self.enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        return found

    def class_of(self, node: ast.AST) -> ast.ClassDef | None:
        found: ast.ClassDef | None = self.enclosing(node, (ast.ClassDef,))
        return found

    def block_of(self, stmt: ast.AST) -> tuple[int, str] | None:
        """The statement list ``stmt`` is in, as (its owner, the field)."""
        owner = self.parent.get(id(stmt))
        if owner is None:
            return None
        for name in ("body", "orelse", "finalbody", "handlers"):
            if stmt in (getattr(owner, name, None) or []):
                return id(owner), name
        return None

    def scope_for(self, node: ast.AST) -> _Scope:
        """The scope of the function (and the ones around it) that ``node`` is in."""
        module = self.module_of[id(node)]
        funcs: list[FunctionNode] = []
        current = self.function_of(node)
        while current is not None:
            funcs.append(current)
            current = self.function_of(current)
        scope = _Scope(self, module, None, None, {}, 0, frozenset())
        for func in reversed(funcs):
            scope = _Scope(self, module, func, scope, {}, 0, frozenset())
        return scope

    # -- what a name is --
    def resolve(self, module: _Module, name: str) -> tuple[_Module, str] | None:
        """Follow ``from .x import name`` to the module that defines ``name``."""
        for _ in range(5):
            if name not in module.imports:
                return module, name
            target, name = module.imports[name]
            if target not in self.modules:
                return None
            module = self.modules[target]
        return None

    def class_named(self, module: _Module, name: str) -> ast.ClassDef | None:
        found = self.resolve(module, name)
        return found[0].classes.get(found[1]) if found is not None else None

    def base_class(self, cls: ast.ClassDef) -> ast.ClassDef | None:
        for base in cls.bases:
            if isinstance(base, ast.Name):
                found = self.class_named(self.module_of[id(cls)], base.id)
                if found is not None:
                    return found
        return None

    def method(self, cls: ast.ClassDef | None, name: str) -> FunctionNode | None:
        while cls is not None:
            for stmt in cls.body:
                if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == name:
                    return stmt
            cls = self.base_class(cls)
        return None

    def class_attribute(
        self, cls: ast.ClassDef | None, attr: str
    ) -> tuple[ast.expr, _Module] | None:
        while cls is not None:
            for stmt in cls.body:
                value: ast.expr | None = None
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    constant = "ClassVar" in ast.unparse(stmt.annotation)
                    value = stmt.value if stmt.target.id == attr and constant else None
                elif isinstance(stmt, ast.Assign):
                    if any(isinstance(t, ast.Name) and t.id == attr for t in stmt.targets):
                        value = stmt.value
                if value is not None:
                    return value, self.module_of[id(cls)]
            cls = self.base_class(cls)
        return None

    def function(
        self, node: ast.expr, scope: _Scope, *, via_parameters: bool = True
    ) -> FunctionNode | None:
        """The function a call's ``func`` names: nested, module-level, imported, a method of
        ``self`` or of an annotated parameter, or a function passed in as an argument."""
        if isinstance(node, ast.Name):
            chain: _Scope | None = scope
            while chain is not None and chain.func is not None:
                for stmt in _walk_body(chain.func.body):
                    if isinstance(stmt, ast.FunctionDef) and stmt.name == node.id:
                        return stmt
                if via_parameters and node.id in _parameters(chain.func):
                    return self._passed_in(chain.func, node.id)
                chain = chain.parent
            found = self.resolve(scope.module, node.id)
            return found[0].functions.get(found[1]) if found is not None else None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = node.value.id
            if owner in ("self", "cls") and scope.func is not None:
                return self.method(self.class_of(scope.func), node.attr)
            if scope.func is not None:
                for arg in (*scope.func.args.args, *scope.func.args.kwonlyargs):
                    annotation = arg.annotation
                    if isinstance(annotation, ast.BinOp):  # X | None
                        annotation = annotation.left
                    if arg.arg == owner and isinstance(annotation, ast.Name):
                        cls = self.class_named(scope.module, annotation.id)
                        return self.method(cls, node.attr)
        return None

    def _passed_in(self, func: FunctionNode, name: str) -> FunctionNode | None:
        """The function passed as parameter ``name`` of ``func`` at its (direct) call sites."""
        for call in self._direct_calls().get(id(func), []):
            caller = self.scope_for(call)
            bound = _argument_nodes(func, call)
            arg = bound.get(name)
            if arg is not None:
                found = self.function(arg, caller, via_parameters=False)
                if found is not None:
                    return found
        return None

    def _direct_calls(self) -> dict[int, list[ast.Call]]:
        if self._calls is None:
            self._calls = {}
            for module in self.modules.values():
                for node in ast.walk(module.tree):
                    if isinstance(node, ast.Call):
                        found = self.function(node.func, self.scope_for(node), via_parameters=False)
                        if found is not None:
                            self._calls.setdefault(id(found), []).append(node)
        return self._calls

    def call_sites(self, func: FunctionNode) -> list[ast.Call]:
        """Every call of ``func`` in runbook_lib, including through a parameter."""
        calls = list(self._direct_calls().get(id(func), []))
        for node in ast.walk(self.module_of[id(func)].tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node not in calls
                and self.function(node.func, self.scope_for(node)) is func
            ):
                calls.append(node)
        return sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def _parameters(func: FunctionNode) -> list[str]:
    args = func.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


def _argument_nodes(func: FunctionNode, call: ast.Call) -> dict[str, ast.expr]:
    params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
    if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        params = params[1:]
    found: dict[str, ast.expr] = {}
    for param, arg in zip(params, call.args, strict=False):
        if isinstance(arg, ast.Starred):
            break
        found[param] = arg
    for keyword in call.keywords:
        if keyword.arg is not None:
            found[keyword.arg] = keyword.value
    return found


def _walk_body(body: Sequence[ast.AST]) -> Iterator[ast.stmt]:
    """Every statement of a body, into ``if``/``for``/``try``/``with``, not into nested defs."""
    for stmt in body:
        if not isinstance(stmt, ast.stmt):
            continue
        yield stmt
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from _walk_body(getattr(stmt, name, None) or [])
        for handler in getattr(stmt, "handlers", None) or []:
            yield from _walk_body(handler.body)


def _nodes(func: FunctionNode) -> Iterator[ast.AST]:
    """Every node of ``func``'s body, not inside nested functions, classes or lambdas."""
    stack: list[ast.AST] = list(func.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(node))


# -- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """Where an expression is evaluated: a module, a function (and those around it), and the
    values its parameters are bound to when it is evaluated for a particular call."""

    source: _Source
    module: _Module
    func: FunctionNode | None
    parent: _Scope | None
    bound: dict[str, tuple[Alt, ...]]
    depth: int
    busy: frozenset[Any]

    def entering(self, func: FunctionNode, bound: dict[str, tuple[Alt, ...]], key: Any) -> _Scope:
        outer = self.source.scope_for(func)
        return _Scope(
            self.source, outer.module, func, outer.parent, bound, self.depth + 1, self.busy | {key}
        )

    def at_module(self, module: _Module) -> _Scope:
        return _Scope(self.source, module, None, None, {}, self.depth + 1, self.busy)


def _compatible(source: _Source, a: Alt, b: Alt) -> bool:
    mine = dict(a.choices)
    if any(key in mine and mine[key] != index for key, index in b.choices):
        return False
    return not any(
        one != other and _exclusive(source, one, other) for one in a.stmts for other in b.stmts
    )


def _exclusive(source: _Source, one: int, other: int) -> bool:
    """Whether two statements sit in different branches of the same ``if``."""
    sides: dict[int, bool] = {}
    node: ast.AST | None = source.stmts.get(one)
    while node is not None:
        up = source.parent.get(id(node))
        if isinstance(up, ast.If):
            sides[id(up)] = node in up.body
        node = up
    node = source.stmts.get(other)
    while node is not None:
        up = source.parent.get(id(node))
        if isinstance(up, ast.If) and id(up) in sides and sides[id(up)] != (node in up.body):
            return True
        node = up
    return False


def _combine(source: _Source, parts: Sequence[Sequence[Alt]], join: Any) -> list[Alt]:
    """The consistent combinations of one alternative from each of ``parts``."""
    combos: list[list[Alt]] = [[]]
    for options in parts:
        grown: list[list[Alt]] = []
        for combo in combos:
            for option in options:
                if len(grown) < _MAX_ALTERNATIVES and all(
                    _compatible(source, option, taken) for taken in combo
                ):
                    grown.append([*combo, option])
        combos = grown
    out: list[Alt] = []
    for combo in combos:
        out.append(
            Alt(
                join([c.value for c in combo]),
                frozenset().union(*(c.choices for c in combo)),
                frozenset().union(*(c.stmts for c in combo)),
                _unique(label for c in combo for label in c.labels),
            )
        )
    return out


def _concat(values: Sequence[Value]) -> Value:
    return Text("".join(_as_text(v) for v in values))


def _hole_name(node: ast.expr) -> str:
    """A readable name for a value known only at run time."""
    if isinstance(node, ast.Name):
        return node.id.strip("_")
    if isinstance(node, ast.Attribute):
        return "type" if node.attr == "__name__" else node.attr.strip("_")
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
        return _hole_name(node.value)
    if isinstance(node, ast.JoinedStr):
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                return _hole_name(part.value)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return first.value
        if isinstance(func, ast.Name) and func.id == "len":
            return "n"
        if isinstance(func, ast.Attribute):
            if func.attr in _STRING_METHODS | {"lower", "upper", "splitlines", "rpartition"}:
                return _hole_name(func.value)
            return func.attr.strip("_")
        if isinstance(func, ast.Name):
            if func.id in _PASS_THROUGH and node.args:
                return _hole_name(node.args[0])
            return func.id.strip("_")
    if isinstance(node, ast.BoolOp):
        return _hole_name(node.values[0])
    if isinstance(node, ast.BinOp):
        return _hole_name(node.left)
    return "value"


def _unknown(node: ast.expr) -> list[Alt]:
    return [_text(_hole(_hole_name(node)))]


def evaluate(node: ast.expr, scope: _Scope, *, top: bool = False) -> list[Alt]:
    """The values ``node`` can have, as alternatives (placeholders for run-time values).

    ``top`` is true where the expression is a whole message, fix or tuple item: there, every
    variant counts. Inside an f-string (``top`` false) a value that varies at run time is one
    placeholder, and optional text (a helper that may return ``""``) is left out.
    """
    if scope.depth > _MAX_DEPTH:
        return _unknown(node)
    if isinstance(node, ast.Constant):
        if node.value is None:
            return []
        return [_text(node.value if isinstance(node.value, str) else str(node.value))]
    if isinstance(node, ast.JoinedStr):
        parts = [evaluate(v, scope) or [_text("")] for v in node.values]
        return _combine(scope.source, parts, _concat)
    if isinstance(node, ast.FormattedValue):
        found = [a for a in evaluate(node.value, scope) if isinstance(a.value, Text)]
        if node.conversion == ord("r"):
            found = [a.but(Text(repr(a.value.s))) if _plain(a) else a for a in found]  # type: ignore[union-attr]
        return found or _unknown(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        if any(
            isinstance(side, ast.Constant) and isinstance(side.value, int | float)
            for side in (node.left, node.right)
        ):
            return _unknown(node)  # arithmetic: a number known at run time
        left, right = evaluate(node.left, scope), evaluate(node.right, scope)
        if left and right and all(isinstance(a.value, Seq) for a in (*left, *right)):
            return _combine(scope.source, [left, right], _concat_seqs)
        return _combine(scope.source, [left or [_text("")], right or [_text("")]], _concat)
    if isinstance(node, ast.IfExp):
        body, orelse = evaluate(node.body, scope, top=top), evaluate(node.orelse, scope, top=top)
        if top:
            return body + orelse
        return body if any(_as_text(a.value) for a in body) else orelse
    if isinstance(node, ast.BoolOp):
        return evaluate(node.values[0], scope, top=top) or evaluate(node.values[-1], scope, top=top)
    if isinstance(node, ast.Tuple):
        items = [evaluate(e, scope, top=True) or [_text("")] for e in node.elts]
        return _combine(scope.source, items, lambda vs: Tup(tuple(vs)))
    if isinstance(node, ast.List | ast.Set):
        elements = [a for e in node.elts for a in evaluate(e, scope, top=True)]
        return [Alt(Seq(_keyed(elements, ("element", id(node)))))]
    if isinstance(node, ast.Name):
        return _name(node.id, node, scope, top)
    if isinstance(node, ast.Attribute):
        return _attribute(node, scope)
    if isinstance(node, ast.Subscript):
        return _subscript(node, scope)
    if isinstance(node, ast.Call):
        return _call(node, scope, top)
    return _unknown(node)


def _plain(alt: Alt) -> bool:
    return isinstance(alt.value, Text) and "\x00" not in alt.value.s


def _keyed(elements: Iterable[Alt], key: Any) -> tuple[Alt, ...]:
    """Elements of one list, each marked as that list's element number n."""
    return tuple(
        Alt(e.value, e.choices | {(key, n)}, e.stmts, e.labels) for n, e in enumerate(elements)
    )


def _elements(value: Seq | Tup) -> tuple[Alt, ...]:
    """The elements of a list, or the items of a tuple read as a list (a constant table)."""
    if isinstance(value, Seq):
        return value.elements
    return _keyed((Alt(item) for item in value.items), ("item", value))


def _concat_seqs(values: Sequence[Value]) -> Value:
    return Seq(tuple(e for v in values if isinstance(v, Seq) for e in v.elements))


def _attribute(node: ast.Attribute, scope: _Scope) -> list[Alt]:
    """``self.name`` or ``SomeClass.name``: the class attribute, when there is one."""
    cls: ast.ClassDef | None = None
    if isinstance(node.value, ast.Name):
        if node.value.id in ("self", "cls") and scope.func is not None:
            cls = scope.source.class_of(scope.func)
        else:
            cls = scope.source.class_named(scope.module, node.value.id)
    found = scope.source.class_attribute(cls, node.attr) if cls is not None else None
    if found is not None:
        return evaluate(found[0], scope.at_module(found[1]))
    return _unknown(node)


def _subscript(node: ast.Subscript, scope: _Scope) -> list[Alt]:
    key = node.slice
    if isinstance(node.value, ast.Name) and node.value.id == "Literal":  # Literal["a", "b"]
        return evaluate(key if isinstance(key, ast.Tuple) else ast.Tuple([key]), scope, top=True)
    out: list[Alt] = []
    for alt in evaluate(node.value, scope, top=True):
        value = alt.value
        if isinstance(value, Tup) and isinstance(key, ast.Constant) and isinstance(key.value, int):
            if -len(value.items) <= key.value < len(value.items):
                out.append(alt.but(value.items[key.value]))
        elif isinstance(value, Seq | Tup) and not isinstance(key, ast.Slice):
            elements = _elements(value)
            out.extend(_merge(e, alt) for e in elements if _compatible(scope.source, alt, e))
        elif isinstance(value, Table):
            out.extend(_table_values(value, key, alt, scope))
    return out[:_MAX_ALTERNATIVES] or _unknown(node)


def _table_values(table: Table, key: ast.expr, alt: Alt, scope: _Scope) -> Iterator[Alt]:
    """``TABLE[key]``: the value for a constant key, else every value, labelled by its key."""
    for key_text, expr in table.items:
        if isinstance(key, ast.Constant) and key.value != key_text:
            continue
        module = scope.source.module_of[id(expr)]
        label = "" if isinstance(key, ast.Constant) else _key_label(table.name, key_text)
        for found in evaluate(expr, scope.at_module(module), top=True):
            yield Alt(found.value, alt.choices, alt.stmts, _unique((*alt.labels, label)))


def _key_label(table: str, key: str) -> str:
    """The label of a table's value: its key (an AADSTS table's keys are AADSTS codes)."""
    if "AADSTS" in table.upper() and key.isdigit():
        return f"{_KEY}AADSTS{key}"
    return f"{_KEY}“{key}”"


def _merge(alt: Alt, extra: Alt) -> Alt:
    return Alt(
        alt.value,
        alt.choices | extra.choices,
        alt.stmts | extra.stmts,
        _unique((*extra.labels, *alt.labels)),
    )


_PASS_THROUGH = frozenset({"str", "redact", "sorted", "list", "tuple", "get_args"})
_STRING_METHODS = frozenset({"strip", "rstrip", "lstrip", "removeprefix", "removesuffix"})
_CASE_METHODS = {"upper": str.upper, "lower": str.lower, "capitalize": str.capitalize}


def _call(node: ast.Call, scope: _Scope, top: bool) -> list[Alt]:
    func = node.func
    if isinstance(func, ast.Name) and func.id in _PASS_THROUGH and len(node.args) == 1:
        return evaluate(node.args[0], scope, top=top)
    if isinstance(func, ast.Attribute):
        if func.attr in _STRING_METHODS:
            found = evaluate(func.value, scope, top=top)
            if func.attr.endswith("strip") and not node.args:
                strip = getattr(str, func.attr)
                return [
                    a.but(Text(strip(a.value.s))) if isinstance(a.value, Text) else a for a in found
                ]
            return found
        if func.attr in _CASE_METHODS and not node.args:
            change = _CASE_METHODS[func.attr]
            return [
                a.but(Text(change(a.value.s))) if _plain(a) else a  # type: ignore[union-attr]
                for a in evaluate(func.value, scope, top=top)
            ]
        if (
            func.attr == "join"
            and isinstance(func.value, ast.Constant)
            and isinstance(func.value.value, str)
            and len(node.args) == 1
        ):
            return _join(func.value.value, node.args[0], scope)
    target = scope.source.function(func, scope)
    key = ("return", id(target))
    if target is None or key in scope.busy:
        return _unknown(node)
    inner = scope.entering(target, _bind(target, node, scope, top=False), key)
    out: list[Alt] = []
    for stmt in _walk_body(target.body):
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            labels = _guards(scope.source, stmt, inner)
            out.extend(a.but(a.value, *labels) for a in evaluate(stmt.value, inner, top=True))
    texts = {_as_text(a.value) for a in out if isinstance(a.value, Text)}
    if not top and len(texts) > 1 and all(isinstance(a.value, Text) for a in out):
        # A value that varies at run time is one placeholder; an optional suffix (the helper
        # returns "" or text that starts with a space or a bracket) is left out.
        if "" in texts and all(re.match(r"[\s(\[;,.]", t) for t in texts if t):
            return [_text("")]
        return _unknown(node)
    return out[:_MAX_ALTERNATIVES] or _unknown(node)


def _bind(
    target: FunctionNode, call: ast.Call, scope: _Scope, *, top: bool
) -> dict[str, tuple[Alt, ...]]:
    """The call's arguments as the alternatives of ``target``'s parameters."""
    params = [a.arg for a in (*target.args.posonlyargs, *target.args.args)]
    if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        params = params[1:]
    bound: dict[str, tuple[Alt, ...]] = {}
    for position, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            spread = [
                (a, a.value.items)
                for a in evaluate(arg.value, scope, top=True)
                if isinstance(a.value, Tup)
            ]
            for offset, param in enumerate(params[position:]):
                bound[param] = tuple(
                    a.but(items[offset]) for a, items in spread if offset < len(items)
                )
            break
        if position < len(params):
            bound[params[position]] = tuple(evaluate(arg, scope, top=top))
    for keyword in call.keywords:
        if keyword.arg is not None:
            bound[keyword.arg] = tuple(evaluate(keyword.value, scope, top=top))
    return bound


def _join(separator: str, iterable: ast.expr, scope: _Scope) -> list[Alt]:
    """``", ".join(x for x in ...)``: one element, then the separator and an ellipsis."""
    while (
        isinstance(iterable, ast.Call)
        and isinstance(iterable.func, ast.Name)
        and iterable.func.id in _PASS_THROUGH
        and iterable.args
    ):
        iterable = iterable.args[0]
    if not isinstance(iterable, ast.GeneratorExp | ast.ListComp):
        joined: list[Alt] = []
        for alt in evaluate(iterable, scope, top=True):
            items: Sequence[Alt] = ()
            if isinstance(alt.value, Seq | Tup):
                items = _elements(alt.value)
            elif isinstance(alt.value, Table):
                items = [_text(key) for key, _ in alt.value.items]
            if items and all(_plain(i) for i in items):
                joined.append(alt.but(Text(separator.join(_as_text(i.value) for i in items))))
        return joined or _unknown(iterable)
    hidden: dict[str, tuple[Alt, ...]] = {}
    for generator in iterable.generators:
        for target in ast.walk(generator.target):
            if isinstance(target, ast.Name):
                hidden[target.id] = (_text(_hole(target.id.strip("_"))),)
    inner = dataclasses.replace(scope, bound={**scope.bound, **hidden})
    element = [a for a in evaluate(iterable.elt, inner) if isinstance(a.value, Text)]
    return [a.but(Text(_as_text(a.value) + separator + "…")) for a in element] or _unknown(iterable)


def _name(name: str, node: ast.AST, scope: _Scope, top: bool) -> list[Alt]:
    chain: _Scope | None = scope
    while chain is not None and chain.func is not None:
        if name in chain.bound:
            return list(chain.bound[name])
        func = chain.func
        binders = _binders(scope.source, func, name, node)
        if binders or name in _parameters(func):
            key = (id(func), name, top)
            if key in scope.busy:
                return [_text(_hole(name.strip("_")))]
            inner = dataclasses.replace(chain, busy=scope.busy | {key}, depth=scope.depth)
            if binders:
                return _from_binders(func, name, binders, inner, top)
            if top:
                return _from_call_sites(func, name, inner)
            return [_text(_hole(name.strip("_")))]
        chain = chain.parent
    found = scope.source.resolve(scope.module, name)
    if found is not None and found[1] in found[0].constants:
        constant = ("constant", id(found[0]), found[1])
        if constant in scope.busy:
            return [_text(_hole(name.strip("_")))]
        expr = found[0].constants[found[1]]
        if isinstance(expr, ast.Dict):
            at_module = scope.at_module(found[0])
            items: list[tuple[str, ast.expr]] = []
            for k, v in zip(expr.keys, expr.values, strict=True):
                keys = [a for a in evaluate(k, at_module) if _plain(a)] if k is not None else []
                items += [(_as_text(keys[0].value), v)] if len(keys) == 1 else []
            return [Alt(Table(found[1], tuple(items)))]
        at_module = dataclasses.replace(scope.at_module(found[0]), busy=scope.busy | {constant})
        return evaluate(expr, at_module, top=True)
    return [_text(_hole(name.strip("_")))]


def _binders(
    source: _Source, func: FunctionNode, name: str, use: ast.AST
) -> list[tuple[ast.stmt, int | None]]:
    """The assignments to ``name`` in ``func`` that can reach ``use``, with the tuple index
    when the assignment unpacks a tuple. An assignment is dropped when a later one, in a
    statement list that ``use`` is in (or inside of), always replaces it."""
    found: list[tuple[ast.stmt, int | None]] = []
    for stmt in _walk_body(func.body):
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets = [stmt.target]
        elif isinstance(stmt, ast.For):
            targets = [stmt.target]
        elif isinstance(stmt, ast.With):
            targets = [i.optional_vars for i in stmt.items if i.optional_vars is not None]
        elif isinstance(stmt, ast.Try):
            found.extend((stmt, None) for h in stmt.handlers if h.name == name)
        for target in targets:
            if isinstance(target, ast.Name) and target.id == name:
                found.append((stmt, None))
            elif isinstance(target, ast.Tuple):
                found.extend(
                    (stmt, index)
                    for index, element in enumerate(target.elts)
                    if isinstance(element, ast.Name) and element.id == name
                )
    line = getattr(use, "lineno", None)
    if line is None or source.function_of(use) is not func:
        return found
    before = [(s, i) for s, i in found if s.lineno <= line] or found
    around: set[tuple[int, str] | None] = set()
    node: ast.AST | None = use
    while node is not None and node is not func:
        if isinstance(node, ast.stmt):
            around.add(source.block_of(node))
        node = source.parent.get(id(node))
    replacing = [s for s, _ in before] + [
        s for s in _walk_body(func.body) if isinstance(s, ast.If) and _assigns_always(s, name)
    ]
    return [
        (stmt, index)
        for stmt, index in before
        if not any(
            stmt.lineno < later.lineno <= line and source.block_of(later) in around
            for later in replacing
        )
    ]


def _assigns_always(stmt: ast.If, name: str) -> bool:
    """Whether every branch of an ``if``/``elif``/``else`` chain assigns ``name``."""

    def assigns(body: list[ast.stmt]) -> bool:
        for child in body:
            if isinstance(child, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in child.targets
            ):
                return True
            if isinstance(child, ast.If) and _assigns_always(child, name):
                return True
        return False

    return bool(stmt.orelse) and assigns(stmt.body) and assigns(stmt.orelse)


def _from_binders(
    func: FunctionNode,
    name: str,
    binders: list[tuple[ast.stmt, int | None]],
    scope: _Scope,
    top: bool,
) -> list[Alt]:
    """A local variable's values, from its assignments (and appends, and ``+=``)."""
    appended: list[Alt] = []
    extended: list[ast.expr] = []
    for node in sorted(_nodes(func), key=lambda n: getattr(n, "lineno", 0)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
            and node.func.attr in ("append", "insert")
            and node.args
        ):
            appended.extend(evaluate(node.args[-1], scope, top=True))
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and isinstance(node.op, ast.Add)
        ):
            extended.append(node.value)
    out: list[Alt] = []
    for stmt, index in binders:
        if not isinstance(stmt, ast.Assign | ast.AnnAssign | ast.For):
            out.append(_text(_hole(name.strip("_"))))
            continue
        labels = _guards(scope.source, stmt, scope)
        if isinstance(stmt, ast.For):
            sources: list[Alt] = []
            for alt in evaluate(stmt.iter, scope, top=True):
                if isinstance(alt.value, Seq | Tup):
                    sources.extend(_merge(e, alt) for e in _elements(alt.value))
            sources = sources or [_text(_hole(name.strip("_")))]
        else:
            assert stmt.value is not None
            sources = evaluate(stmt.value, scope, top=top or index is not None)
        for number, alt in enumerate(sources):
            value: Value = alt.value
            extra: tuple[str, ...] = ()
            if index is not None:
                if isinstance(value, Tup) and index < len(value.items):
                    if isinstance(stmt, ast.For):
                        extra = _tuple_label(value, index)
                    value = value.items[index]
                else:
                    value = Text(_hole(name.strip("_")))
            if isinstance(value, Text) and _is_hole(value.s):
                value = Text(_hole(name.strip("_")))
            if isinstance(value, Seq) and appended:
                value = Seq(_keyed((*value.elements, *appended), ("element", id(func), name)))
            choice = (id(stmt), number)
            out.append(
                Alt(
                    value,
                    alt.choices | {choice},
                    alt.stmts | {id(stmt)},
                    _unique((*alt.labels, *labels, *extra)),
                )
            )
    if extended:
        suffixes = [
            [a for a in evaluate(e, scope) if isinstance(a.value, Text)] or [_text("")]
            for e in extended
        ]
        out = [
            grown
            for alt in out
            if isinstance(alt.value, Text)
            for grown in _combine(scope.source, [[alt], *suffixes], _concat)
        ] or out
    return out[:_MAX_ALTERNATIVES]


def _tuple_label(value: Tup, index: int) -> tuple[str, ...]:
    """A loop over (key, value) pairs: the key labels the value."""
    for number, item in enumerate(value.items):
        if number != index and isinstance(item, Text) and "\x00" not in item.s:
            return (f"{_KEY}“{item.s}”",)
    return ()


def _from_call_sites(func: FunctionNode, name: str, scope: _Scope) -> list[Alt]:
    """A parameter's values: its argument at each call of ``func`` (paired by call)."""
    out: list[Alt] = []
    for number, call in enumerate(scope.source.call_sites(func)):
        caller = dataclasses.replace(
            scope.source.scope_for(call), depth=scope.depth + 1, busy=scope.busy
        )
        for alt in _bind(func, call, caller, top=True).get(name, ()):
            out.append(
                Alt(alt.value, alt.choices | {(("call", id(func)), number)}, alt.stmts, alt.labels)
            )
    if out:
        return out[:_MAX_ALTERNATIVES]
    default = _default(func, name)
    if default is not None:
        return evaluate(default, scope.at_module(scope.module))
    return [_text(_hole(name.strip("_")))]


def _default(func: FunctionNode, name: str) -> ast.expr | None:
    positional = [*func.args.posonlyargs, *func.args.args]
    defaults = func.args.defaults
    for param, default in zip(positional[len(positional) - len(defaults) :], defaults, strict=True):
        if param.arg == name:
            return default
    for param, kw_default in zip(func.args.kwonlyargs, func.args.kw_defaults, strict=True):
        if param.arg == name:
            return kw_default
    return None


# -- conditions as labels ------------------------------------------------------------------


def _guards(source: _Source, node: ast.AST, scope: _Scope) -> tuple[str, ...]:
    """The conditions of the ``if`` branches that lead to ``node``, as short labels."""
    labels: list[str] = []
    child: ast.AST = node
    current = source.parent.get(id(node))
    while current is not None and not isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef):
        if isinstance(current, ast.If) and child in current.body:
            labels.append(_condition(current.test, scope))
        child = current
        current = source.parent.get(id(current))
    return _unique(reversed(labels))


def _constant_items(node: ast.expr, scope: _Scope) -> list[str] | None:
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        if len(items) != len(node.elts):
            return None
        return [repr(i) if isinstance(i, str) else str(i) for i in items]
    if isinstance(node, ast.Name):
        found = scope.source.resolve(scope.module, node.id)
        if found is not None and found[1] in found[0].constants:
            value = found[0].constants[found[1]]
            if isinstance(value, ast.Call) and value.args:
                value = value.args[0]
            return _constant_items(value, scope)
    return None


_OPS = {ast.Eq: "is", ast.NotEq: "is not", ast.Gt: ">", ast.GtE: "≥", ast.Lt: "<", ast.LtE: "≤"}


def _condition(test: ast.expr, scope: _Scope) -> str:
    """``status == 401`` as "status is 401"; "" for a condition that says nothing useful."""
    if isinstance(test, ast.BoolOp):
        parts = [_condition(v, scope) for v in test.values]
        if isinstance(test.op, ast.Or):
            return " or ".join(parts) if all(parts) else ""
        return " and ".join(p for p in parts if p)
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute):
        verb = {"startswith": "starts with", "endswith": "ends with"}.get(test.func.attr)
        if verb and test.args and isinstance(test.args[0], ast.Constant):
            return f"{_hole(_hole_name(test.func.value))} {verb} “{test.args[0].value!s}”"
        return ""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return ""
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if isinstance(left, ast.Constant):
        if isinstance(op, ast.In | ast.NotIn) and isinstance(left.value, str):
            verb = "mentions" if isinstance(op, ast.In) else "does not mention"
            return f"{_hole(_hole_name(right))} {verb} “{left.value}”"
        return ""
    subject = _hole(_hole_name(left))
    if isinstance(op, ast.In | ast.NotIn):
        items = _constant_items(right, scope)
        if not items or len(items) > 6:
            return ""
        verb = "is one of" if isinstance(op, ast.In) else "is none of"
        return f"{subject} {verb} {', '.join(items)}"
    if isinstance(right, ast.Constant) and type(op) in _OPS:
        shown = repr(right.value) if isinstance(right.value, str) else str(right.value)
        return f"{subject} {_OPS[type(op)]} {shown}"
    return ""


# -- entries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fix:
    """What to do, and the conditions under which it is the fix (any one of ``when``)."""

    text: str
    when: tuple[tuple[str, ...], ...] = ((),)


@dataclass(frozen=True)
class Entry:
    """One message as an admin meets it (texts hold ``\\x00name\\x01`` placeholders)."""

    section: str
    page: str
    """For a check: the page whose table shows it."""
    seen: str
    means: str
    fixes: tuple[Fix, ...]
    """One per variant of the fix."""
    hint: str = ""
    status: str = ""
    """For a check: ``fail`` or ``warn``."""
    title: str = ""
    """For a check: its title."""
    origin: str = ""
    """Where the message is built (``module.function``)."""


def exception_classes() -> dict[str, type]:
    """Every error class of runbook_lib (the RunbookError tree, wherever it is defined)."""
    from ._exceptions import RunbookError

    _import_all()
    found: dict[str, type] = {}
    stack: list[type] = [RunbookError]
    while stack:
        cls = stack.pop()
        if cls.__module__.startswith(PACKAGE) and ".sim" not in cls.__module__:
            found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


def _import_all() -> list[Any]:
    package = importlib.import_module(PACKAGE)
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        if ".sim" in info.name or info.name.endswith("__main__"):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def _problem_carriers() -> dict[str, tuple[int, int]]:
    """Dataclasses with ``problem`` and ``fix`` fields, with the two fields' positions."""
    carriers: dict[str, tuple[int, int]] = {}
    for module in _import_all():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not cls.__module__.startswith(PACKAGE) or not dataclasses.is_dataclass(cls):
                continue
            names = [f.name for f in dataclasses.fields(cls)]
            if "problem" in names and "fix" in names:
                carriers[cls.__name__] = (names.index("problem"), names.index("fix"))
    return carriers


@dataclass
class _Site:
    call: ast.Call
    kind: str  # "error", "check" or "problem"
    cls: str = ""
    status: str = ""
    slots: dict[str, ast.expr | None] = field(default_factory=dict)
    wraps: type | None = None
    """The class whose ``__init__`` receives the arguments (and may reword the message)."""


def _arg(call: ast.Call, position: int | None, name: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    if position is not None and position < len(call.args):
        arg = call.args[position]
        return None if isinstance(arg, ast.Starred) else arg
    return None


def _init_params(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]  # type: ignore[misc]


def _sites(source: _Source, classes: dict[str, type]) -> Iterator[_Site]:
    carriers = _problem_carriers()
    for module in source.modules.values():
        calls = [n for n in ast.walk(module.tree) if isinstance(n, ast.Call)]
        for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
            site = _site(source, module, call, classes, carriers)
            if site is not None:
                yield site


def _site(
    source: _Source,
    module: _Module,
    call: ast.Call,
    classes: dict[str, type],
    carriers: dict[str, tuple[int, int]],
) -> _Site | None:
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr in ("failed", "warned")
        and isinstance(func.value, ast.Name)
        and func.value.id == "CheckResult"
    ):
        slots = {
            "title": _arg(call, 0, "title"),
            "message": _arg(call, 1, "detail"),
            "fix": _arg(call, 2, "remediation"),
            "hint": _arg(call, 3, "hint"),
        }
        return _Site(call, "check", status="fail" if func.attr == "failed" else "warn", slots=slots)
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "__init__"
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "super"
    ):
        # An error class that builds its own message (AmbiguousAppError, ParametersError).
        owner = source.class_of(call)
        if owner is None or owner.name not in classes:
            return None
        if "message" in _init_params(classes[owner.name]):
            return None
        base = classes[owner.name].__mro__[1]
        return _error_site(call, owner.name, _init_params(base), base)
    if not isinstance(func, ast.Name):
        return None
    resolved = source.resolve(module, func.id)
    name = resolved[1] if resolved is not None else func.id
    if name in carriers:
        problem, fix = carriers[name]
        slots = {"message": _arg(call, problem, "problem"), "fix": _arg(call, fix, "fix")}
        return _Site(call, "problem", slots=slots)
    if name not in classes:
        name = _local_class(source, call, func.id, classes)
    if name in classes and "message" in _init_params(classes[name]):
        return _error_site(call, name, _init_params(classes[name]), classes[name])
    return None


def _local_class(source: _Source, call: ast.Call, name: str, classes: dict[str, type]) -> str:
    """``cls(...)`` where ``cls`` is a local variable holding an error class (its first)."""
    func = source.function_of(call)
    if func is None:
        return ""
    for stmt, _ in _binders(source, func, name, func):
        value = getattr(stmt, "value", None)
        if isinstance(value, ast.Name) and value.id in classes:
            return value.id
    return ""


def _error_site(call: ast.Call, cls: str, params: list[str], wraps: type) -> _Site:
    def position(name: str) -> int | None:
        return params.index(name) if name in params else None

    slots = {
        name: _arg(call, position(param), param)
        for name, param in (
            ("message", "message"),
            ("fix", "remediation"),
            ("hint", "hint"),
            ("kind", "kind"),
        )
    }
    return _Site(call, "error", cls=cls, slots=slots, wraps=wraps)


def _pages(source: _Source) -> dict[str, str]:
    """Each step module's page id (its Step subclass's ``name``)."""
    pages: dict[str, str] = {}
    for module in source.modules.values():
        for cls in module.classes.values():
            found = source.class_attribute(cls, "name")
            if found is not None and found[1] is module and isinstance(found[0], ast.Constant):
                pages[module.name] = str(found[0].value)
    return pages


def _wrapper(source: _Source, cls: type) -> tuple[FunctionNode, ast.expr] | None:
    """Where an error class turns its ``message`` into the text shown (GraphError adds the
    call and the status): the ``__init__`` and the expression it passes on, if it changes it."""
    for klass in cls.__mro__:
        module = source.modules.get(klass.__module__)
        node = module.classes.get(klass.__name__) if module is not None else None
        init = source.method(node, "__init__") if node is not None else None
        if init is None or init not in node.body:  # type: ignore[union-attr]
            continue
        for call in ast.walk(init):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "__init__"
                and call.args
            ):
                first = call.args[0]
                if isinstance(first, ast.Name) and first.id == "message":
                    break  # passed on unchanged: look at the base class
                if isinstance(first, ast.Attribute):
                    return None  # Exception.__init__(self.message): the message as it is
                return init, first
        else:
            return None
    return None


def collect_entries(root: Path | None = None) -> list[Entry]:
    """Every message the runbook can show, as entries in the order the page lists them."""
    source = _Source(root or Path(__file__).resolve().parent)
    classes = exception_classes()
    pages = _pages(source)
    entries: list[Entry] = []
    for site in _sites(source, classes):
        module = source.module_of[id(site.call)]
        scope = source.scope_for(site.call)
        if site.kind == "error" and site.slots["fix"] is None:
            continue  # no remediation: an internal signal, caught before anybody sees it
        names = list(site.slots)
        slots = [_slot(site.slots[n], scope) for n in names]
        if site.wraps is not None:
            slots[names.index("message")] = _wrapped(
                source, site.wraps, site.call, scope, slots[names.index("message")]
            )
        for combo in _combine(source, slots, lambda vs: Tup(tuple(vs))):
            assert isinstance(combo.value, Tup)
            texts = dict(zip(names, (_as_text(v) for v in combo.value.items), strict=True))
            message, fix = texts["message"], texts["fix"]
            if not message.strip() or not fix.strip() or _is_hole(fix.strip()):
                continue  # nothing to tell the admin to do
            if not _literal(message) and not _literal(fix):
                continue  # passes on another error's words; that error has its own entry
            entries.append(_entry(site, texts, combo.labels, pages.get(module.name, ""), classes))
            entries[-1] = dataclasses.replace(entries[-1], origin=_origin(source, site.call))
    return _merge_entries(_with_validators(source, entries), sorted(set(pages.values())))


def _validators(source: _Source) -> Iterator[tuple[str, ast.expr, ast.AST]]:
    """``(field, message, where)`` for each ``raise ValueError(message)`` of a pydantic field
    validator: pydantic reports it as the setting's problem."""
    for module in source.modules.values():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            fields = [
                str(arg.value)
                for decorator in node.decorator_list
                if isinstance(decorator, ast.Call)
                and ast.unparse(decorator.func).endswith("field_validator")
                for arg in decorator.args
                if isinstance(arg, ast.Constant)
            ]
            for stmt in _walk_body(node.body):
                exc = stmt.exc if isinstance(stmt, ast.Raise) else None
                if (
                    fields
                    and isinstance(exc, ast.Call)
                    and isinstance(exc.func, ast.Name)
                    and exc.func.id == "ValueError"
                    and exc.args
                ):
                    for name in fields:
                        yield name, exc.args[0], exc


def _with_validators(source: _Source, entries: list[Entry]) -> list[Entry]:
    """Each validator's message, inside the error that lists invalid settings (the entry of
    that module whose message has the placeholder *problems*), right after that entry."""
    out = list(entries)
    after: dict[int, int] = {}
    for name, message, node in _validators(source):
        module = source.module_of[id(node)].name
        template = next(
            (e for e in out if e.origin.startswith(module + ".") and _hole("problems") in e.seen),
            None,
        )
        for alt in _slot(message, source.scope_for(node)):
            problem = f"RUNBOOK_{name.upper()} {_as_text(alt.value)}"
            fixes: tuple[Fix, ...]
            if template is None:
                fixes = (Fix(f"Correct RUNBOOK_{name.upper()} and run again."),)
                seen, means, hint = problem + ".", CLASS_MEANINGS["ConfigurationError"], ""
            else:
                fixes, means, hint = template.fixes, template.means, template.hint
                seen = template.seen.replace(_hole("problems"), problem)
            origin = template.origin if template is not None else module
            entry = Entry("settings", "", seen, means, fixes, hint, origin=origin)
            if template is None:
                out.append(entry)
                continue
            place = after.get(id(template), out.index(template)) + 1
            out.insert(place, entry)
            after[id(template)] = place
    return out


def _entry(
    site: _Site, texts: dict[str, str], labels: tuple[str, ...], page: str, classes: dict[str, type]
) -> Entry:
    hint = texts.get("hint", "")
    hint = "" if "\x00" in hint else hint
    fixes = (Fix(texts["fix"], (labels,)),)
    if site.kind == "check":
        return Entry(
            "checks",
            page,
            texts["message"],
            _check_meaning(site.status),
            fixes,
            hint,
            status=site.status,
            title=texts["title"],
        )
    if site.kind == "problem":
        seen = _hole("where") + ": " + texts["message"]
        return Entry("settings", "", seen, CLASS_MEANINGS["ParametersError"], fixes, hint)
    means = _meaning(site.cls, texts.get("kind", ""), texts["message"], classes)
    return Entry(_section(site.cls, classes), "", texts["message"], means, fixes, hint)


def _wrapped(
    source: _Source, cls: type, call: ast.Call, scope: _Scope, messages: list[Alt]
) -> list[Alt]:
    """The message as the error class shows it."""
    found = _wrapper(source, cls)
    if found is None:
        return messages
    init, expr = found
    bound: dict[str, tuple[Alt, ...]] = {
        p: (_text(_hole(p)),) for p in _parameters(init) if p != "self"
    }
    for param, alts in _bind(init, call, scope, top=False).items():
        if alts and all(_plain(a) and _as_text(a.value) for a in alts):
            bound[param] = alts  # a value the call spells out (method="GET")
    bound["message"] = tuple(messages)
    inner = scope.entering(init, bound, ("wrap", id(init)))
    return [a for a in evaluate(expr, inner, top=True) if isinstance(a.value, Text)] or messages


def _slot(node: ast.expr | None, scope: _Scope) -> list[Alt]:
    if node is None:
        return [_text("")]
    found = [a for a in evaluate(node, scope, top=True) if isinstance(a.value, Text)]
    return found or _unknown(node)


def _origin(source: _Source, call: ast.Call) -> str:
    names: list[str] = []
    node: ast.AST | None = call
    while node is not None:
        node = source.parent.get(id(node))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
    return ".".join([source.module_of[id(call)].name, *reversed(names)])


def _meaning(cls: str, kind: str, message: str, classes: dict[str, type]) -> str:
    for start, meaning in MESSAGE_MEANINGS.items():
        if message.startswith(start):
            return meaning
    if kind in KIND_MEANINGS:
        return KIND_MEANINGS[kind]
    for base in classes[cls].__mro__:
        if base.__name__ in CLASS_MEANINGS:
            return CLASS_MEANINGS[base.__name__]
    return ""


def _section(cls: str, classes: dict[str, type]) -> str:
    for base in classes[cls].__mro__:
        if base.__name__ in _SECTION_OF_CLASS:
            return _SECTION_OF_CLASS[base.__name__]
    return "steps"


def _check_meaning(status: str) -> str:
    if status == "fail":
        return "The step did not reach the state this check proves; the page ends with a HINT."
    return "Not a failure: the runbook goes on, but this needs your attention."


def _merge_entries(entries: list[Entry], pages: list[str]) -> list[Entry]:
    """One entry per message: the variants of one message become its list of fixes."""
    merged: dict[tuple[str, ...], Entry] = {}
    for entry in entries:
        key = (entry.section, entry.page, entry.status, entry.title, entry.seen, entry.means)
        known = merged.get(key)
        if known is None:
            merged[key] = entry
        else:
            fixes = {fix.text: fix for fix in known.fixes}
            for fix in entry.fixes:
                if fix.text in fixes:
                    when = tuple(dict.fromkeys((*fixes[fix.text].when, *fix.when)))
                    fixes[fix.text] = Fix(fix.text, when)
                else:
                    fixes[fix.text] = fix
            merged[key] = dataclasses.replace(
                known, fixes=tuple(fixes.values()), hint=known.hint or entry.hint
            )
    sections = [s[0] for s in SECTIONS]
    return sorted(
        merged.values(),
        key=lambda e: (sections.index(e.section), pages.index(e.page) if e.page in pages else -1),
    )


# -- markdown ------------------------------------------------------------------------------


def _var(name: str) -> str:
    return f"<var>{html.escape(name)}</var>"


def _md(text: str) -> str:
    """Text for a markdown table cell: HTML-escaped, pipes escaped, placeholders as <var>."""
    text = html.escape(text, quote=False).replace("|", "\\|").replace("\n", "<br>")
    text = re.sub(r"(?<![\w`])([*_\[\]])", r"\\\1", text)
    return _HOLE.sub(lambda m: _var(m.group(1)), text)


def _page_title(page: str) -> str:
    from .notebook import TITLES

    return TITLES.get(page, page)


def _fix_cell(entry: Entry) -> str:
    """The fixes, each after the condition that sets it apart from the others."""
    cells: list[str] = []
    if len(entry.fixes) == 1:
        cells.append(_md(entry.fixes[0].text))
    else:
        conditions = [set(when) for fix in entry.fixes for when in fix.when]
        common = set.intersection(*conditions)
        labelled: list[str] = []
        others: list[str] = []
        for fix in entry.fixes:
            ways = [" and ".join(c for c in when if c not in common) for when in fix.when]
            if all(ways):
                text = " or ".join(dict.fromkeys(ways))
                if _KEY in text:
                    shown = _md(text.replace(_KEY, ""))
                else:
                    shown = "When " + _md(text)
                labelled.append(f"• *{shown}:* {_md(fix.text)}")
            else:
                others.append(fix.text)
        cells += labelled
        cells += [f"• *{'Otherwise' if labelled else 'Or'}:* {_md(text)}" for text in others]
    if entry.hint:
        cells.append(f"HINT: [{_page_title(entry.hint)}](notebooks/{entry.hint}.ipynb)")
    return "<br>".join(cells)


def _seen_cell(entry: Entry) -> str:
    if entry.status:
        return f"**{entry.status}** · {_md(entry.title)}: {_md(entry.seen)}"
    return _md(entry.seen)


def _tree() -> str:
    """The exception tree, as :mod:`runbook_lib._exceptions` documents it."""
    from . import _exceptions

    lines = (_exceptions.__doc__ or "").split("The tree::", 1)[-1].splitlines()
    block: list[str] = []
    for line in lines[1:]:
        if not line.strip():
            if block:
                break
            continue
        block.append(line[4:] if line.startswith("    ") else line)
    return "\n".join(block)


def render_page(entries: Sequence[Entry] | None = None) -> str:
    """The whole errors page as markdown."""
    entries = list(collect_entries() if entries is None else entries)
    out: list[str] = [
        "# Errors and what to do about them",
        "",
        "<!-- Generated by `python -m runbook_lib._errors_doc` from the messages in "
        "runbook_lib: change the library, then regenerate this page "
        "(tests/test_errors_doc.py fails while it is out of date). -->",
        "",
        "Every message the runbook can show is on this page, with what it means and what to "
        "do. In a notebook, an error is a bold sentence saying what went wrong, then how to fix "
        "it, then a **HINT** linking the page that fixes it; a check that does not pass is a row "
        "of the step's table, with its fix. `runbook run` and `runbook check` print the same "
        "sentences. To find yours, search this page (Ctrl+F or ⌘F) for a few words of it.",
        "",
        f"A word in italics, such as {_var('host')}, stands for what the message names at run "
        "time. When one message has several fixes, the condition in italics before each says "
        "which is yours: for a sign-in error, the `AADSTS` code in Entra's answer.",
        "",
    ]
    for section, title, intro in SECTIONS:
        chosen = [e for e in entries if e.section == section]
        if not chosen:
            continue
        out += [f"## {title}", "", intro, ""]
        pages: dict[str, list[Entry]] = {}
        for entry in chosen:
            pages.setdefault(entry.page, []).append(entry)
        for page, group in pages.items():
            if page:
                out += [f"### {_page_title(page)}", ""]
            meanings: dict[str, list[Entry]] = {}
            for entry in group:
                meanings.setdefault("" if section == "checks" else entry.means, []).append(entry)
            for means, same in meanings.items():
                if means:
                    out += [f"**What it means:** {means}", ""]
                out += ["| What you see | What to do |", "| --- | --- |"]
                out += [f"| {_seen_cell(e)} | {_fix_cell(e)} |" for e in same]
                out.append("")
    out += [
        "## For developers: the exception tree",
        "",
        "Every error the library raises is a `RunbookError` from `runbook_lib._exceptions`, "
        "with a `message`, a `remediation` and an optional `hint` (the page that fixes it); "
        "library errors keep the original exception as `__cause__`.",
        "",
        "```",
        _tree(),
        "```",
        "",
        "This page is generated: `python -m runbook_lib._errors_doc` reads the library's source "
        "and lists every place that builds an error with a remediation, a failed or warned "
        "check, or a problem in a parameters file (the module's docstring says how). A new "
        "message needs no edit here: run the command and commit the page. A new error class or "
        "pre-flight kind also needs a sentence in `CLASS_MEANINGS` or `KIND_MEANINGS` there.",
        "",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``docs/errors.md``; with ``--check``, only say whether it is up to date."""
    parser = argparse.ArgumentParser(
        prog="python -m runbook_lib._errors_doc",
        description="Generate the errors page from the messages in runbook_lib.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    parser.add_argument("--output", type=Path, default=PAGE, help=f"default: {PAGE}")
    args = parser.parse_args(argv)
    page = render_page()
    output: Path = args.output
    current = output.read_text(encoding="utf-8") if output.exists() else ""
    if args.check:
        if current != page:
            print(
                f"{output} is out of date: run `python -m runbook_lib._errors_doc`.",
                file=sys.stderr,
            )
            return 1
        print(f"{output} is up to date.")
        return 0
    if current == page:
        print(f"{output} was already up to date.")
    else:
        output.write_text(page, encoding="utf-8")
        print(f"Wrote {output}.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
