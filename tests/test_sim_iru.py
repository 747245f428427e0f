"""The Iru Endpoint SCIM stand-in, fed the request shapes Entra really sends."""

from __future__ import annotations

import httpx
import pytest

from runbook_lib.sim import Sandbox

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def _root(sandbox: Sandbox) -> str:
    return sandbox.scim_url.removesuffix("/api/v1/scim")


def _entra_user(user_name: str) -> dict[str, object]:
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": user_name.split("@")[0],
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
        "roles": [],
    }


def test_wrong_or_missing_token_is_a_scim_401(sandbox: Sandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic eDp5"}):
        response = httpx.get(
            sandbox.scim_url + "/Users", headers=headers, verify=sandbox.client_ssl_context()
        )
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Content-Type"].startswith("application/scim+json")
        assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


@pytest.mark.parametrize(
    "path", ["/api/v1/Users", "/Users", "/api/v1/scimx/Users", "/scim/v2/Users"]
)
def test_paths_outside_the_scim_root_are_html_404s(sandbox: Sandbox, path: str) -> None:
    response = httpx.get(
        _root(sandbox) + path,
        headers={"Authorization": f"Bearer {sandbox.scim_token}"},
        verify=sandbox.client_ssl_context(),
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


def test_the_host_root_is_an_html_page(sandbox: Sandbox) -> None:
    response = httpx.get(_root(sandbox) + "/", verify=sandbox.client_ssl_context())
    assert response.status_code == 200
    assert "text/html" in response.headers["Content-Type"]
    assert "/api/v1/scim" in response.text


def test_v2_suffix_is_not_part_of_the_iru_url(sandbox_scim: httpx.Client) -> None:
    assert sandbox_scim.get("/v2/Users").status_code == 404


def test_test_connection_query_gets_an_empty_list(sandbox_scim: httpx.Client) -> None:
    response = sandbox_scim.get(
        "/Users", params={"filter": 'userName eq "0c5c2f5e-7b0c-4c32-9d1c-1f1b5a0c2b11"'}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["totalResults"] == 0 and body["Resources"] == []


def test_entra_user_lifecycle(sandbox_scim: httpx.Client, sandbox: Sandbox) -> None:
    created = sandbox_scim.post("/Users", json=_entra_user("alice@contoso.com"))
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    assert created.headers["Location"] == f"{sandbox.scim_url}/Users/{user_id}"

    found = sandbox_scim.get("/Users", params={"filter": 'userName eq "ALICE@contoso.com"'}).json()
    assert [u["id"] for u in found["Resources"]] == [user_id]

    duplicate = sandbox_scim.post("/Users", json=_entra_user("alice@contoso.com"))
    assert duplicate.status_code == 409

    disable = {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    patched = sandbox_scim.patch(f"/Users/{user_id}", json=disable)
    assert patched.status_code in (200, 204), patched.text
    assert sandbox_scim.get(f"/Users/{user_id}").json()["active"] is False

    [stored] = sandbox.scim_users()
    assert stored["userName"] == "alice@contoso.com" and stored["active"] is False

    assert sandbox_scim.delete(f"/Users/{user_id}").status_code == 204
    assert sandbox_scim.get(f"/Users/{user_id}").status_code == 404


def test_entra_group_shapes_and_unique_display_name(
    sandbox_scim: httpx.Client, sandbox: Sandbox
) -> None:
    user_id = sandbox_scim.post("/Users", json=_entra_user("bob@contoso.com")).json()["id"]
    group = {
        "schemas": [GROUP, ADSCIM_GROUP],
        "externalId": "6a1c7b0e-0000-4000-8000-000000000001",
        "displayName": "Engineering",
        "meta": {"resourceType": "Group"},
    }
    created = sandbox_scim.post("/Groups", json=group)
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]

    again = sandbox_scim.post("/Groups", json={**group, "externalId": "other"})
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"

    add = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]}
        ],
    }
    assert sandbox_scim.patch(f"/Groups/{group_id}", json=add).status_code == 204
    member_filter = f'id eq "{group_id}" and members[value eq "{user_id}"]'
    listed = sandbox_scim.get(
        "/Groups", params={"filter": member_filter, "excludedAttributes": "members"}
    ).json()
    assert listed["totalResults"] == 1

    remove = {
        "schemas": [PATCH],
        "Operations": [{"op": "Remove", "path": "members", "value": [{"value": user_id}]}],
    }
    assert sandbox_scim.patch(f"/Groups/{group_id}", json=remove).status_code == 204
    [stored] = sandbox.scim_groups()
    assert stored["displayName"] == "Engineering" and not stored.get("members")


def test_discovery_is_open_and_announces_bearer_tokens(sandbox: Sandbox) -> None:
    response = httpx.get(
        sandbox.scim_url + "/ServiceProviderConfig", verify=sandbox.client_ssl_context()
    )
    assert response.status_code == 200
    schemes = response.json()["authenticationSchemes"]
    assert [s["type"] for s in schemes] == ["oauthbearertoken"]
