"""The synchronization schema of a ``scim`` job: the default document, PUT checks, compiling.

GET returns the whole document; PUT replaces it and must carry all of it. The default
is the non-gallery ``scim`` template: one rule, ``USERGROUP_OUTBOUND_USERGROUP``, with
a User object mapping (``externalId <- mailNickname``, ``userName <- userPrincipalName``
as the matching attribute, ``active <- Switch([IsSoftDeleted], ...)`` and the rest of
the portal's defaults) and a Group object mapping (``externalId <- objectId``,
``displayName`` matching, ``members``).

A saved document is *compiled* into :class:`CompiledSchema` for the engine: parsed
expressions, attribute types from the target directory definitions, the matching
attribute, flow types and scoping filters. Compiling is also the PUT validation, so
a schema the engine could not run is refused with a 400 instead of being stored.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._expressions import Expr, ExpressionError, expr_from_source, parse_expression

__all__ = [
    "ENTERPRISE_USER",
    "GROUP_OBJECT",
    "SCIM_RULE_ID",
    "SCIM_RULE_NAME",
    "SOURCE_DIRECTORY",
    "TARGET_DIRECTORY",
    "AttributeRule",
    "CompiledSchema",
    "ObjectRule",
    "SchemaError",
    "ScopeFilter",
    "compile_schema",
    "copy_document",
    "default_schema",
]

SOURCE_DIRECTORY = "Azure Active Directory"
TARGET_DIRECTORY = "customappsso"
SCIM_RULE_ID = "03f7d90d-bf71-41b1-bda6-aaf0ddbee5d8"
SCIM_RULE_NAME = "USERGROUP_OUTBOUND_USERGROUP"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_OBJECT = "urn:ietf:params:scim:schemas:core:2.0:Group"
_FLOW_TYPES = frozenset({"Add", "Update", "Delete"})
_ATTRIBUTE_FLOWS = frozenset(
    {"Always", "ObjectAddOnly", "MultiValueAddOnly", "ValueAddOnly", "AttributeAddOnly"}
)
_SWITCH_ACTIVE = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'

# (name, type, multivalued, anchor) of the source directory's objects.
_SOURCE_USER = (
    ("objectId", "String", False, True),
    ("accountEnabled", "Boolean", False, False),
    ("appRoleAssignments", "String", True, False),
    ("city", "String", False, False),
    ("companyName", "String", False, False),
    ("country", "String", False, False),
    ("department", "String", False, False),
    ("displayName", "String", False, False),
    ("employeeId", "String", False, False),
    ("facsimileTelephoneNumber", "String", False, False),
    ("givenName", "String", False, False),
    ("IsSoftDeleted", "Boolean", False, False),
    ("jobTitle", "String", False, False),
    ("mail", "String", False, False),
    ("mailNickname", "String", False, False),
    ("manager", "Reference", False, False),
    ("mobile", "String", False, False),
    ("physicalDeliveryOfficeName", "String", False, False),
    ("postalCode", "String", False, False),
    ("preferredLanguage", "String", False, False),
    ("state", "String", False, False),
    ("streetAddress", "String", False, False),
    ("surname", "String", False, False),
    ("telephoneNumber", "String", False, False),
    ("userPrincipalName", "String", False, False),
    ("userType", "String", False, False),
)
_SOURCE_GROUP = (
    ("objectId", "String", False, True),
    ("appRoleAssignments", "String", True, False),
    ("description", "String", False, False),
    ("displayName", "String", False, False),
    ("IsSoftDeleted", "Boolean", False, False),
    ("mail", "String", False, False),
    ("mailEnabled", "Boolean", False, False),
    ("mailNickname", "String", False, False),
    ("members", "Reference", True, False),
    ("securityEnabled", "Boolean", False, False),
)

# (target attribute, source expression, matching priority) of the default mappings.
_USER_MAPPINGS = (
    ("userName", "[userPrincipalName]", 1),
    ("active", _SWITCH_ACTIVE, 0),
    ("displayName", "[displayName]", 0),
    ("title", "[jobTitle]", 0),
    ('emails[type eq "work"].value', "[mail]", 0),
    ("preferredLanguage", "[preferredLanguage]", 0),
    ("name.givenName", "[givenName]", 0),
    ("name.familyName", "[surname]", 0),
    ("name.formatted", 'Join(" ", [givenName], [surname])', 0),
    ('addresses[type eq "work"].formatted', "[physicalDeliveryOfficeName]", 0),
    ('addresses[type eq "work"].streetAddress', "[streetAddress]", 0),
    ('addresses[type eq "work"].locality', "[city]", 0),
    ('addresses[type eq "work"].region', "[state]", 0),
    ('addresses[type eq "work"].postalCode', "[postalCode]", 0),
    ('addresses[type eq "work"].country', "[country]", 0),
    ('phoneNumbers[type eq "work"].value', "[telephoneNumber]", 0),
    ('phoneNumbers[type eq "mobile"].value', "[mobile]", 0),
    ('phoneNumbers[type eq "fax"].value', "[facsimileTelephoneNumber]", 0),
    ("externalId", "[mailNickname]", 0),
    (f"{ENTERPRISE_USER}:employeeNumber", "[employeeId]", 0),
    (f"{ENTERPRISE_USER}:department", "[department]", 0),
    (f"{ENTERPRISE_USER}:manager", "[manager]", 0),
)
_GROUP_MAPPINGS = (
    ("displayName", "[displayName]", 1),
    ("externalId", "[objectId]", 0),
    ("members", "[members]", 0),
)

# Target (SCIM) attributes the engine can write, with their types.
_TARGET_USER_TYPES: dict[str, str] = {
    "id": "String",
    "active": "Boolean",
    "displayName": "String",
    "externalId": "String",
    "nickName": "String",
    "preferredLanguage": "String",
    "title": "String",
    "userName": "String",
    "userType": "String",
    "name.givenName": "String",
    "name.familyName": "String",
    "name.formatted": "String",
    "name.middleName": "String",
    'emails[type eq "work"].value': "String",
    'emails[type eq "other"].value': "String",
    'addresses[type eq "work"].formatted': "String",
    'addresses[type eq "work"].streetAddress': "String",
    'addresses[type eq "work"].locality': "String",
    'addresses[type eq "work"].region': "String",
    'addresses[type eq "work"].postalCode': "String",
    'addresses[type eq "work"].country': "String",
    'phoneNumbers[type eq "work"].value': "String",
    'phoneNumbers[type eq "mobile"].value': "String",
    'phoneNumbers[type eq "fax"].value': "String",
    f"{ENTERPRISE_USER}:employeeNumber": "String",
    f"{ENTERPRISE_USER}:department": "String",
    f"{ENTERPRISE_USER}:division": "String",
    f"{ENTERPRISE_USER}:organization": "String",
    f"{ENTERPRISE_USER}:costCenter": "String",
    f"{ENTERPRISE_USER}:manager": "Reference",
}
_TARGET_GROUP_TYPES: dict[str, str] = {
    "id": "String",
    "displayName": "String",
    "externalId": "String",
    "members": "Reference",
}


class SchemaError(ValueError):
    """A schema document that cannot be saved (the message says why)."""


def _definition(name: str, kind: str, multivalued: bool, anchor: bool) -> dict[str, Any]:
    return {
        "anchor": anchor,
        "apiExpressions": [],
        "caseExact": False,
        "defaultValue": None,
        "flowNullValues": False,
        "metadata": [],
        "multivalued": multivalued,
        "mutability": "ReadWrite",
        "name": name,
        "referencedObjects": [],
        "required": name in ("userName", "displayName") and not anchor,
        "type": kind,
    }


def _objects(*specs: tuple[str, tuple[tuple[str, str, bool, bool], ...]]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "attributes": [_definition(*attribute) for attribute in attributes],
            "metadata": [],
            "supportedApis": [],
        }
        for name, attributes in specs
    ]


def _target_specs(types: Mapping[str, str]) -> tuple[tuple[str, str, bool, bool], ...]:
    return tuple((name, kind, name == "members", name == "id") for name, kind in types.items())


def _mapping(target: str, expression: str, priority: int) -> dict[str, Any]:
    return {
        "defaultValue": "",
        "exportMissingReferences": False,
        "flowBehavior": "FlowWhenChanged",
        "flowType": "Always",
        "matchingPriority": priority,
        "source": parse_expression(expression).to_source(),
        "targetAttributeName": target,
    }


def _object_mapping(
    name: str, source: str, target: str, mappings: tuple[tuple[str, str, int], ...], joining: str
) -> dict[str, Any]:
    return {
        "enabled": True,
        "flowTypes": "Add, Update, Delete",
        "metadata": [
            {"key": "Disposition", "value": '"Normal"'},
            {"key": "EscrowBehavior", "value": '"Default"'},
            {"key": "IsCustomerDefined", "value": "False"},
            {"key": "OriginalJoiningProperty", "value": joining},
        ],
        "name": name,
        "scope": None,
        "sourceObjectName": source,
        "targetObjectName": target,
        "attributeMappings": [_mapping(*row) for row in mappings],
    }


def default_schema(schema_id: str) -> dict[str, Any]:
    """The ``scim`` template's schema document (a fresh copy every call)."""
    return {
        "id": schema_id,
        "version": "Date:2024-01-01T00:00:00Z;EntitlementsSupported:false",
        "directories": [
            {
                "id": "66e4a8cc-1b7b-435e-95f8-f06cea133828",
                "name": SOURCE_DIRECTORY,
                "discoverabilities": "None",
                "discoveryDateTime": None,
                "readOnly": True,
                "version": None,
                "objects": _objects(("User", _SOURCE_USER), ("Group", _SOURCE_GROUP)),
            },
            {
                "id": "8ffa6169-f354-4751-9b77-9c00765be92d",
                "name": TARGET_DIRECTORY,
                "discoverabilities": "AttributeNames, AttributeDataTypes, AttributeReadOnly, "
                "ReferenceAttributes",
                "discoveryDateTime": None,
                "readOnly": False,
                "version": None,
                "objects": _objects(
                    (ENTERPRISE_USER, _target_specs(_TARGET_USER_TYPES)),
                    (GROUP_OBJECT, _target_specs(_TARGET_GROUP_TYPES)),
                ),
            },
        ],
        "synchronizationRules": [
            {
                "id": SCIM_RULE_ID,
                "name": SCIM_RULE_NAME,
                "editable": True,
                "priority": 1,
                "sourceDirectoryName": SOURCE_DIRECTORY,
                "targetDirectoryName": TARGET_DIRECTORY,
                "containerFilter": {"includedContainers": []},
                "groupFilter": {"includedGroups": []},
                "metadata": [
                    {"key": "defaultSourceObjectMappings", "value": "User, Group"},
                    {"key": "supportsProvisionOnDemand", "value": "true"},
                ],
                "objectMappings": [
                    _object_mapping(
                        "Provision Microsoft Entra ID Users",
                        "User",
                        ENTERPRISE_USER,
                        _USER_MAPPINGS,
                        "userPrincipalName",
                    ),
                    _object_mapping(
                        "Provision Microsoft Entra ID Groups",
                        "Group",
                        GROUP_OBJECT,
                        _GROUP_MAPPINGS,
                        "displayName",
                    ),
                ],
            }
        ],
    }


