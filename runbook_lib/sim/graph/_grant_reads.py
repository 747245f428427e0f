"""The documented reads that tell a client which Microsoft Graph permissions it holds.

A real tenant always contains service principals the admin never created: Microsoft
Graph's own (its ``appRoles`` and ``oauth2PermissionScopes`` are the permission catalogue),
the one behind the runbook's app registration, and Microsoft Graph Command Line Tools (the
public client ``Connect-MgGraph`` signs in with). The sandbox renders these three from
:mod:`runbook_lib.sim.tenant._grants`, so listing and filtering service principals finds
them as in a tenant.

The reads served here, each under the permissions its page documents (see
:mod:`._permissions`; a client lacking them gets the refusal and must cope):

* ``GET /servicePrincipals/{id}/appRoleAssignments``: the application permissions granted
  to a service principal (serviceprincipal-list-approleassignments.md);
* ``GET /oauth2PermissionGrants``: delegated consent per client (oauth2permissiongrant-list.md);
* ``GET /me`` (user-get.md) and ``GET /me/memberOf`` (user-list-memberof.md): the signed-in
  admin and their directory roles. Directory roles are returned in full only to a token
  that may read them (RoleManagement.Read.Directory or Directory.Read.All and their
  ReadWrite forms); otherwise, as the page's "limited information" note says, only the
  ``@odata.type`` and ``id`` are filled in and the other properties are null.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from ..plumbing._clock import graph_time
from ..tenant._grants import DIRECTORY_ROLE_TEMPLATES, GRAPH_CLI_CLIENT_ID, GRAPH_PERMISSIONS
from ..tenant._state import ServicePrincipal, TenantState
from ..tenant._well_known import GRAPH_APP_ID
from ._app_shapes import render_service_principal
from ._odata import apply_select, next_link, parse_list_query, parse_select
from ._permissions import holds_any
from ._wire import GraphCall, GraphError, json_response, not_found

__all__ = [
    "GRAPH_CLI_DISPLAY_NAME",
    "GRAPH_DISPLAY_NAME",
    "RUNBOOK_APP_DISPLAY_NAME",
    "BuiltinPrincipal",
    "builtin_principal",
    "builtin_principals",
    "get_me",
    "list_app_role_assignments",
    "list_my_directory_roles",
    "list_my_memberships",
    "list_oauth2_permission_grants",
    "render_builtin",
    "render_builtins",
]

GRAPH_DISPLAY_NAME = "Microsoft Graph"
GRAPH_CLI_DISPLAY_NAME = "Microsoft Graph Command Line Tools"
RUNBOOK_APP_DISPLAY_NAME = "Runbook automation (sandbox)"
# The tenant that owns Microsoft's first-party applications ("Microsoft Services").
_MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
# Built-in objects predate everything the sandbox creates (the seeded directory's date).
_CREATED = datetime(2024, 1, 1, tzinfo=UTC)
# Delegated permissions users may consent to themselves (the rest need an admin).
_USER_CONSENTABLE = frozenset({"User.Read", "User.ReadBasic.All"})
# Permissions that let a token read directory role objects (directoryrole-list.md).
_ROLE_READERS = (
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
_ROLE_DESCRIPTIONS = {
    "Global Administrator": "Manages every aspect of the directory and its services.",
    "Application Administrator": "Creates and manages every aspect of app registrations "
    "and enterprise applications.",
    "Cloud Application Administrator": "Manages app registrations and enterprise "
    "applications, except the application proxy.",
    "User Administrator": "Manages users and groups, and resets passwords of limited admins.",
    "Privileged Role Administrator": "Manages role assignments and Privileged Identity Management.",
}


def _stable_uuid(*parts: str) -> str:
    """A version-4-shaped GUID fixed by ``parts`` (so a seed fixes it, as for all ids)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _stable_key(*parts: str) -> str:
    """An opaque 43-character id like Graph's app role assignment and grant ids."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:43]


@dataclass(frozen=True, slots=True)
class BuiltinPrincipal:
    """A service principal every tenant has without anyone creating it."""

    object_id: str
    app_id: str
    display_name: str
    owner_tenant: str
    kind: str  # "graph", "runbook" or "cli"


def builtin_principals(state: TenantState) -> tuple[BuiltinPrincipal, ...]:
    """Microsoft Graph, the runbook's app registration and Graph Command Line Tools."""
    tenant = state.tenant_id
    return (
        BuiltinPrincipal(
            _stable_uuid(tenant, GRAPH_APP_ID),
            GRAPH_APP_ID,
            GRAPH_DISPLAY_NAME,
            _MICROSOFT_TENANT,
            "graph",
        ),
        BuiltinPrincipal(
            _stable_uuid(tenant, state.client_id),
            state.client_id,
            RUNBOOK_APP_DISPLAY_NAME,
            tenant,
            "runbook",
        ),
        BuiltinPrincipal(
            _stable_uuid(tenant, GRAPH_CLI_CLIENT_ID),
            GRAPH_CLI_CLIENT_ID,
            GRAPH_CLI_DISPLAY_NAME,
            _MICROSOFT_TENANT,
            "cli",
        ),
    )


