"""Entra attribute-mapping expressions: parse, convert to Graph JSON, evaluate.

An attribute mapping's source is an expression such as ``[mailNickname]``,
``"constant"`` or ``Switch([IsSoftDeleted], , "False", "True", "True", "False")``.
Graph stores it twice: as the ``expression`` string and as a tree
(``{"expression", "name", "type": Attribute|Constant|Function, "parameters"}``). The
sandbox treats the string as authoritative when present (it is what the portal shows
and what ``parseExpression`` produces) and falls back to the tree otherwise.

Values are strings or None, as in Entra: booleans travel as "True"/"False", and
``Switch`` compares case-sensitively. The functions are the ones mappings to a SCIM
app use in practice; an unknown function is refused when the schema is saved.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FUNCTIONS",
    "Expr",
    "ExpressionError",
    "expr_from_source",
    "parse_expression",
]

ExprType = Literal["Attribute", "Constant", "Function"]
Getter = Callable[[str], str | None]

# Parameter names by position, used for the JSON form (the last name repeats).
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "Append": ("source", "suffix"),
    "Coalesce": ("source",),
    "IIF": ("condition", "valueIfTrue", "valueIfFalse"),
    "IsNull": ("Expression",),
    "IsNullOrEmpty": ("Expression",),
    "IsPresent": ("Expression",),
    "Join": ("separator", "source"),
    "Left": ("String", "NumChars"),
    "Mid": ("source", "start", "length"),
    "NormalizeDiacritics": ("source",),
    "Not": ("source",),
    "Replace": (
        "source",
        "oldValue",
        "regexPattern",
        "regexGroupName",
        "replacementValue",
        "replacementAttributeName",
        "template",
    ),
    "SingleAppRoleAssignment": ("source",),
    "StripSpaces": ("source",),
    "Switch": ("source", "defaultValue", "key", "value"),
    "ToLower": ("source", "culture"),
    "ToUpper": ("source", "culture"),
}
FUNCTIONS: frozenset[str] = frozenset(_SIGNATURES)


class ExpressionError(ValueError):
    """An expression that does not parse, or uses an unknown function."""


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed expression. Function arguments may be None (an empty argument)."""

    type: ExprType
    name: str
    args: tuple[Expr | None, ...] = ()

    def text(self) -> str:
        """The expression in Entra's syntax."""
        if self.type == "Attribute":
            return f"[{self.name}]"
        if self.type == "Constant":
            return '"' + self.name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        inner = ", ".join("" if arg is None else arg.text() for arg in self.args)
        return f"{self.name}({inner})"

    def to_source(self) -> dict[str, Any]:
        """The attributeMappingSource JSON Graph uses for this expression."""
        parameters: list[dict[str, Any]] = []
        if self.type == "Function":
            names = _SIGNATURES.get(self.name, ("source",))
            for position, arg in enumerate(self.args):
                if arg is None:
                    continue
                if self.name == "Switch" and position >= 2:
                    key = "key" if position % 2 == 0 else "value"
                else:
                    key = names[min(position, len(names) - 1)]
                parameters.append({"key": key, "value": arg.to_source()})
        return {
            "expression": self.text(),
            "name": self.name,
            "parameters": parameters,
            "type": self.type,
        }

    def attributes(self) -> set[str]:
        """Every source attribute the expression reads."""
        if self.type == "Attribute":
            return {self.name}
        found: set[str] = set()
        for arg in self.args:
            if arg is not None:
                found |= arg.attributes()
        return found

    def evaluate(self, get: Getter) -> str | None:
        """The value for the object whose attributes ``get`` returns."""
        if self.type == "Attribute":
            return get(self.name)
        if self.type == "Constant":
            return self.name
        return _call(self.name, self.args, get)


def _value(arg: Expr | None, get: Getter) -> str | None:
    return None if arg is None else arg.evaluate(get)


def _int(arg: Expr | None, get: Getter) -> int:
    try:
        return int(_value(arg, get) or "0")
    except ValueError:
        return 0


def _switch(args: tuple[Expr | None, ...], get: Getter) -> str | None:
    subject = _value(args[0], get)
    pairs = args[2:]
    for index in range(0, len(pairs) - 1, 2):
        if subject is not None and subject == _value(pairs[index], get):
            return _value(pairs[index + 1], get)
    return _value(args[1], get) if len(args) > 1 else None


def _replace(args: tuple[Expr | None, ...], get: Getter) -> str | None:
    source = _value(args[0], get)
    if source is None:
        return None
    padded = list(args) + [None] * (7 - len(args))
    old, pattern = _value(padded[1], get), _value(padded[2], get)
    replacement = _value(padded[4], get)
    if replacement is None and padded[5] is not None:
        replacement = _value(padded[5], get)
    replacement = replacement or ""
    if pattern:
        try:
            return re.sub(pattern, replacement, source)
        except re.error:
            return source
    return source.replace(old, replacement) if old else source