# -- compiled form --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttributeRule:
    """One target attribute and how it gets its value."""

    target: str
    source: Expr | None
    default: str | None
    matching_priority: int
    flow_type: str
    target_type: str

    def value(self, get: Any) -> str | None:
        """The mapped value (the default value when the source yields nothing)."""
        value = self.source.evaluate(get) if self.source is not None else None
        if value is None or value == "":
            return self.default or None
        return value


@dataclass(frozen=True, slots=True)
class _Clause:
    attribute: str
    operator: str
    values: tuple[str, ...]

    def holds(self, get: Any) -> bool:
        value = get(self.attribute)
        folded = None if value is None else str(value).casefold()
        wanted = [v.casefold() for v in self.values]
        operator = self.operator
        if operator == "EQUALS":
            return folded is not None and folded in wanted
        if operator == "NOT EQUALS":
            return folded is None or folded not in wanted
        if operator == "IS TRUE":
            return folded == "true"
        if operator == "IS FALSE":
            return folded != "true"
        if operator == "IS NULL":
            return not folded
        if operator == "IS NOT NULL":
            return bool(folded)
        if operator in ("REGEX MATCH", "NOT REGEX MATCH"):
            hit = value is not None and any(re.search(p, str(value)) for p in self.values)
            return hit if operator == "REGEX MATCH" else not hit
        raise SchemaError(f"Unsupported scoping operator '{operator}'.")


