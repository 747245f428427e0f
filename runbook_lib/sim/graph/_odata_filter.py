"""A small OData ``$filter`` parser for the directory and audit-log endpoints.

It covers what clients of these endpoints write: comparisons (``eq ne gt ge lt le``),
``in``, ``and``/``or``/``not`` with parentheses, the functions ``startswith``,
``endswith``, ``contains``, ``tolower`` and ``toupper``, slash paths
(``servicePrincipal/id``) and the lambda ``groupTypes/any(c:c eq 'Unified')``.

Parsing yields a tree plus what it touched (property roots, whether it needs Graph's
*advanced query* mode), so each endpoint can refuse properties and operators it does
not support with the same 400 Graph gives instead of silently matching nothing.
Values are read through a resolver, so the same tree filters records or rendered JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._wire import GraphError

__all__ = ["FilterExpression", "Resolver", "parse_odata_filter"]

Resolver = Callable[[tuple[str, ...]], Any]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<punct>[(),:/])
  | (?P<name>[A-Za-z_$@][A-Za-z0-9_.$@]*)
    """,
    re.VERBOSE,
)
_COMPARE = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_FUNCTIONS = frozenset({"startswith", "endswith", "contains", "tolower", "toupper"})
_ADVANCED_FUNCTIONS = frozenset({"endswith"})


def _bad(message: str = "Invalid filter clause") -> GraphError:
    return GraphError(400, "BadRequest", message)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _bad(f"Syntax error at position {position} in '{text}'.")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group()))
    return tokens


def _to_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- tree -----------------------------------------------------------------------------


class _Node:
    def eval(self, resolve: Resolver, scope: Mapping[str, Any], fold: bool) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class _Literal(_Node):
    value: Any

    def eval(self, resolve: Resolver, scope: Mapping[str, Any], fold: bool) -> Any:
        return self.value


@dataclass(frozen=True)
class _Path(_Node):
    parts: tuple[str, ...]

    def eval(self, resolve: Resolver, scope: Mapping[str, Any], fold: bool) -> Any:
        if self.parts[0] in scope:
            value = scope[self.parts[0]]
            for part in self.parts[1:]:
                value = value.get(part) if isinstance(value, dict) else None
            return value
        return resolve(self.parts)


@dataclass(frozen=True)
class _Call(_Node):
    name: str
    args: tuple[_Node, ...]

    def eval(self, resolve: Resolver, scope: Mapping[str, Any], fold: bool) -> Any:
        values = [arg.eval(resolve, scope, fold) for arg in self.args]
        if self.name in ("tolower", "toupper"):
            value = values[0]
            if not isinstance(value, str):
                return value
            return value.lower() if self.name == "tolower" else value.upper()
        subject, needle = values
        if not isinstance(subject, str) or not isinstance(needle, str):
            return False
        if fold:
            subject, needle = subject.casefold(), needle.casefold()
        if self.name == "startswith":
            return subject.startswith(needle)
        if self.name == "endswith":
            return subject.endswith(needle)
        return needle in subject


def _equal(left: Any, right: Any, fold: bool) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold() if fold else left == right
    if isinstance(right, datetime) or isinstance(left, datetime):
        return _to_datetime(left) == _to_datetime(right)
    return bool(left == right)


def _order(left: Any, right: Any, op: str) -> bool:
    if isinstance(left, datetime) or isinstance(right, datetime):
        left, right = _to_datetime(left), _to_datetime(right)
    if left is None or right is None:
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


@dataclass(frozen=True)
class _Compare(_Node):
    op: str
    left: _Node
    right: _Node

    def eval(self, resolve: Resolver, scope: Mapping[str, Any], fold: bool) -> Any:
        left = self.left.eval(resolve, scope, fold)
        right = self.right.eval(resolve, scope, fold)
        if self.op == "eq":
            return _equal(left, right, fold)
        if self.op == "ne":
            return not _equal(left, right, fold)
        return _order(left, right, self.op)


@dataclass(frozen=True)
class _In(_Node):
    left: _Node
    options: tuple[Any, ...]

    def eval(self, resolve: Resolver, scope: Mapping[str, Any], fold: bool) -> Any:
        value = self.left.eval(resolve, scope, fold)
        return any(_equal(value, option, fold) for option in self.options)


@dataclass(frozen=True)
class _Bool(_Node):
    op: str
    parts: tuple[_Node, ...]

    def eval(self, resolve: Resolver, scope: Mapping[str, Any], fold: bool) -> Any:
        if self.op == "not":
            return not self.parts[0].eval(resolve, scope, fold)
        if self.op == "and":
            return all(part.eval(resolve, scope, fold) for part in self.parts)
        return any(part.eval(resolve, scope, fold) for part in self.parts)


@dataclass(frozen=True)
class _Lambda(_Node):
    collection: _Path
    quantifier: str
    variable: str
    body: _Node

    def eval(self, resolve: Resolver, scope: Mapping[str, Any], fold: bool) -> Any:
        items = self.collection.eval(resolve, scope, fold) or []
        results = (self.body.eval(resolve, {**scope, self.variable: item}, fold) for item in items)
        return any(results) if self.quantifier == "any" else all(results)


# -- parser ---------------------------------------------------------------------------