def builtin_principal(state: TenantState, object_id: str) -> BuiltinPrincipal | None:
    """The built-in service principal with ``object_id``, if it is one."""
    wanted = object_id.lower()
    return next((p for p in builtin_principals(state) if p.object_id == wanted), None)


def _graph_principal(state: TenantState) -> BuiltinPrincipal:
    return builtin_principals(state)[0]


def _app_roles() -> list[dict[str, Any]]:
    return [
        {
            "allowedMemberTypes": ["Application"],
            "description": f"Lets an app act with {p.name} without a signed-in user.",
            "displayName": p.name,
            "id": p.app_role_id,
            "isEnabled": True,
            "origin": "Application",
            "value": p.name,
        }
        for p in GRAPH_PERMISSIONS.values()
        if p.app_role_id is not None
    ]


def _permission_scopes() -> list[dict[str, Any]]:
    return [
        {
            "adminConsentDescription": f"Lets an app act with {p.name} for the signed-in user.",
            "adminConsentDisplayName": p.name,
            "id": p.scope_id,
            "isEnabled": True,
            "type": "User" if p.name in _USER_CONSENTABLE else "Admin",
            "userConsentDescription": None,
            "userConsentDisplayName": None,
            "value": p.name,
        }
        for p in GRAPH_PERMISSIONS.values()
        if p.scope_id is not None
    ]


def render_builtin(principal: BuiltinPrincipal) -> dict[str, Any]:
    """A built-in service principal with the same properties as any other one."""
    record = ServicePrincipal(
        object_id=principal.object_id,
        app_id=principal.app_id,
        display_name=principal.display_name,
        application_object_id="",
        template_id="",
        created=_CREATED,
    )
    body = render_service_principal(record, principal.owner_tenant)
    body.update(
        {
            "applicationTemplateId": None,
            "appRoleAssignmentRequired": False,
            "homepage": None,
            "tags": [],
            "appRoles": [],
            "servicePrincipalNames": [principal.app_id],
        }
    )
    if principal.kind == "graph":
        body.update(
            {
                "appRoles": _app_roles(),
                "oauth2PermissionScopes": _permission_scopes(),
                "servicePrincipalNames": [
                    "https://graph.microsoft.com",
                    "https://graph.microsoft.com/",
                    principal.app_id,
                ],
                "signInAudience": "AzureADMultipleOrgs",
            }
        )
    elif principal.kind == "cli":
        body["signInAudience"] = "AzureADandPersonalMicrosoftAccount"
    else:
        body["tags"] = ["WindowsAzureActiveDirectoryIntegratedApp"]
    return body


def render_builtins(state: TenantState) -> list[dict[str, Any]]:
    """Every built-in service principal, rendered (for the list endpoint)."""
    return [render_builtin(p) for p in builtin_principals(state)]


# -- appRoleAssignments --------------------------------------------------------------------------

_ASSIGNMENT_PROPERTIES = {
    "id",
    "deletedDateTime",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
}


