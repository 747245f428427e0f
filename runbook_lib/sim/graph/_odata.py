"""The small slice of OData query options the sandbox's list endpoints understand.

Finding the app "by its display name, never by an id" is the runbook's core lookup,
so ``$filter`` on ``displayName`` behaves like Graph's directory: string literals in
single quotes with ``''`` as an escaped quote, ``eq`` and ``startswith`` compared
without regard to case. Anything outside that slice is refused with the same 400
Graph gives, rather than silently ignored, so a client cannot come to rely on a query
that the real service would reject.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from werkzeug.datastructures import MultiDict

from ._wire import GraphError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "ListQuery",
    "apply_select",
    "decode_skiptoken",
    "encode_skiptoken",
    "next_link",
    "odata_quote",
    "parse_filter",
    "parse_list_query",
    "parse_select",
]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999

_LITERAL = r"'((?:[^']|'')*)'"
_EQ = re.compile(rf"^\s*(\w+)\s+eq\s+{_LITERAL}\s*$")
_STARTSWITH = re.compile(rf"^\s*startswith\(\s*(\w+)\s*,\s*{_LITERAL}\s*\)\s*$")
_SKIPTOKEN_PREFIX = "RFNwdA"  # opaque-looking, like Graph's own tokens

# Properties each operator may be applied to (Graph supports more; the runbook needs these).
_EQ_PROPERTIES = {"displayName", "appId", "id"}
_STARTSWITH_PROPERTIES = {"displayName"}

_UNSUPPORTED_OPTIONS = ("$orderby", "$search", "$expand", "$count", "$skip", "$format")


def odata_quote(value: str) -> str:
    """Quote ``value`` as an OData string literal (the inverse of the parser)."""
    return "'" + value.replace("'", "''") + "'"


def _unsupported(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def _clause_message(prop: str) -> str:
    return (
        "Unsupported or invalid query filter clause specified for property "
        f"'{prop}' of resource 'ServicePrincipal'."
    )


def parse_filter(expression: str) -> Callable[[Mapping[str, Any]], bool]:
    """Turn a ``$filter`` expression into a predicate over rendered resources."""
    match = _EQ.match(expression)
    if match:
        prop, literal = match.group(1), match.group(2).replace("''", "'")
        if prop not in _EQ_PROPERTIES:
            raise _unsupported(_clause_message(prop))
        wanted = literal.casefold()
        return lambda item: str(item.get(prop) or "").casefold() == wanted
    match = _STARTSWITH.match(expression)
    if match:
        prop, literal = match.group(1), match.group(2).replace("''", "'")
        if prop not in _STARTSWITH_PROPERTIES:
            raise _unsupported(_clause_message(prop))
        prefix = literal.casefold()
        return lambda item: str(item.get(prop) or "").casefold().startswith(prefix)
    raise _unsupported("Unsupported Query.")


def encode_skiptoken(offset: int) -> str:
    """An opaque ``$skiptoken`` for the page starting at ``offset``."""
    raw = base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")
    return _SKIPTOKEN_PREFIX + raw


def decode_skiptoken(token: str) -> int:
    """The offset behind a token from :func:`encode_skiptoken`, or a 400."""
    bad = GraphError(400, "Request_BadRequest", "'$skiptoken' is invalid.")
    if not token.startswith(_SKIPTOKEN_PREFIX):
        raise bad
    raw = token[len(_SKIPTOKEN_PREFIX) :]
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    kind, _, number = text.partition(":")
    if kind != "offset" or not number.isdigit():
        raise bad
    return int(number)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The query options of a list request, validated."""

    predicate: Callable[[Mapping[str, Any]], bool] | None
    select: tuple[str, ...]
    top: int
    offset: int


def parse_list_query(args: Mapping[str, str], known_properties: set[str]) -> ListQuery:
    """Validate ``$filter``, ``$select``, ``$top`` and ``$skiptoken``."""
    for option in _UNSUPPORTED_OPTIONS:
        if option in args:
            raise _unsupported(f"The query option '{option}' is not supported by this sandbox.")
    predicate = parse_filter(args["$filter"]) if "$filter" in args else None
    select = parse_select(args.get("$select"), known_properties)
    top = DEFAULT_PAGE_SIZE
    if "$top" in args:
        text = args["$top"].strip()
        if not text.lstrip("-").isdigit():
            raise GraphError(
                400, "Request_BadRequest", f"Invalid value '{text}' for query option '$top'."
            )
        top = int(text)
        if not 1 <= top <= MAX_PAGE_SIZE:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Invalid page size specified: '{top}'. "
                f"Must be between 1 and {MAX_PAGE_SIZE} inclusive.",
            )
    offset = decode_skiptoken(args["$skiptoken"]) if "$skiptoken" in args else 0
    return ListQuery(predicate, select, top, offset)


def parse_select(value: str | None, known_properties: set[str]) -> tuple[str, ...]:
    """Validate a ``$select`` list against the resource's properties."""
    if value is None:
        return ()
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    for name in names:
        if name not in known_properties:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type "
                "'microsoft.graph.servicePrincipal'.",
            )
    return names


def apply_select(item: dict[str, Any], select: tuple[str, ...]) -> dict[str, Any]:
    """Keep only the selected properties (all of them when nothing was selected)."""
    if not select:
        return item
    return {name: item[name] for name in select if name in item}


def next_link(url: str, args: MultiDict[str, str], next_offset: int) -> str:
    """``url`` with the request's query options and a ``$skiptoken`` for ``next_offset``.

    Graph's nextLink repeats every query option of the request, so following it needs
    no state on the client's side.
    """
    kept = [(key, value) for key, value in args.items(multi=True) if key != "$skiptoken"]
    kept.append(("$skiptoken", encode_skiptoken(next_offset)))
    return f"{url}?" + urlencode(kept, quote_via=quote, safe="$'(),:")
