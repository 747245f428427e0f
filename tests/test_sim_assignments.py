"""Assigning users and groups to the enterprise app (appRoleAssignedTo) and the licence tier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runbook_lib.sim import IRU_MAC_USERS, IRU_PILOT, Sandbox

USER_ROLE = "18d14569-c3bd-439b-9a66-3a2aee01d14f"
NewApp = Callable[[str], dict[str, Any]]


def _assign(
    graph: httpx.Client, sp_id: str, principal: str, role: str = USER_ROLE
) -> httpx.Response:
    body = {"principalId": principal, "resourceId": sp_id, "appRoleId": role}
    return graph.post(f"/servicePrincipals/{sp_id}/appRoleAssignedTo", json=body)


def test_assign_list_get_and_delete(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sandbox_new_app: NewApp
) -> None:
    sp = sandbox_new_app("Iru")
    adele = sandbox.user("adele.vance@sandbox.example")
    created = _assign(sandbox_graph, sp["id"], adele["id"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["principalType"] == "User" and body["principalDisplayName"] == "Adele Vance"
    assert body["resourceId"] == sp["id"] and body["resourceDisplayName"] == "Iru"
    assert body["appRoleId"] == USER_ROLE and len(body["id"]) == 43
    assert body["@odata.context"].endswith("/appRoleAssignedTo/$entity")
    listing = f"/servicePrincipals/{sp['id']}/appRoleAssignedTo"
    # The new assignment replicates after one read (assignment_reads=1 by default).
    assert sandbox_graph.get(listing).json()["value"] == []
    assert [a["id"] for a in sandbox_graph.get(listing).json()["value"]] == [body["id"]]
    assert sandbox_graph.get(f"{listing}/{body['id']}").json()["principalId"] == adele["id"]
    filtered = sandbox_graph.get(listing, params={"$filter": f"principalId eq '{adele['id']}'"})
    assert len(filtered.json()["value"]) == 1
    mine = sandbox_graph.get(f"/users/{adele['id']}/appRoleAssignments").json()["value"]
    assert [a["id"] for a in mine] == [body["id"]]
    assert sandbox.assignments(sp["id"])[0]["principalId"] == adele["id"]
    assert sandbox_graph.delete(f"{listing}/{body['id']}").status_code == 204
    assert sandbox_graph.delete(f"{listing}/{body['id']}").status_code == 404
    assert sandbox.assignments(sp["id"]) == []


def test_duplicate_assignment_is_refused(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sandbox_new_app: NewApp
) -> None:
    sp = sandbox_new_app("Iru")
    group = sandbox.group(IRU_PILOT)["id"]
    assert _assign(sandbox_graph, sp["id"], group).status_code == 201
    again = _assign(sandbox_graph, sp["id"], group)
    assert again.status_code == 400
    error = again.json()["error"]
    assert error["code"] == "Request_BadRequest"
    assert error["message"] == "Permission being assigned already exists on the object"


def test_unknown_role_principal_and_resource(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sandbox_new_app: NewApp
) -> None:
    sp = sandbox_new_app("Iru")
    adele = sandbox.user("adele.vance@sandbox.example")["id"]
    bad_role = _assign(sandbox_graph, sp["id"], adele, role="11111111-1111-4111-8111-111111111111")
    assert bad_role.status_code == 400
    assert "Permission being assigned was not found" in bad_role.json()["error"]["message"]
    nobody = _assign(sandbox_graph, sp["id"], "22222222-2222-4222-8222-222222222222")
    assert nobody.status_code == 404
    wrong_resource = sandbox_graph.post(
        f"/servicePrincipals/{sp['id']}/appRoleAssignedTo",
        json={"principalId": adele, "resourceId": adele, "appRoleId": USER_ROLE},
    )
    assert wrong_resource.status_code == 400
    default_access = _assign(
        sandbox_graph, sp["id"], adele, role="00000000-0000-0000-0000-000000000000"
    )
    assert default_access.status_code == 201


def test_a_new_principal_is_not_a_valid_reference_at_first(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
) -> None:
    sb = sandbox_factory(consistency_reads=2, assignment_reads=0)
    graph = sandbox_graph_for(sb)
    created = graph.post(
        "/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate",
        json={"displayName": "Iru"},
    ).json()["servicePrincipal"]
    sb.state.get_service_principal(created["id"]).hidden_reads = 0  # type: ignore[union-attr]
    jane = sb.add_user("jane.doe@sandbox.example")
    statuses = []
    for _ in range(3):
        response = _assign(graph, created["id"], jane["id"])
        statuses.append(response.status_code)
        if response.status_code == 400:
            assert response.json()["error"]["message"] == "Not a valid reference update."
    assert statuses == [400, 400, 201]


def test_free_tier_refuses_groups_but_not_users(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
) -> None:
    sb = sandbox_factory(tier="free", consistency_reads=0)
    graph = sandbox_graph_for(sb)
    sp = graph.post(
        "/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate",
        json={"displayName": "Iru"},
    ).json()["servicePrincipal"]
    refused = _assign(graph, sp["id"], sb.group(IRU_MAC_USERS)["id"])
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "Authorization_RequestDenied"
    assert "P1" in error["message"] and "P2" in error["message"]
    assert _assign(graph, sp["id"], sb.user("adele.vance@sandbox.example")["id"]).status_code == 201
    assert graph.get("/subscribedSkus").json()["value"] == []


def test_p1_tier_lists_its_licence(sandbox_graph: httpx.Client) -> None:
    [sku] = sandbox_graph.get("/subscribedSkus").json()["value"]
    assert sku["skuPartNumber"] == "AAD_PREMIUM" and sku["capabilityStatus"] == "Enabled"


@pytest.mark.parametrize("principal", ["not-a-guid", 7])
def test_malformed_principal_is_400(
    sandbox_graph: httpx.Client, sandbox_new_app: NewApp, principal: Any
) -> None:
    sp = sandbox_new_app("Iru")
    response = sandbox_graph.post(
        f"/servicePrincipals/{sp['id']}/appRoleAssignedTo",
        json={"principalId": principal, "resourceId": sp["id"], "appRoleId": USER_ROLE},
    )
    assert response.status_code == 400