def _granted_assignments(state: TenantState, client: BuiltinPrincipal) -> list[dict[str, Any]]:
    graph = _graph_principal(state)
    rows = []
    for name in state.grants.granted_app_roles():
        permission = GRAPH_PERMISSIONS.get(name)
        if permission is None or permission.app_role_id is None:
            continue
        rows.append(
            {
                "id": _stable_key(state.tenant_id, client.object_id, permission.app_role_id),
                "deletedDateTime": None,
                "appRoleId": permission.app_role_id,
                "createdDateTime": graph_time(_CREATED),
                "principalDisplayName": client.display_name,
                "principalId": client.object_id,
                "principalType": "ServicePrincipal",
                "resourceDisplayName": GRAPH_DISPLAY_NAME,
                "resourceId": graph.object_id,
            }
        )
    return rows


def _selected(row: dict[str, Any], select: tuple[str, ...]) -> dict[str, Any]:
    """``$select`` applied to one item; OData annotations (``@odata.type``) always stay."""
    annotations = {key: value for key, value in row.items() if key.startswith("@odata.")}
    return {**annotations, **apply_select(row, select)}


def _collection(
    call: GraphCall,
    rows: list[dict[str, Any]],
    *,
    context: str,
    known: set[str],
    what: str,
    extra_options: tuple[str, ...] = (),
) -> Response:
    """A collection answer with ``$select``, ``$top`` and ``$skiptoken`` paging.

    Other query options (besides ``extra_options``, which the caller handled) are refused
    with the 400 Graph gives for a query it cannot run.
    """
    allowed = {"$select", "$top", "$skiptoken", *extra_options}
    for option in call.request.args:
        if option.startswith("$") and option not in allowed:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"The query option '{option}' is not supported by this sandbox on {what}.",
            )
    select = parse_select(call.request.args.get("$select"), known)
    query = parse_list_query(
        {k: v for k, v in call.request.args.items() if k in ("$top", "$skiptoken")}, known
    )
    page = rows[query.offset : query.offset + query.top]
    if select:
        context += f"({','.join(select)})"
    body: dict[str, Any] = {
        "@odata.context": call.context(context),
        "value": [_selected(row, select) for row in page],
    }
    if query.offset + query.top < len(rows):
        body["@odata.nextLink"] = next_link(
            call.base_url + call.request.path.removeprefix("/v1.0"),
            call.request.args,
            query.offset + query.top,
        )
    return json_response(call, body)


def list_app_role_assignments(call: GraphCall, sp_id: str) -> Response:
    """GET /servicePrincipals/{id}/appRoleAssignments: app roles granted to that principal.

    The runbook's own service principal holds the application permissions of
    :meth:`runbook_lib.sim.tenant._grants.Grants.granted_app_roles`; every other one holds none.
    """
    client = builtin_principal(call.state, sp_id)
    if client is None and call.state.read_service_principal(sp_id) is None:
        raise not_found(sp_id)
    rows = (
        _granted_assignments(call.state, client)
        if client is not None and client.kind == "runbook"
        else []
    )
    object_id = client.object_id if client is not None else sp_id.lower()
    return _collection(
        call,
        rows,
        context=f"servicePrincipals('{object_id}')/appRoleAssignments",
        known=_ASSIGNMENT_PROPERTIES,
        what="appRoleAssignments",
    )


# -- oauth2PermissionGrants ----------------------------------------------------------------------

_GRANT_PROPERTIES = {"id", "clientId", "consentType", "principalId", "resourceId", "scope"}
_GRANT_FILTER = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$")
_GRANT_FILTERABLE = {"clientId", "consentType", "principalId", "resourceId"}


def _grant_filter(call: GraphCall) -> tuple[str, str] | None:
    expression = call.request.args.get("$filter")
    if expression is None:
        return None
    match = _GRANT_FILTER.match(expression)
    if match is None or match.group(1) not in _GRANT_FILTERABLE:
        raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
    return match.group(1), match.group(2).replace("''", "'")


