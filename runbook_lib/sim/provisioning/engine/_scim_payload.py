"""SCIM request bodies built the way Entra's provisioning service builds them.

Target attribute names in an Entra schema are SCIM paths: ``userName``,
``name.givenName``, ``emails[type eq "work"].value`` or an extension attribute such as
``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``. This module
turns mapped values into a POST body, reads the same paths back out of a SCIM
resource, and turns changes into PATCH operations in either of Entra's two dialects:

* default: one operation per attribute, ops capitalised (``Add``/``Replace``/
  ``Remove``), booleans as the strings "True"/"False", member removal with a value
  list;
* ``aadOptscim062020``: lower-case ops, real booleans, one path-less ``replace`` for
  plain single-valued attributes, filtered paths as their own operations, member
  removal by the filtered path ``members[value eq "..."]``.

A group is created with two schema URNs, the SCIM core one and Microsoft's
``http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group`` (:data:`ADSCIM_GROUP`),
as in the body Microsoft's SCIM tutorial shows. The URN names no schema a SCIM server
publishes, so a target has to tolerate it; one that keeps it returns it on every read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADSCIM_GROUP",
    "CORE_GROUP",
    "CORE_USER",
    "ENTERPRISE",
    "PATCH_OP",
    "Change",
    "TargetPath",
    "group_body",
    "member_ops",
    "patch_ops",
    "read_value",
    "user_body",
]

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

_FILTERED = re.compile(r'^(\w+)\[type eq "([^"]+)"\]\.(\w+)$')
_DOTTED = re.compile(r"^(\w+)\.(\w+)$")


@dataclass(frozen=True, slots=True)
class TargetPath:
    """A parsed target attribute name."""

    text: str
    attribute: str
    sub: str | None = None
    type_filter: str | None = None
    extension: str | None = None

    @classmethod
    def parse(cls, text: str) -> TargetPath:
        """Split ``text`` into its parts (extension, attribute, filter, sub-attribute)."""
        if text.startswith("urn:"):
            extension, _, attribute = text.rpartition(":")
            return cls(text, attribute, extension=extension)
        match = _FILTERED.match(text)
        if match:
            return cls(text, match.group(1), match.group(3), match.group(2))
        match = _DOTTED.match(text)
        if match:
            return cls(text, match.group(1), match.group(2))
        return cls(text, text)

    @property
    def plain(self) -> bool:
        """True for single-valued paths a path-less replace can carry."""
        return self.type_filter is None


@dataclass(frozen=True, slots=True)
class Change:
    """One attribute whose target value must change (old None: it had none)."""

    path: str
    old: str | None
    new: str | None
    kind: str  # the target attribute type: String, Boolean, Reference


def _typed(value: str, kind: str, *, strings_for_booleans: bool) -> Any:
    if kind == "Boolean":
        truth = value.strip().lower() == "true"
        if strings_for_booleans:
            return "True" if truth else "False"
        return truth
    if kind == "Reference":
        return {"value": value}
    return value


def _put(body: dict[str, Any], path: TargetPath, value: Any) -> None:
    if path.extension is not None:
        body.setdefault(path.extension, {})[path.attribute] = value
        return
    if path.type_filter is not None and path.sub is not None:
        entries: list[dict[str, Any]] = body.setdefault(path.attribute, [])
        entry = next((e for e in entries if e.get("type") == path.type_filter), None)
        if entry is None:
            entry = {"type": path.type_filter}
            if path.attribute == "emails":
                entry["primary"] = True
            entries.append(entry)
        entry[path.sub] = value
        return
    if path.sub is not None:
        body.setdefault(path.attribute, {})[path.sub] = value
        return
    body[path.attribute] = value


def user_body(values: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A POST /Users body from ``{target path: (value, type)}`` (None values left out)."""
    body: dict[str, Any] = {"schemas": [CORE_USER, ENTERPRISE]}
    for target, (value, kind) in values.items():
        _put(body, TargetPath.parse(target), _typed(value, kind, strings_for_booleans=False))
    body["meta"] = {"resourceType": "User"}
    body.setdefault("roles", [])
    return body


def group_body(values: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A POST /Groups body with Entra's two URNs; no members (Entra adds them with PATCH)."""
    body: dict[str, Any] = {"schemas": [CORE_GROUP, ADSCIM_GROUP]}
    for target, (value, kind) in values.items():
        if target == "members":
            continue
        _put(body, TargetPath.parse(target), _typed(value, kind, strings_for_booleans=False))
    body["meta"] = {"resourceType": "Group"}
    return body


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return _text(value.get("value"))
    return str(value)


def read_value(resource: dict[str, Any], target: str) -> str | None:
    """The value ``resource`` holds at ``target``, as a string (None when absent)."""
    path = TargetPath.parse(target)
    if path.extension is not None:
        block = resource.get(path.extension)
        return _text(block.get(path.attribute)) if isinstance(block, dict) else None
    value = resource.get(path.attribute)
    if path.type_filter is not None:
        if not isinstance(value, list):
            return None
        for entry in value:
            if isinstance(entry, dict) and entry.get("type") == path.type_filter:
                return _text(entry.get(path.sub or "value"))
        return None
    if path.sub is not None:
        return _text(value.get(path.sub)) if isinstance(value, dict) else None
    return _text(value)


def _op(name: str, flagged: bool) -> str:
    return name.lower() if flagged else name


def patch_ops(changes: list[Change], *, flagged: bool) -> list[dict[str, Any]]:
    """PATCH operations for ``changes`` in Entra's default or ``aadOptscim062020`` dialect."""
    ops: list[dict[str, Any]] = []
    merged: dict[str, Any] = {}
    for change in changes:
        path = TargetPath.parse(change.path)
        if change.new is None:
            ops.append({"op": _op("Remove", flagged), "path": change.path})
            continue
        value = _typed(change.new, change.kind, strings_for_booleans=not flagged)
        verb = "Add" if change.old is None else "Replace"
        if flagged and verb == "Replace" and path.plain and change.path != "active":
            merged[change.path] = value
            continue
        ops.append({"op": _op(verb, flagged), "path": change.path, "value": value})
    if merged:
        ops.insert(0, {"op": "replace", "value": merged})
    return ops


def member_ops(add: list[str], remove: list[str], *, flagged: bool) -> list[list[dict[str, Any]]]:
    """Member PATCH operation lists (one list per request), 100 members per request."""
    requests: list[list[dict[str, Any]]] = []
    for start in range(0, len(add), 100):
        chunk = add[start : start + 100]
        value = [{"$ref": None, "value": member} for member in chunk]
        requests.append([{"op": _op("Add", flagged), "path": "members", "value": value}])
    if flagged:
        for start in range(0, len(remove), 100):
            chunk = remove[start : start + 100]
            requests.append(
                [{"op": "remove", "path": f'members[value eq "{member}"]'} for member in chunk]
            )
    else:
        for start in range(0, len(remove), 100):
            chunk = remove[start : start + 100]
            value = [{"value": member} for member in chunk]
            requests.append([{"op": "Remove", "path": "members", "value": value}])
    return requests