def _truth(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def _call(name: str, args: tuple[Expr | None, ...], get: Getter) -> str | None:
    first = _value(args[0], get) if args else None
    if name == "Switch":
        return _switch(args, get)
    if name == "Join":
        separator = _value(args[0], get) or ""
        parts = [v for v in (_value(a, get) for a in args[1:]) if v]
        return separator.join(parts) if parts else None
    if name == "Not":
        return None if first is None else ("False" if _truth(first) else "True")
    if name == "Append":
        suffix = _value(args[1], get) if len(args) > 1 else None
        return None if first is None else first + (suffix or "")
    if name == "Coalesce":
        return next((v for v in (_value(a, get) for a in args) if v), None)
    if name == "IIF":
        chosen = args[1] if _truth(first) else (args[2] if len(args) > 2 else None)
        return _value(chosen, get)
    if name == "IsNull":
        return "True" if first is None else "False"
    if name == "IsNullOrEmpty":
        return "True" if not first else "False"
    if name == "IsPresent":
        return "False" if not first else "True"
    if name in ("ToLower", "ToUpper"):
        if first is None:
            return None
        return first.lower() if name == "ToLower" else first.upper()
    if name == "Left":
        return None if first is None else first[: max(0, _int(args[1], get))]
    if name == "Mid":
        if first is None:
            return None
        start = max(1, _int(args[1], get)) - 1
        return first[start : start + max(0, _int(args[2], get))]
    if name == "NormalizeDiacritics":
        if first is None:
            return None
        decomposed = unicodedata.normalize("NFKD", first)
        return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    if name == "StripSpaces":
        return None if first is None else first.replace(" ", "")
    if name == "Replace":
        return _replace(args, get)
    if name == "SingleAppRoleAssignment":
        return first
    raise ExpressionError(f"The function '{name}' is not supported.")


# -- parsing --------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<attribute>\[[^\]]+\])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"Syntax error at position {position} of '{text}'.")
        position = match.end()
        if match.lastgroup != "ws":
            found.append((match.lastgroup or "", match.group()))
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ExpressionError(f"Unexpected end of expression '{self.text}'.")
        self.index += 1
        return token

    def parse(self) -> Expr:
        expr = self.operand()
        if self.peek() is not None:
            raise ExpressionError(f"Unexpected '{self.take()[1]}' in '{self.text}'.")
        return expr

    def operand(self) -> Expr:
        kind, text = self.take()
        if kind == "attribute":
            return Expr("Attribute", text[1:-1].strip())
        if kind == "string":
            return Expr("Constant", re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "number":
            return Expr("Constant", text)
        if kind == "name":
            if self.peek() != ("punct", "("):
                raise ExpressionError(f"'{text}' must be followed by '(' in '{self.text}'.")
            if text not in FUNCTIONS:
                raise ExpressionError(f"The function '{text}' is not supported.")
            self.take()
            return Expr("Function", text, self.arguments())
        raise ExpressionError(f"Unexpected '{text}' in '{self.text}'.")

    def arguments(self) -> tuple[Expr | None, ...]:
        args: list[Expr | None] = []
        if self.peek() == ("punct", ")"):
            self.take()
            return ()
        while True:
            if self.peek() in (("punct", ","), ("punct", ")")):
                args.append(None)
            else:
                args.append(self.operand())
            kind, text = self.take()
            if text == ")":
                return tuple(args)
            if text != ",":
                raise ExpressionError(f"Expected ',' or ')' but found '{text}' in '{self.text}'.")


def parse_expression(text: str) -> Expr:
    """Parse an expression string; raises :class:`ExpressionError`."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("The expression is empty.")
    return _Parser(text).parse()


def expr_from_source(source: Mapping[str, Any]) -> Expr:
    """An :class:`Expr` from attributeMappingSource JSON (the string wins when present)."""
    expression = source.get("expression")
    if isinstance(expression, str) and expression.strip():
        return parse_expression(expression)
    kind, name = source.get("type"), source.get("name")
    if not isinstance(name, str):
        raise ExpressionError("An attribute mapping source needs an 'expression' or a 'name'.")
    if kind == "Attribute":
        return Expr("Attribute", name)
    if kind == "Constant":
        return Expr("Constant", name)
    if kind != "Function":
        raise ExpressionError(f"Unknown source type {kind!r}.")
    if name not in FUNCTIONS:
        raise ExpressionError(f"The function '{name}' is not supported.")
    parameters = source.get("parameters") or []
    if not isinstance(parameters, list):
        raise ExpressionError("'parameters' must be a list.")
    args: tuple[Expr | None, ...] = tuple(
        expr_from_source(p["value"])
        for p in parameters
        if isinstance(p, dict) and isinstance(p.get("value"), dict)
    )
    if name == "Switch" and len(args) % 2 == 1:
        # The default value was left out of the JSON form: restore its slot.
        args = (args[0], None, *args[1:])
    return Expr("Function", name, args)