_SCOPE_OPERATORS = frozenset(
    {
        "EQUALS",
        "NOT EQUALS",
        "IS TRUE",
        "IS FALSE",
        "IS NULL",
        "IS NOT NULL",
        "REGEX MATCH",
        "NOT REGEX MATCH",
    }
)


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    """An object mapping's scoping filter: in scope if ANY group has ALL clauses true."""

    groups: tuple[tuple[_Clause, ...], ...]

    def allows(self, get: Any) -> bool:
        """Whether the object behind ``get`` is in scope."""
        return not self.groups or any(
            all(clause.holds(get) for clause in group) for group in self.groups
        )


@dataclass(frozen=True, slots=True)
class ObjectRule:
    """One object mapping (users or groups), ready to run."""

    name: str
    enabled: bool
    source_object: str
    target_object: str
    flow_types: frozenset[str]
    attributes: tuple[AttributeRule, ...]
    scope: ScopeFilter | None

    @property
    def matching(self) -> AttributeRule | None:
        """The attribute Entra matches existing target objects on (lowest priority > 0)."""
        candidates = [a for a in self.attributes if a.matching_priority > 0]
        return min(candidates, key=lambda a: a.matching_priority) if candidates else None

    def attribute(self, target: str) -> AttributeRule | None:
        """The mapping for ``target``, if any."""
        return next((a for a in self.attributes if a.target == target), None)


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    """What the engine needs from a saved schema document."""

    rule_id: str
    users: ObjectRule | None
    groups: ObjectRule | None


