"""Graph handlers for applications, service principals and the tenant's licences.

``POST /applicationTemplates/{id}/instantiate`` creates the non-gallery app and its
service principal (applicationtemplate-instantiate.md); ``/servicePrincipals`` and
``/applications`` list, get and delete them with ``$filter``, ``$select``, ``$top`` and
paging (serviceprincipal-list.md, application-list.md); ``/subscribedSkus`` tells a
client whether the tenant has the Entra ID P1 licence that group assignment needs.
A new service principal stays invisible to the first reads (replication), as in Entra.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Response

from ..tenant._state import Application, ServicePrincipal
from ..tenant._well_known import NON_GALLERY_TEMPLATE_ID
from . import _grant_reads as grants
from ._app_shapes import render_application, render_service_principal
from ._odata import ListQuery, apply_select, encode_skiptoken, parse_list_query, parse_select
from ._wire import GraphCall, GraphError, json_response, no_content, not_found, read_json

__all__ = [
    "P1_SKU_ID",
    "delete_application",
    "delete_service_principal",
    "get_service_principal",
    "instantiate",
    "list_applications",
    "list_service_principals",
    "subscribed_skus",
]

_MAX_DISPLAY_NAME = 256
# The Entra ID P1 licence (skuPartNumber AAD_PREMIUM).
P1_SKU_ID = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4"
_SERVICE_PRINCIPAL_PROPERTIES: set[str] = set(
    render_service_principal(ServicePrincipal("", "", "", "", "", datetime.now(UTC)), tenant_id="")
)


def instantiate(call: GraphCall, template_id: str) -> Response:
    """POST /applicationTemplates/{id}/instantiate: a new app + service principal."""
    if template_id.lower() != NON_GALLERY_TEMPLATE_ID:
        raise not_found(template_id)
    display_name = read_json(call.request).get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise GraphError(
            400,
            "Request_BadRequest",
            "Invalid value specified for property 'displayName' of resource 'Application'.",
        )
    if len(display_name) > _MAX_DISPLAY_NAME:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid value specified for property 'displayName' of resource 'Application': "
            f"longer than {_MAX_DISPLAY_NAME} characters.",
        )
    app, sp = call.state.instantiate(NON_GALLERY_TEMPLATE_ID, display_name)
    body = {
        "@odata.context": call.context("microsoft.graph.applicationServicePrincipal"),
        "application": render_application(app, call.state.tenant_domain),
        "servicePrincipal": render_service_principal(sp, call.state.tenant_id),
    }
    return json_response(call, body, status=201)


def _entity_set(name: str, select: tuple[str, ...]) -> str:
    return f"{name}({','.join(select)})" if select else name


def _list_page(
    call: GraphCall, entity_set: str, found: list[dict[str, Any]], query: ListQuery
) -> Response:
    """One page of rendered objects, with ``@odata.nextLink`` when more follow."""
    page = found[query.offset : query.offset + query.top]
    body: dict[str, Any] = {
        "@odata.context": call.context(_entity_set(entity_set, query.select)),
        "value": [apply_select(item, query.select) for item in page],
    }
    next_offset = query.offset + query.top
    if next_offset < len(found):
        args = [(k, v) for k, v in call.request.args.items(multi=True) if k != "$skiptoken"]
        args.append(("$skiptoken", encode_skiptoken(next_offset)))
        body["@odata.nextLink"] = f"{call.base_url}/{entity_set}?" + urlencode(
            args, quote_via=quote, safe="$'(),"
        )
    return json_response(call, body)


def list_service_principals(call: GraphCall) -> Response:
    """GET /servicePrincipals with $filter, $select, $top and paging.

    The tenant's built-in service principals (Microsoft Graph, the runbook's own app
    registration, Graph Command Line Tools) come first, then the apps created through
    Graph, in creation order.
    """
    query = parse_list_query(call.request.args, _SERVICE_PRINCIPAL_PROPERTIES)
    tenant_id = call.state.tenant_id
    predicate = query.predicate

    def matches(sp: ServicePrincipal) -> bool:
        return predicate is None or predicate(render_service_principal(sp, tenant_id))

    builtins = [
        sp for sp in grants.render_builtins(call.state) if predicate is None or predicate(sp)
    ]
    created = call.state.list_service_principals(matches)
    found = builtins + [render_service_principal(sp, tenant_id) for sp in created]
    return _list_page(call, "servicePrincipals", found, query)


_APPLICATION_PROPERTIES: set[str] = set(
    render_application(Application("", "", "", "", datetime.now(UTC)), tenant_domain="")
)


def delete_service_principal(call: GraphCall, sp_id: str) -> Response:
    """DELETE /servicePrincipals/{id} (serviceprincipal-delete.md): the enterprise app goes,
    with its job and assignments; Microsoft's own service principals are refused."""
    if grants.builtin_principal(call.state, sp_id) is not None:
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    if call.state.delete_service_principal(sp_id) is None:
        raise not_found(sp_id)
    return no_content(call)


def list_applications(call: GraphCall) -> Response:
    """GET /applications (application-list.md) with $filter, $select, $top and paging."""
    query = parse_list_query(call.request.args, _APPLICATION_PROPERTIES)
    domain = call.state.tenant_domain
    found = [
        app
        for app in (render_application(a, domain) for a in call.state.list_applications())
        if query.predicate is None or query.predicate(app)
    ]
    return _list_page(call, "applications", found, query)


def delete_application(call: GraphCall, app_id: str) -> Response:
    """DELETE /applications/{id} (application-delete.md): the app registration only."""
    if call.state.delete_application(app_id) is None:
        raise not_found(app_id)
    return no_content(call)


def get_service_principal(call: GraphCall, sp_id: str) -> Response:
    """GET /servicePrincipals/{id} (404 until the new object has replicated)."""
    select = parse_select(call.request.args.get("$select"), _SERVICE_PRINCIPAL_PROPERTIES)
    builtin = grants.builtin_principal(call.state, sp_id)
    if builtin is not None:
        rendered = grants.render_builtin(builtin)
    else:
        sp = call.state.read_service_principal(sp_id)
        if sp is None:
            raise not_found(sp_id)
        rendered = render_service_principal(sp, call.state.tenant_id)
    body = {
        "@odata.context": call.context(_entity_set("servicePrincipals", select) + "/$entity"),
        **apply_select(rendered, select),
    }
    return json_response(call, body)


def subscribed_skus(call: GraphCall) -> Response:
    """GET /subscribedSkus: the tenant's licences (Entra ID P1 unless the tier is free)."""
    value: list[dict[str, Any]] = []
    if call.state.tier != "free":
        value.append(
            {
                "accountId": call.state.tenant_id,
                "accountName": "Sandbox",
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": len(call.state.directory.users),
                "id": f"{call.state.tenant_id}_{P1_SKU_ID}",
                "prepaidUnits": {"enabled": 100000, "suspended": 0, "warning": 0, "lockedOut": 0},
                "servicePlans": [
                    {
                        "appliesTo": "User",
                        "provisioningStatus": "Success",
                        "servicePlanId": "41781fb2-bc02-4b7c-bd55-b576c07bb09d",
                        "servicePlanName": "AAD_PREMIUM",
                    }
                ],
                "skuId": P1_SKU_ID,
                "skuPartNumber": "AAD_PREMIUM",
            }
        )
    return json_response(call, {"@odata.context": call.context("subscribedSkus"), "value": value})