@dataclass
class FilterExpression:
    """A parsed ``$filter``: call :meth:`matches`; check :attr:`roots` and :attr:`advanced`."""

    text: str
    root: _Node
    roots: set[str] = field(default_factory=set)
    paths: set[tuple[str, ...]] = field(default_factory=set)
    advanced: bool = False
    fold: bool = True

    def matches(self, resolve: Resolver) -> bool:
        """Whether the object behind ``resolve`` satisfies the filter."""
        return bool(self.root.eval(resolve, {}, self.fold))

    def equality(self) -> tuple[tuple[str, ...], Any] | None:
        """``(path, value)`` when the whole filter is one ``path eq literal``."""
        node = self.root
        if isinstance(node, _Compare) and node.op == "eq":
            if isinstance(node.left, _Path) and isinstance(node.right, _Literal):
                return node.left.parts, node.right.value
        return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.result = FilterExpression(text, _Literal(True))
        self.variables: list[str] = []

    def peek(self, offset: int = 0) -> _Token | None:
        position = self.index + offset
        return self.tokens[position] if position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise _bad(f"Unexpected end of filter '{self.text}'.")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise _bad(f"Syntax error: expected '{text}' but found '{token.text}'.")

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.text in words

    def parse(self) -> FilterExpression:
        self.result.root = self.parse_or()
        if self.peek() is not None:
            raise _bad(f"Syntax error: unexpected '{self.take().text}' in '{self.text}'.")
        return self.result

    def parse_or(self) -> _Node:
        parts = [self.parse_and()]
        while self.at_word("or"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else _Bool("or", tuple(parts))

    def parse_and(self) -> _Node:
        parts = [self.parse_not()]
        while self.at_word("and"):
            self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else _Bool("and", tuple(parts))

    def parse_not(self) -> _Node:
        if self.at_word("not"):
            self.take()
            self.result.advanced = True
            return _Bool("not", (self.parse_not(),))
        return self.parse_comparison()

    def parse_comparison(self) -> _Node:
        left = self.parse_operand()
        if self.at_word(*_COMPARE):
            op = self.take().text
            if op == "ne":
                self.result.advanced = True
            return _Compare(op, left, self.parse_operand())
        if self.at_word("in"):
            self.take()
            self.expect("(")
            options = [self.parse_literal_token(self.take())]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                options.append(self.parse_literal_token(self.take()))
            self.expect(")")
            return _In(left, tuple(options))
        return left

    def parse_literal_token(self, token: _Token) -> Any:
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "datetime":
            parsed = _to_datetime(token.text)
            if parsed is None:
                raise _bad(f"Invalid date '{token.text}'.")
            return parsed
        if token.kind == "name" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        raise _bad(f"Syntax error: '{token.text}' is not a literal.")

    def parse_operand(self) -> _Node:
        token = self.take()
        if token.text == "(":
            inner = self.parse_or()
            self.expect(")")
            return inner
        if token.kind != "name" or token.text in ("true", "false", "null"):
            return _Literal(self.parse_literal_token(token))
        next_token = self.peek()
        if token.text.lower() in _FUNCTIONS and next_token is not None and next_token.text == "(":
            return self.parse_call(token.text.lower())
        return self.parse_path(token.text)

    def parse_call(self, name: str) -> _Node:
        self.expect("(")
        args = [self.parse_operand()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            args.append(self.parse_operand())
        self.expect(")")
        expected = 1 if name in ("tolower", "toupper") else 2
        if len(args) != expected:
            raise _bad(f"The function '{name}' takes {expected} argument(s).")
        if name in _ADVANCED_FUNCTIONS:
            self.result.advanced = True
        return _Call(name, tuple(args))

    def parse_path(self, first: str) -> _Node:
        parts = [first]
        while self.peek() is not None and self.peek().text == "/":  # type: ignore[union-attr]
            self.take()
            segment = self.take()
            if segment.kind != "name":
                raise _bad(f"Syntax error in the property path after '{'/'.join(parts)}'.")
            if segment.text in ("any", "all") and self.peek() is not None:
                return self.parse_lambda(tuple(parts), segment.text)
            parts.append(segment.text)
        path = tuple(parts)
        if parts[0] not in self.variables:
            self.result.roots.add(parts[0])
            self.result.paths.add(path)
        return _Path(path)

    def parse_lambda(self, collection: tuple[str, ...], quantifier: str) -> _Node:
        self.expect("(")
        variable = self.take()
        if variable.kind != "name":
            raise _bad("Syntax error: a lambda needs a variable name.")
        self.expect(":")
        self.variables.append(variable.text)
        body = self.parse_or()
        self.variables.pop()
        self.expect(")")
        if collection[0] not in self.variables:
            self.result.roots.add(collection[0])
            self.result.paths.add(collection)
        return _Lambda(_Path(collection), quantifier, variable.text, body)


def parse_odata_filter(text: str, *, case_insensitive: bool = True) -> FilterExpression:
    """Parse ``text``; raises a 400 :class:`GraphError` on a syntax error."""
    if not text.strip():
        raise _bad("The $filter expression is empty.")
    parsed = _Parser(text).parse()
    parsed.fold = case_insensitive
    return parsed