def _fail(message: str) -> SchemaError:
    return SchemaError(message)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"'{what}' must be a list.")
    return value


def _directory_attributes(document: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
    """``(directory, object) -> {attribute: type}`` from the document's directories."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for directory in _list(document.get("directories"), "directories"):
        if not isinstance(directory, dict) or not isinstance(directory.get("name"), str):
            raise _fail("Each directory needs a 'name'.")
        for obj in _list(directory.get("objects") or [], "objects"):
            if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
                raise _fail(f"Each object of directory '{directory['name']}' needs a 'name'.")
            attributes: dict[str, str] = {}
            for attribute in _list(obj.get("attributes") or [], "attributes"):
                if isinstance(attribute, dict) and isinstance(attribute.get("name"), str):
                    attributes[attribute["name"]] = str(attribute.get("type") or "String")
            found[(directory["name"], obj["name"])] = attributes
    return found


def _scope(value: Any, source_attributes: Mapping[str, str], where: str) -> ScopeFilter | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(f"The scope of '{where}' must be an object or null.")
    groups: list[tuple[_Clause, ...]] = []
    for group in _list(value.get("groups") or [], "scope.groups"):
        clauses: list[_Clause] = []
        for clause in _list((group or {}).get("clauses") or [], "scope.groups.clauses"):
            attribute = clause.get("sourceOperandName") if isinstance(clause, dict) else None
            operator = clause.get("operatorName") if isinstance(clause, dict) else None
            if not isinstance(attribute, str) or attribute not in source_attributes:
                raise _fail(f"Scoping clause in '{where}' names an unknown attribute.")
            if operator not in _SCOPE_OPERATORS:
                raise _fail(f"Scoping operator {operator!r} in '{where}' is not supported.")
            operand = clause.get("targetOperand") or {}
            values = tuple(str(v) for v in (operand.get("values") or []))
            clauses.append(_Clause(attribute, str(operator), values))
        if clauses:
            groups.append(tuple(clauses))
    return ScopeFilter(tuple(groups))


def _attribute_rule(
    row: Any, source_attributes: Mapping[str, str], target_types: Mapping[str, str], where: str
) -> AttributeRule:
    if not isinstance(row, dict) or not isinstance(row.get("targetAttributeName"), str):
        raise _fail(f"Each attribute mapping of '{where}' needs a 'targetAttributeName'.")
    target = row["targetAttributeName"]
    if target not in target_types:
        raise _fail(
            f"The target attribute '{target}' of '{where}' is not defined in the target "
            "directory; add it to the directory's object attributes first."
        )
    source = row.get("source")
    expr = None
    if source is not None:
        if not isinstance(source, dict):
            raise _fail(f"The source of '{target}' must be an object or null.")
        try:
            expr = expr_from_source(source)
        except ExpressionError as error:
            raise _fail(f"The mapping for '{target}' is invalid: {error}") from None
        unknown = sorted(expr.attributes() - set(source_attributes))
        if unknown:
            raise _fail(
                f"The mapping for '{target}' uses the source attribute(s) {', '.join(unknown)}, "
                "which the source directory does not define."
            )
    priority = row.get("matchingPriority", 0)
    if not isinstance(priority, int) or priority < 0:
        raise _fail(f"'matchingPriority' of '{target}' must be a whole number >= 0.")
    flow = row.get("flowType") or "Always"
    if flow not in _ATTRIBUTE_FLOWS:
        raise _fail(
            f"'flowType' of '{target}' must be one of {', '.join(sorted(_ATTRIBUTE_FLOWS))}."
        )
    default = row.get("defaultValue")
    return AttributeRule(
        target=target,
        source=expr,
        default=default if isinstance(default, str) and default else None,
        matching_priority=priority,
        flow_type=flow,
        target_type=target_types[target],
    )


def _object_rule(
    mapping: Any,
    directories: Mapping[tuple[str, str], Mapping[str, str]],
    source_directory: str,
    target_directory: str,
) -> ObjectRule:
    if not isinstance(mapping, dict):
        raise _fail("Each object mapping must be an object.")
    name = str(mapping.get("name") or "")
    source_object, target_object = mapping.get("sourceObjectName"), mapping.get("targetObjectName")
    if source_object not in ("User", "Group"):
        raise _fail(
            f"Object mapping '{name}' has an unsupported sourceObjectName {source_object!r}."
        )
    source_attributes = directories.get((source_directory, str(source_object)))
    target_types = directories.get((target_directory, str(target_object)))
    if source_attributes is None:
        raise _fail(f"The source directory has no object '{source_object}'.")
    if target_types is None:
        raise _fail(f"The target directory has no object '{target_object}'.")
    enabled = mapping.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail(f"'enabled' of '{name}' must be true or false.")
    flow_text = mapping.get("flowTypes") or ""
    flows = frozenset(part.strip() for part in str(flow_text).split(",") if part.strip())
    if not flows <= _FLOW_TYPES:
        raise _fail(f"'flowTypes' of '{name}' may only combine Add, Update and Delete.")
    rows = _list(mapping.get("attributeMappings"), f"{name}.attributeMappings")
    attributes = tuple(_attribute_rule(r, source_attributes, target_types, name) for r in rows)
    targets = [a.target for a in attributes]
    if len(set(targets)) != len(targets):
        raise _fail(f"Object mapping '{name}' maps a target attribute more than once.")
    rule = ObjectRule(
        name=name,
        enabled=enabled,
        source_object=str(source_object),
        target_object=str(target_object),
        flow_types=flows,
        attributes=attributes,
        scope=_scope(mapping.get("scope"), source_attributes, name),
    )
    if enabled and rule.matching is None:
        raise _fail(
            f"Object mapping '{name}' needs at least one matching attribute "
            "(matchingPriority 1 or more)."
        )
    return rule


def compile_schema(document: Any) -> CompiledSchema:
    """Validate a full schema document and compile it; raises :class:`SchemaError`."""
    if not isinstance(document, dict):
        raise _fail("The schema must be a JSON object.")
    directories = _directory_attributes(document)
    rules = _list(document.get("synchronizationRules"), "synchronizationRules")
    if not rules:
        raise _fail("The schema needs at least one synchronization rule.")
    rule = rules[0]
    if not isinstance(rule, dict) or not isinstance(rule.get("id"), str):
        raise _fail("A synchronization rule needs an 'id'.")
    source_directory = str(rule.get("sourceDirectoryName") or "")
    target_directory = str(rule.get("targetDirectoryName") or "")
    users = groups = None
    for mapping in _list(rule.get("objectMappings"), "objectMappings"):
        compiled = _object_rule(mapping, directories, source_directory, target_directory)
        if compiled.source_object == "User" and users is None:
            users = compiled
        elif compiled.source_object == "Group" and groups is None:
            groups = compiled
    return CompiledSchema(rule_id=rule["id"], users=users, groups=groups)


def copy_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy, so callers can never change a stored schema in place."""
    return copy.deepcopy(dict(document))
