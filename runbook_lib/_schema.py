"""Reading and editing the provisioning job's synchronization schema.

The schema is one large JSON document; Graph only accepts it back whole (``PUT``), so these
helpers edit a copy in place and leave everything they do not understand untouched. They cover
what the vendor procedure cares about: the User and Group object mappings (which must stay
enabled) and the ``externalId`` attribute mapping (which Microsoft Device Compliance needs to
come from ``objectId``).
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass
from typing import Any

from ._exceptions import StepError

__all__ = [
    "MappingRow",
    "attribute_mapping",
    "direct_source",
    "external_id_source",
    "external_id_changes",
    "expected_external_id",
    "mapping_rows",
    "object_mapping",
    "render_mapping_table",
    "rule_for",
    "set_direct_source",
    "with_changes",
]


@dataclass(frozen=True)
class MappingRow:
    """One attribute mapping as the portal's Attribute Mapping page lists it."""

    object: str
    enabled: bool
    target: str
    source: str
    matching: int
    expected: str = ""

    @property
    def differs(self) -> bool:
        return bool(self.expected) and self.expected != self.source


def object_mapping(schema: dict[str, Any], source_object: str) -> dict[str, Any] | None:
    """The object mapping whose source is ``User`` or ``Group`` (first rule that has one)."""
    for rule in schema.get("synchronizationRules", []):
        for mapping in rule.get("objectMappings", []):
            if mapping.get("sourceObjectName") == source_object:
                return mapping  # type: ignore[no-any-return]
    return None


def rule_for(schema: dict[str, Any], source_object: str) -> str:
    """The id of the synchronization rule that provisions ``User`` or ``Group`` objects.

    provisionOnDemand needs it; a real ``scim`` job may hold several rules, so the rule is
    chosen by its object mappings (an enabled one first), never by position.
    """
    found: list[tuple[bool, str]] = []
    for rule in schema.get("synchronizationRules", []):
        for mapping in rule.get("objectMappings", []):
            if mapping.get("sourceObjectName") == source_object and rule.get("id"):
                found.append((bool(mapping.get("enabled", False)), str(rule["id"])))
    if not found:
        raise StepError(
            f"The provisioning schema has no rule that maps {source_object} objects.",
            "Reset the schema to the scim template's default (04-mappings-and-scope explains "
            "how) and run this page again.",
            hint="04-mappings-and-scope",
        )
    return sorted(found, key=lambda item: not item[0])[0][1]


def attribute_mapping(obj_mapping: dict[str, Any], target: str) -> dict[str, Any] | None:
    """The attribute mapping that writes ``target`` (e.g. ``externalId``)."""
    for mapping in obj_mapping.get("attributeMappings", []):
        if mapping.get("targetAttributeName") == target:
            return mapping  # type: ignore[no-any-return]
    return None


def _expression(source: dict[str, Any] | None) -> str:
    if not source:
        return ""
    return str(source.get("expression") or source.get("name") or "")


def direct_source(attr: dict[str, Any] | None) -> str | None:
    """The Entra attribute name when the mapping is a plain attribute, else None."""
    if attr is None:
        return None
    source = attr.get("source") or {}
    if source.get("type") == "Attribute":
        return str(source.get("name", ""))
    return None


def set_direct_source(attr: dict[str, Any], attribute: str) -> None:
    """Make ``attr`` a direct mapping from the Entra attribute ``attribute``."""
    attr["source"] = {
        "expression": f"[{attribute}]",
        "name": attribute,
        "parameters": [],
        "type": "Attribute",
    }


def external_id_source(schema: dict[str, Any], obj: str) -> str:
    """The expression ``externalId`` comes from for ``obj`` ('(not mapped)' when absent)."""
    mapping = object_mapping(schema, obj)
    attr = attribute_mapping(mapping, "externalId") if mapping else None
    return str(((attr or {}).get("source") or {}).get("expression", "(not mapped)"))


def external_id_changes(
    schema: dict[str, Any], expected: dict[str, str]
) -> list[tuple[str, str, str]]:
    """(object, current, expected) for every object whose externalId source is not as expected."""
    changes = []
    for obj, expression in expected.items():
        current = external_id_source(schema, obj)
        if current != expression:
            changes.append((obj, current, expression))
    return changes


def expected_external_id(device_compliance: bool) -> dict[str, str]:
    """What externalId must come from, per object; empty when the runbook does not care."""
    if device_compliance:
        return {"User": "[objectId]", "Group": "[objectId]"}
    return {}


def mapping_rows(
    schema: dict[str, Any], expected: dict[str, str] | None = None
) -> list[MappingRow]:
    """Every attribute mapping of the User and Group object mappings, as table rows."""
    rows: list[MappingRow] = []
    for obj in ("User", "Group"):
        mapping = object_mapping(schema, obj)
        if mapping is None:
            continue
        for attr in mapping.get("attributeMappings", []):
            target = str(attr.get("targetAttributeName", ""))
            want = (expected or {}).get(obj, "") if target == "externalId" else ""
            rows.append(
                MappingRow(
                    object=obj,
                    enabled=bool(mapping.get("enabled", False)),
                    target=target,
                    source=_expression(attr.get("source")) or str(attr.get("defaultValue", "")),
                    matching=int(attr.get("matchingPriority", 0) or 0),
                    expected=want,
                )
            )
    return rows


def render_mapping_table(rows: list[MappingRow]) -> str:
    """An HTML table; rows that differ from what is expected are marked."""
    body = "".join(
        "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>".format(
            html.escape(r.object),
            html.escape(r.target),
            html.escape(r.source),
            "matching" if r.matching else "",
            f'<span aria-hidden="true">❌</span> differs: expected <code>{html.escape(r.expected)}</code>'
            if r.differs
            else ('<span aria-hidden="true">✅</span> as expected' if r.expected else ""),
        )
        for r in rows
    )
    return (
        "<table><thead><tr><th>Object</th><th>Target (Iru)</th><th>Source (Entra)</th>"
        f"<th></th><th>Expected</th></tr></thead><tbody>{body}</tbody></table>"
    )


def with_changes(
    schema: dict[str, Any],
    *,
    enable: tuple[str, ...] = (),
    external_id: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of ``schema`` with object mappings enabled and externalId sources replaced."""
    updated = copy.deepcopy(schema)
    for obj in enable:
        mapping = object_mapping(updated, obj)
        if mapping is not None:
            mapping["enabled"] = True
    for obj, expression in (external_id or {}).items():
        mapping = object_mapping(updated, obj)
        if mapping is None:
            continue
        attr = attribute_mapping(mapping, "externalId")
        if attr is None:
            attr = {
                "targetAttributeName": "externalId",
                "defaultValue": None,
                "exportMissingReferences": False,
                "flowBehavior": "FlowWhenChanged",
                "flowType": "Always",
                "matchingPriority": 0,
            }
            mapping.setdefault("attributeMappings", []).append(attr)
        set_direct_source(attr, expression.strip("[]"))
    return updated
