"""``/servicePrincipals/{id}/appRoleAssignedTo``: who is assigned to the enterprise app.

With ``SyncAll`` "false" these assignments *are* the provisioning scope, so the
sandbox reproduces the errors a runbook must handle when it assigns:

* a duplicate assignment: 400 "Permission being assigned already exists on the object";
* an app role the app does not have: 400 "Permission being assigned was not found...";
* a principal created moments ago: 400 "Not a valid reference update." until it has
  replicated (``consistency_reads`` attempts);
* a group on a Free-tier tenant: 403, because group-based assignment needs Entra ID P1/P2;
* a new assignment missing from reads for ``assignment_reads`` requests (replication).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Response

from ..plumbing._clock import SimClock, graph_time
from ..tenant._state import AppRoleAssignment, ServicePrincipal
from ..tenant._well_known import MSIAM_ACCESS_ROLE_ID, USER_ROLE_ID
from ._odata import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_skiptoken, next_link
from ._odata_filter import parse_odata_filter
from ._wire import GraphCall, GraphError, json_response, no_content, not_found, read_json

__all__ = [
    "DEFAULT_ACCESS_ROLE_ID",
    "FREE_TIER_MESSAGE",
    "create_assignment",
    "delete_assignment",
    "get_assignment",
    "list_assignments",
    "list_principal_assignments",
    "render_assignment",
]

DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"
FREE_TIER_MESSAGE = (
    "Group-based assignment to applications requires a Microsoft Entra ID P1 or P2 "
    "license. This tenant has Microsoft Entra ID Free: assign individual users instead."
)
_ROLES = frozenset({USER_ROLE_ID, MSIAM_ACCESS_ROLE_ID, DEFAULT_ACCESS_ROLE_ID})
_FILTERABLE = frozenset({"principalId", "principalType", "appRoleId", "resourceId", "id"})


def render_assignment(assignment: AppRoleAssignment, resource_name: str) -> dict[str, Any]:
    """An appRoleAssignment as Graph v1.0 returns it."""
    return {
        "id": assignment.id,
        "deletedDateTime": None,
        "appRoleId": assignment.app_role_id,
        "createdDateTime": graph_time(SimClock.to_dt(assignment.created)),
        "principalDisplayName": assignment.principal_display_name,
        "principalId": assignment.principal_id,
        "principalType": assignment.principal_type,
        "resourceDisplayName": resource_name,
        "resourceId": assignment.resource_id,
    }


def _sp(call: GraphCall, sp_id: str) -> ServicePrincipal:
    sp = call.state.read_service_principal(sp_id)
    if sp is None:
        raise not_found(sp_id)
    return sp


def _context(call: GraphCall, sp: ServicePrincipal, tail: str = "") -> str:
    return call.context(f"servicePrincipals('{sp.object_id}')/appRoleAssignedTo{tail}")


def _opaque_id(call: GraphCall) -> str:
    raw = bytes.fromhex(call.state.ids.hex("assignments", 64))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")[:43]


def _guid(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or len(value) != 36 or value.count("-") != 4:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid value specified for property '{name}' of resource 'AppRoleAssignment'.",
        )
    return value.lower()


def create_assignment(call: GraphCall, sp_id: str) -> Response:
    """POST .../appRoleAssignedTo: assign a user or group to an app role."""
    sp = _sp(call, sp_id)
    body = read_json(call.request)
    principal_id = _guid(body, "principalId")
    resource_id = _guid(body, "resourceId")
    app_role_id = _guid(body, "appRoleId")
    state = call.state
    if resource_id != sp.object_id:
        raise GraphError(
            400,
            "Request_BadRequest",
            "The resourceId must be the id of the service principal in the request URL.",
        )
    if app_role_id not in _ROLES:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Permission being assigned was not found on application '{sp.app_id}'.",
        )
    with state.lock:
        directory = state.directory
        user = directory.users.get(principal_id)
        group = directory.groups.get(principal_id) if user is None else None
        principal = user if user is not None and user.deleted is None else group
        if principal is None:
            raise not_found(principal_id)
        if not state.seen(principal):
            raise GraphError(400, "Request_BadRequest", "Not a valid reference update.")
        if group is not None and state.tier == "free":
            raise GraphError(403, "Authorization_RequestDenied", FREE_TIER_MESSAGE)
        for existing in sp.assignments.values():
            if existing.principal_id == principal_id and existing.app_role_id == app_role_id:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "Permission being assigned already exists on the object",
                )
        assignment = AppRoleAssignment(
            id=_opaque_id(call),
            principal_id=principal_id,
            principal_type="User" if user is not None else "Group",
            principal_display_name=principal.display_name,
            app_role_id=app_role_id,
            resource_id=sp.object_id,
            created=state.clock.now(),
            hidden_reads=state.assignment_reads,
        )
        sp.assignments[assignment.id] = assignment
        rendered = render_assignment(assignment, sp.display_name)
    body_out = {"@odata.context": _context(call, sp, "/$entity"), **rendered}
    return json_response(call, body_out, status=201)


def _visible(call: GraphCall, sp: ServicePrincipal) -> list[AppRoleAssignment]:
    with call.state.lock:
        return [a for a in list(sp.assignments.values()) if call.state.seen(a)]


def _resolver(item: dict[str, Any]) -> Callable[[tuple[str, ...]], Any]:
    return lambda path: item.get(path[0])


def _page(call: GraphCall, found: list[dict[str, Any]], context: str) -> Response:
    args = call.request.args
    top = DEFAULT_PAGE_SIZE
    if "$top" in args:
        text = args["$top"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
            raise GraphError(400, "Request_BadRequest", f"Invalid page size specified: '{text}'.")
        top = int(text)
    if "$filter" in args:
        parsed = parse_odata_filter(args["$filter"])
        unknown = sorted(parsed.roots - _FILTERABLE)
        if unknown:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property "
                f"'{unknown[0]}' of resource 'AppRoleAssignment'.",
            )
        found = [item for item in found if parsed.matches(_resolver(item))]
    offset = decode_skiptoken(args["$skiptoken"]) if "$skiptoken" in args else 0
    body: dict[str, Any] = {"@odata.context": context, "value": found[offset : offset + top]}
    if offset + top < len(found):
        body["@odata.nextLink"] = next_link(call.request.base_url, args, offset + top)
    return json_response(call, body)


def list_assignments(call: GraphCall, sp_id: str) -> Response:
    """GET .../appRoleAssignedTo (new assignments may be missing for a few reads)."""
    sp = _sp(call, sp_id)
    found = [render_assignment(a, sp.display_name) for a in _visible(call, sp)]
    return _page(call, found, _context(call, sp))


def get_assignment(call: GraphCall, sp_id: str, assignment_id: str) -> Response:
    """GET .../appRoleAssignedTo/{id}."""
    sp = _sp(call, sp_id)
    with call.state.lock:
        assignment = sp.assignments.get(assignment_id)
        if assignment is None or not call.state.seen(assignment):
            raise not_found(assignment_id)
        rendered = render_assignment(assignment, sp.display_name)
    return json_response(call, {"@odata.context": _context(call, sp, "/$entity"), **rendered})


def delete_assignment(call: GraphCall, sp_id: str, assignment_id: str) -> Response:
    """DELETE .../appRoleAssignedTo/{id}: unassign (the user then leaves scope)."""
    sp = _sp(call, sp_id)
    with call.state.lock:
        if sp.assignments.pop(assignment_id, None) is None:
            raise not_found(assignment_id)
    return no_content(call)


def list_principal_assignments(call: GraphCall, principal_id: str) -> Response:
    """GET /users/{id}/appRoleAssignments and /groups/{id}/appRoleAssignments."""
    state = call.state
    with state.lock:
        directory = state.directory
        user = directory.user(principal_id)
        key = user.id if user is not None else principal_id.lower()
        if user is None and key not in directory.groups:
            raise not_found(principal_id)
        found = [
            render_assignment(a, sp.display_name)
            for sp in state.service_principals.values()
            for a in sp.assignments.values()
            if a.principal_id == key and a.hidden_reads == 0
        ]
    kind = "users" if user is not None else "groups"
    return _page(call, found, call.context(f"{kind}('{key}')/appRoleAssignments"))
