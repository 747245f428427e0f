"""Which Microsoft Graph permissions the signed-in identity holds, read before anything is written.

Microsoft asks clients to treat access tokens as opaque, so the grants are read from Graph
where it documents them:

* app-only sign-in: the runbook app's service principal's ``appRoleAssignments``, mapped to
  permission names through Microsoft Graph's own service principal's ``appRoles``;
* delegated sign-in (an admin with a device code): the ``oauth2PermissionGrants`` of the
  client, plus the signed-in user's directory roles (``/me/memberOf``).

Only when Graph will not say (those reads need permissions of their own) are the token's
``roles`` / ``scp`` / ``wids`` claims used, and when neither works the result says so: the
pre-flight then warns and goes on, and a later 403 still names the permission.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ._auth import GRAPH_CLI_CLIENT_ID
from ._exceptions import GraphError
from ._graph import GraphClient, odata_quote
from ._permissions import GRAPH_APP_ID, SignInKind

__all__ = ["GRAPH_CLI_CLIENT_ID", "GrantedPermissions", "read_granted", "token_claims"]


# Built-in directory role template ids (the same in every tenant), for the ``wids`` claim.
_ROLE_TEMPLATES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
}


@dataclass(frozen=True)
class GrantedPermissions:
    """What the pre-flight found.

    :param kind: application (app-only) or delegated sign-in.
    :param names: Microsoft Graph permission names held.
    :param roles: the signed-in user's directory roles (delegated only; empty when unknown).
    :param source: ``graph`` (documented reads), ``token`` (claims fallback) or ``none``.
    :param roles_known: False when the directory roles could not be read.
    :param notes: what could not be read, and why, in plain sentences.
    """

    kind: SignInKind
    names: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    source: Literal["graph", "token", "none"] = "none"
    roles_known: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT access token, unverified; ``{}`` when it is not a JWT.

    Only a fallback: Graph, not the token, is the documented source of the grants.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _service_principal_id(graph: GraphClient, app_id: str) -> str | None:
    params = {"$filter": f"appId eq {odata_quote(app_id)}", "$select": "id,appId"}
    for sp in graph.get_all("servicePrincipals", params=params):
        if str(sp.get("appId", "")).lower() == app_id.lower():
            return str(sp["id"])
    return None


def _graph_service_principal(graph: GraphClient) -> dict[str, Any]:
    params = {
        "$filter": f"appId eq {odata_quote(GRAPH_APP_ID)}",
        "$select": "id,appId,appRoles",
    }
    for sp in graph.get_all("servicePrincipals", params=params):
        return sp
    raise GraphError("Microsoft Graph's service principal was not found", status=404)


def _app_only(graph: GraphClient, client_id: str) -> frozenset[str]:
    sp_id = _service_principal_id(graph, client_id)
    if sp_id is None:
        raise GraphError(f"no service principal has appId {client_id}", status=404)
    graph_sp = _graph_service_principal(graph)
    role_names = {str(r.get("id")): str(r.get("value")) for r in graph_sp.get("appRoles", [])}
    return frozenset(
        role_names[str(a.get("appRoleId"))]
        for a in graph.get_all(f"servicePrincipals/{sp_id}/appRoleAssignments", top=999)
        if str(a.get("resourceId")) == str(graph_sp.get("id"))
        and str(a.get("appRoleId")) in role_names
    )


def _delegated(graph: GraphClient, client_id: str, user_id: str) -> frozenset[str]:
    sp_id = _service_principal_id(graph, client_id)
    if sp_id is None:
        raise GraphError(f"no service principal has appId {client_id}", status=404)
    graph_sp = _graph_service_principal(graph)
    params = {"$filter": f"clientId eq {odata_quote(sp_id)}"}
    names: set[str] = set()
    for grant in graph.get_all("oauth2PermissionGrants", params=params):
        if str(grant.get("resourceId")) != str(graph_sp.get("id")):
            continue
        if grant.get("consentType") == "AllPrincipals" or grant.get("principalId") == user_id:
            names.update(str(grant.get("scope") or "").split())
    return frozenset(names)


def _roles(graph: GraphClient) -> frozenset[str]:
    found = graph.get_all(
        "me/memberOf/microsoft.graph.directoryRole",
        params={"$select": "id,displayName,roleTemplateId"},
        top=999,
    )
    names: set[str] = set()
    for role in found:
        name = role.get("displayName") or _ROLE_TEMPLATES.get(str(role.get("roleTemplateId")))
        if not name:
            # Graph hides a directory role's properties from a token that may not read roles:
            # the roles are then unknown here, not absent.
            raise GraphError("the directory roles came back without their names", status=403)
        names.add(str(name))
    return frozenset(names)


def _why(exc: GraphError) -> str:
    return f"HTTP {exc.status}" + (f" {exc.code}" if exc.code else "")


def read_granted(graph: GraphClient, kind: SignInKind, client_id: str) -> GrantedPermissions:
    """Read the grants of the identity ``graph`` signs in as (see the module docstring).

    :param client_id: the app registration (app-only) or public client (delegated) id;
        empty for delegated sign-in means Microsoft Graph Command Line Tools.
    """
    notes: list[str] = []
    claims: dict[str, Any] | None = None

    def token() -> dict[str, Any]:
        nonlocal claims
        if claims is None:
            claims = token_claims(graph.access_token())
        return claims

    names: frozenset[str] | None = None
    roles: frozenset[str] = frozenset()
    roles_known = False
    if kind == "application":
        try:
            names = _app_only(graph, client_id)
        except GraphError as exc:
            notes.append(
                f"Graph did not list the app's granted permissions ({_why(exc)}: "
                f"{exc.graph_message})."
            )
    else:
        client = client_id or GRAPH_CLI_CLIENT_ID
        try:
            me = graph.get("me", **{"$select": "id,userPrincipalName"})
            names = _delegated(graph, client, str(me.get("id", "")))
        except GraphError as exc:
            notes.append(
                f"Graph did not list the delegated permissions consented to the client "
                f"({_why(exc)}: {exc.graph_message})."
            )
        try:
            roles, roles_known = _roles(graph), True
        except GraphError as exc:
            notes.append(f"Graph did not list your directory roles ({_why(exc)}).")
        if not roles_known and token().get("wids"):
            roles = frozenset(
                _ROLE_TEMPLATES[w] for w in token().get("wids", []) if w in _ROLE_TEMPLATES
            )
            roles_known = True
    if names is not None:
        return GrantedPermissions(kind, names, roles, "graph", roles_known, tuple(notes))
    claim = token().get("roles") if kind == "application" else token().get("scp")
    if claim:
        values = claim if isinstance(claim, list) else str(claim).split()
        notes.append("The permissions were read from the access token's claims instead.")
        return GrantedPermissions(
            kind, frozenset(str(v) for v in values), roles, "token", roles_known, tuple(notes)
        )
    notes.append("The access token does not list them either.")
    return GrantedPermissions(kind, frozenset(), roles, "none", roles_known, tuple(notes))