def list_oauth2_permission_grants(call: GraphCall) -> Response:
    """GET /oauth2PermissionGrants: admin consent (``AllPrincipals``) per client.

    One grant per built-in client that holds delegated scopes for Microsoft Graph
    (:meth:`~runbook_lib.sim.tenant._grants.Grants.delegated_scopes`), filterable by
    ``clientId``, ``consentType``, ``principalId`` or ``resourceId`` with ``eq``.
    """
    wanted = _grant_filter(call)
    graph = _graph_principal(call.state)
    grants = []
    for client in builtin_principals(call.state):
        scopes = call.state.grants.delegated_scopes(client.app_id)
        if client.kind == "graph" or not scopes:
            continue
        grant: dict[str, Any] = {
            "id": _stable_key(call.state.tenant_id, client.object_id, graph.object_id),
            "clientId": client.object_id,
            "consentType": "AllPrincipals",
            "principalId": None,
            "resourceId": graph.object_id,
            "scope": " ".join(scopes),
        }
        if wanted is not None and str(grant[wanted[0]] or "").lower() != wanted[1].lower():
            continue
        grants.append(grant)
    return _collection(
        call,
        grants,
        context="oauth2PermissionGrants",
        known=_GRANT_PROPERTIES,
        what="oauth2PermissionGrants",
        extra_options=("$filter",),
    )


# -- /me --------------------------------------------------------------------------------------------


def _me(state: TenantState) -> dict[str, Any]:
    return {
        "businessPhones": [],
        "displayName": "Sandbox Admin",
        "givenName": "Sandbox",
        "jobTitle": "IT administrator",
        "mail": state.admin_upn,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": "Admin",
        "userPrincipalName": state.admin_upn,
        "id": state.admin_object_id,
    }


def _delegated_only(call: GraphCall) -> None:
    if call.token.kind != "user":
        raise GraphError(
            400, "BadRequest", "/me request is only valid with delegated authentication flow."
        )


def get_me(call: GraphCall) -> Response:
    """GET /me: the signed-in admin (delegated tokens only)."""
    _delegated_only(call)
    me = _me(call.state)
    select = parse_select(call.request.args.get("$select"), set(me))
    context = "users" + (f"({','.join(select)})" if select else "") + "/$entity"
    return json_response(
        call, {"@odata.context": call.context(context), **apply_select(me, select)}
    )


_ROLE_PROPERTIES = {"id", "deletedDateTime", "description", "displayName", "roleTemplateId"}


def _directory_roles(call: GraphCall) -> list[dict[str, Any]]:
    readable = holds_any(call.token, call.state, _ROLE_READERS)
    roles = []
    for name in call.state.grants.admin_roles:
        template = DIRECTORY_ROLE_TEMPLATES.get(name)
        if template is None:
            continue
        full = {
            "id": _stable_uuid(call.state.tenant_id, "directoryRole", template),
            "deletedDateTime": None,
            "description": _ROLE_DESCRIPTIONS.get(name),
            "displayName": name,
            "roleTemplateId": template,
        }
        if not readable:
            full = {key: (value if key == "id" else None) for key, value in full.items()}
        roles.append(full)
    return roles


def _memberships(call: GraphCall, *, cast: bool) -> Response:
    _delegated_only(call)
    roles = _directory_roles(call)
    if not cast:
        # A directoryObject collection names each item's type; the cast's items are all roles.
        roles = [{"@odata.type": "#microsoft.graph.directoryRole", **role} for role in roles]
    return _collection(
        call,
        roles,
        context="directoryRoles" if cast else "directoryObjects",
        known=_ROLE_PROPERTIES,
        what="memberOf",
    )


def list_my_memberships(call: GraphCall) -> Response:
    """GET /me/memberOf: the admin's direct memberships (the sandbox admin is in no groups)."""
    return _memberships(call, cast=False)


def list_my_directory_roles(call: GraphCall) -> Response:
    """GET /me/memberOf/microsoft.graph.directoryRole: the OData cast to directory roles."""
    return _memberships(call, cast=True)
