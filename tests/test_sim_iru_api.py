"""The Iru Enterprise API read view (GET /api/v1/users) and the SCIM stand-in's paging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runbook_lib.sim import IRU_PILOT, Sandbox

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _user(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": f"{name}@sandbox.example",
        "displayName": name.replace(".", " ").title(),
        "emails": [{"primary": True, "type": "work", "value": f"{name}@sandbox.example"}],
        "active": True,
        **extra,
    }


@pytest.fixture
def api(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.iru_api_url,
        verify=sandbox.client_ssl_context(),
        headers={"Authorization": f"Bearer {sandbox.iru_api_token}"},
    )


def test_the_api_token_is_separate_from_the_scim_token(sandbox: Sandbox, api: httpx.Client) -> None:
    assert sandbox.iru_api_token != sandbox.scim_token
    verify = sandbox.client_ssl_context()
    url = sandbox.iru_api_url + "/api/v1/users"
    missing = httpx.get(url, verify=verify)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    scim_token = httpx.get(
        url, headers={"Authorization": f"Bearer {sandbox.scim_token}"}, verify=verify
    )
    assert scim_token.status_code == 401 and scim_token.json() == {"detail": "Invalid token."}
    # ...and the API token does not open the SCIM API.
    scim = httpx.get(
        sandbox.scim_url + "/Users",
        headers={"Authorization": f"Bearer {sandbox.iru_api_token}"},
        verify=verify,
    )
    assert scim.status_code == 401
    assert api.get("/api/v1/users").json() == {"next": None, "previous": None, "results": []}
    assert api.post("/api/v1/users").status_code == 405


def test_users_read_view_fields_and_filters(
    sandbox: Sandbox, sandbox_scim: httpx.Client, api: httpx.Client
) -> None:
    created = sandbox_scim.post(
        "/Users", json=_user("ada.lovelace", title="Analyst", **{ENTERPRISE: {"department": "R&D"}})
    ).json()
    sandbox_scim.post("/Users", json=_user("alan.turing"))
    disable = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    assert sandbox_scim.patch(f"/Users/{created['id']}", json=disable).status_code in (200, 204)
    results = api.get("/api/v1/users").json()["results"]
    assert [u["email"] for u in results] == [
        "ada.lovelace@sandbox.example",
        "alan.turing@sandbox.example",
    ]
    ada = results[0]
    assert ada["id"] == created["id"] and ada["name"] == "Ada Lovelace"
    assert ada["job_title"] == "Analyst" and ada["department"] == "R&D"
    # Sandbox assumption: SCIM active=false is active false, not archived.
    assert ada["active"] is False and ada["archived"] is False
    assert ada["integration"]["type"] == "scim" and ada["device_count"] == 0
    assert set(ada) == {
        "active",
        "archived",
        "created_at",
        "department",
        "deprecated_user_id",
        "device_count",
        "email",
        "id",
        "integration",
        "job_title",
        "name",
        "updated_at",
    }
    assert [
        u["email"] for u in api.get("/api/v1/users", params={"email": "TURING"}).json()["results"]
    ] == ["alan.turing@sandbox.example"]
    assert len(api.get("/api/v1/users", params={"archived": "false"}).json()["results"]) == 2
    assert api.get("/api/v1/users", params={"archived": "true"}).json()["results"] == []
    assert api.get("/api/v1/users", params={"archived": "maybe"}).status_code == 400
    integration = str(ada["integration"]["id"])
    assert (
        len(api.get("/api/v1/users", params={"integration_id": integration}).json()["results"]) == 2
    )
    assert api.get("/api/v1/users", params={"integration_id": "999"}).json()["results"] == []
    assert (
        api.get(f"/api/v1/users/{created['id']}").json()["email"] == "ada.lovelace@sandbox.example"
    )
    assert api.get("/api/v1/users/nope").status_code == 404
    sandbox_scim.delete(f"/Users/{created['id']}")
    assert [u["email"] for u in api.get("/api/v1/users").json()["results"]] == [
        "alan.turing@sandbox.example"
    ]
    assert [u["email"] for u in sandbox.iru_users()] == ["alan.turing@sandbox.example"]


def test_cursor_paging(sandbox: Sandbox, sandbox_scim: httpx.Client, api: httpx.Client) -> None:
    sandbox.iru.api.page_size = 3  # 300 in production; small here to keep the test quick
    for index in range(7):
        sandbox_scim.post("/Users", json=_user(f"user{index}.test"))
    seen: list[str] = []
    url: str | None = "/api/v1/users?email=test"
    pages = 0
    previous = None
    while url:
        body = api.get(url).json()
        seen += [u["email"] for u in body["results"]]
        if pages:
            assert body["previous"] is not None
        previous = body["previous"]
        url = body["next"]
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 7
    assert previous is not None and "email=test" in previous
    assert api.get("/api/v1/users", params={"cursor": "!!bad"}).status_code == 404


def test_env_exposes_the_api_only_when_asked(sandbox: Sandbox) -> None:
    assert "RUNBOOK_IRU_API_TOKEN" not in sandbox.env()
    full = sandbox.env(include_iru_api=True)
    assert full["RUNBOOK_IRU_API_URL"] == sandbox.iru_api_url
    assert full["RUNBOOK_IRU_API_TOKEN"] == sandbox.iru_api_token
    assert sandbox.scim_url.startswith(full["RUNBOOK_IRU_API_URL"])


def test_a_given_api_token_is_used(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(iru_api_token="given-api-token-1234")
    assert sb.iru_api_token == "given-api-token-1234"
    assert "given" not in repr(sb.config)


def test_provisioned_users_show_in_the_api(
    sandbox: Sandbox,
    sandbox_graph: httpx.Client,
    sandbox_scim_app: Callable[..., dict[str, str]],
    sandbox_assign: Callable[[httpx.Client, str, str], dict[str, Any]],
    api: httpx.Client,
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group(IRU_PILOT)["id"])
    sandbox_graph.post(f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/start")
    assert sandbox.wait_idle(10)
    lee = api.get("/api/v1/users", params={"email": "lee.gu@"}).json()["results"][0]
    assert (lee["name"], lee["department"], lee["active"]) == ("Lee Gu", "Manufacturing", True)


def test_scim_pages_are_capped_at_the_server_maximum(sandbox_scim: httpx.Client) -> None:
    for index in range(105):
        assert sandbox_scim.post("/Users", json=_user(f"bulk{index}")).status_code == 201
    first = sandbox_scim.get("/Users", params={"count": "500"}).json()
    assert first["totalResults"] == 105 and first["itemsPerPage"] == 100
    assert len(first["Resources"]) == 100
    rest = sandbox_scim.get("/Users", params={"startIndex": "101", "count": "100"}).json()
    assert len(rest["Resources"]) == 5 and rest["startIndex"] == 101
    config = sandbox_scim.get("/ServiceProviderConfig").json()
    assert config["pagination"]["maxPageSize"] == 100 and config["pagination"]["index"] is True
