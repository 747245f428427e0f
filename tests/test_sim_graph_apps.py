"""The Graph stand-in: authentication, errors, creating and finding enterprise apps."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from runbook_lib.sim import Sandbox, SandboxConfig

TEMPLATE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
INSTANTIATE = f"/applicationTemplates/{TEMPLATE}/instantiate"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# Microsoft Graph, the runbook's app registration and Graph Command Line Tools.
BUILTIN_SERVICE_PRINCIPALS = 3


def _assert_graph_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    inner = error["innerError"]
    assert GUID.match(inner["request-id"])
    assert response.headers["request-id"] == inner["request-id"]
    assert response.headers["client-request-id"] == inner["client-request-id"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$", inner["date"])
    return dict(error)


def test_no_token_is_401_invalid_authentication_token(sandbox: Sandbox) -> None:
    response = httpx.get(
        f"{sandbox.graph_url}/servicePrincipals",
        headers={"client-request-id": "8c3f2e34-0000-4000-8000-000000000001"},
        verify=sandbox.client_ssl_context(),
    )
    error = _assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["innerError"]["client-request-id"] == "8c3f2e34-0000-4000-8000-000000000001"
    assert "Bearer" in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Bearer not-a-real-token", "Basic abc", "Bearer"])
def test_tokens_the_sandbox_did_not_issue_are_401(sandbox: Sandbox, header: str) -> None:
    response = httpx.get(
        f"{sandbox.graph_url}/servicePrincipals",
        headers={"Authorization": header},
        verify=sandbox.client_ssl_context(),
    )
    _assert_graph_error(response, 401, "InvalidAuthenticationToken")


def test_expired_tokens_are_401(
    sandbox: Sandbox, sandbox_app_token: Callable[[Sandbox], str]
) -> None:
    token = sandbox_app_token(sandbox)
    sandbox.state.tokens.expire_all()
    response = httpx.get(
        f"{sandbox.graph_url}/servicePrincipals",
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.client_ssl_context(),
    )
    error = _assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert "expired" in error["message"]


def test_unknown_route_is_404_and_wrong_method_405(sandbox_graph: httpx.Client) -> None:
    _assert_graph_error(sandbox_graph.get("/noSuchThing"), 404, "UnknownError")
    _assert_graph_error(sandbox_graph.delete("/servicePrincipals"), 405, "Request_BadRequest")


def test_instantiate_returns_the_documented_shape(
    sandbox_graph: httpx.Client, sandbox: Sandbox
) -> None:
    response = sandbox_graph.post(INSTANTIATE, json={"displayName": "Iru Endpoint SCIM"})
    assert response.status_code == 201
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#microsoft.graph.applicationServicePrincipal")
    app, sp = body["application"], body["servicePrincipal"]
    assert app["appId"] == sp["appId"] and GUID.match(sp["id"]) and app["id"] != sp["id"]
    assert app["applicationTemplateId"] == sp["applicationTemplateId"] == TEMPLATE
    assert app["displayName"] == sp["displayName"] == "Iru Endpoint SCIM"
    assert sp["appRoleAssignmentRequired"] is True
    assert sp["servicePrincipalType"] == "Application"
    assert "WindowsAzureActiveDirectoryCustomSingleSignOnApplication" in sp["tags"]
    roles = {role["displayName"]: role["id"] for role in sp["appRoles"]}
    assert roles == {
        "User": "18d14569-c3bd-439b-9a66-3a2aee01d14f",
        "msiam_access": "b9632174-c057-4f7e-951b-be3adc52bfe6",
    }
    assert "customappsso" in app["web"]["homePageUrl"]
    assert sandbox.service_principals()[0]["id"] == sp["id"]


def test_instantiate_is_not_idempotent(sandbox_graph: httpx.Client, sandbox: Sandbox) -> None:
    for _ in range(2):
        assert sandbox_graph.post(INSTANTIATE, json={"displayName": "Twice"}).status_code == 201
    sps = sandbox.service_principals()
    assert [sp["displayName"] for sp in sps] == ["Twice", "Twice"]
    assert sps[0]["id"] != sps[1]["id"]


@pytest.mark.parametrize(
    "body", [{}, {"displayName": ""}, {"displayName": "   "}, {"displayName": 7}]
)
def test_instantiate_needs_a_display_name(
    sandbox_graph: httpx.Client, body: dict[str, Any]
) -> None:
    _assert_graph_error(sandbox_graph.post(INSTANTIATE, json=body), 400, "Request_BadRequest")


def test_instantiate_rejects_bad_json(sandbox_graph: httpx.Client) -> None:
    response = sandbox_graph.post(
        INSTANTIATE, content=b"{nope", headers={"Content-Type": "application/json"}
    )
    _assert_graph_error(response, 400, "BadRequest")


def test_unknown_template_is_404(sandbox_graph: httpx.Client) -> None:
    response = sandbox_graph.post(
        "/applicationTemplates/00000000-0000-4000-8000-000000000000/instantiate",
        json={"displayName": "x"},
    )
    _assert_graph_error(response, 404, "Request_ResourceNotFound")


def test_new_service_principal_is_404_for_the_first_reads(sandbox_graph: httpx.Client) -> None:
    sp_id = sandbox_graph.post(INSTANTIATE, json={"displayName": "Slow"}).json()[
        "servicePrincipal"
    ]["id"]
    first = sandbox_graph.get(f"/servicePrincipals/{sp_id}")
    error = _assert_graph_error(first, 404, "Request_ResourceNotFound")
    assert error["message"] == (
        f"Resource '{sp_id}' does not exist or one of its queried reference-property "
        "objects are not present."
    )
    # The filtered list does not see it yet either (second hidden read).
    listed = sandbox_graph.get("/servicePrincipals", params={"$filter": "displayName eq 'Slow'"})
    assert listed.json()["value"] == []
    found = sandbox_graph.get(f"/servicePrincipals/{sp_id}")
    assert found.status_code == 200
    assert found.json()["@odata.context"].endswith("$metadata#servicePrincipals/$entity")
    assert found.json()["id"] == sp_id


def test_synchronization_calls_also_wait_for_replication(sandbox_graph: httpx.Client) -> None:
    sp_id = sandbox_graph.post(INSTANTIATE, json={"displayName": "Slow"}).json()[
        "servicePrincipal"
    ]["id"]
    statuses = [
        sandbox_graph.get(f"/servicePrincipals/{sp_id}/synchronization/templates").status_code
        for _ in range(3)
    ]
    assert statuses == [404, 404, 200]


def test_consistency_delay_can_be_turned_off(sandbox_app_token: Callable[[Sandbox], str]) -> None:
    with (
        Sandbox(SandboxConfig(consistency_reads=0)) as sb,
        httpx.Client(
            base_url=sb.graph_url,
            verify=sb.client_ssl_context(),
            headers={"Authorization": f"Bearer {sandbox_app_token(sb)}"},
        ) as graph,
    ):
        sp_id = graph.post(INSTANTIATE, json={"displayName": "Fast"}).json()["servicePrincipal"][
            "id"
        ]
        assert graph.get(f"/servicePrincipals/{sp_id}").status_code == 200


def test_unknown_service_principal_is_404(sandbox_graph: httpx.Client) -> None:
    response = sandbox_graph.get("/servicePrincipals/00000000-0000-4000-8000-000000000000")
    _assert_graph_error(response, 404, "Request_ResourceNotFound")


def test_filter_by_display_name_with_quotes_and_case(
    sandbox_graph: httpx.Client, sandbox_new_app: Callable[[str], dict[str, Any]]
) -> None:
    wanted = sandbox_new_app("Bob's Iru App")
    sandbox_new_app("Bob's Iru App (old)")
    sandbox_new_app("Other")
    eq = sandbox_graph.get(
        "/servicePrincipals", params={"$filter": "displayName eq 'bob''s iru app'"}
    )
    assert [sp["id"] for sp in eq.json()["value"]] == [wanted["id"]]
    starts = sandbox_graph.get(
        "/servicePrincipals", params={"$filter": "startswith(displayName, 'Bob''s')"}
    )
    assert len(starts.json()["value"]) == 2
    by_app_id = sandbox_graph.get(
        "/servicePrincipals", params={"$filter": f"appId eq '{wanted['appId']}'"}
    )
    assert [sp["id"] for sp in by_app_id.json()["value"]] == [wanted["id"]]


@pytest.mark.parametrize(
    "expression",
    ["displayName ne 'x'", "tags/any(t:t eq 'x')", "accountEnabled eq true", "displayName eq x"],
)
def test_unsupported_filters_are_400(sandbox_graph: httpx.Client, expression: str) -> None:
    response = sandbox_graph.get("/servicePrincipals", params={"$filter": expression})
    _assert_graph_error(response, 400, "Request_UnsupportedQuery")


def test_select_limits_the_properties(
    sandbox_graph: httpx.Client, sandbox_new_app: Callable[[str], dict[str, Any]]
) -> None:
    sp = sandbox_new_app("Selected")
    listed = sandbox_graph.get(
        "/servicePrincipals", params={"$select": "id,appId,displayName"}
    ).json()
    assert listed["@odata.context"].endswith("$metadata#servicePrincipals(id,appId,displayName)")
    # After the tenant's built-in service principals (Microsoft Graph, the runbook's own app
    # registration, Graph Command Line Tools), which every tenant has.
    assert len(listed["value"]) == 1 + BUILTIN_SERVICE_PRINCIPALS
    assert listed["value"][-1] == {"id": sp["id"], "appId": sp["appId"], "displayName": "Selected"}
    assert all(set(item) == {"id", "appId", "displayName"} for item in listed["value"])
    one = sandbox_graph.get(f"/servicePrincipals/{sp['id']}", params={"$select": "appRoles"}).json()
    assert set(one) == {"@odata.context", "appRoles"}
    bad = sandbox_graph.get("/servicePrincipals", params={"$select": "nope"})
    _assert_graph_error(bad, 400, "Request_BadRequest")


@pytest.mark.parametrize("top", ["0", "1000", "-1", "ten"])
def test_top_must_be_between_1_and_999(sandbox_graph: httpx.Client, top: str) -> None:
    response = sandbox_graph.get("/servicePrincipals", params={"$top": top})
    _assert_graph_error(response, 400, "Request_BadRequest")


def test_paging_follows_next_links(sandbox_app_token: Callable[[Sandbox], str]) -> None:
    with (
        Sandbox(SandboxConfig(consistency_reads=0)) as sb,
        httpx.Client(
            verify=sb.client_ssl_context(),
            headers={"Authorization": f"Bearer {sandbox_app_token(sb)}"},
        ) as graph,
    ):
        for number in range(105):
            created = graph.post(
                sb.graph_url + INSTANTIATE, json={"displayName": f"App {number:03}"}
            )
            assert created.status_code == 201
        first = graph.get(sb.graph_url + "/servicePrincipals").json()
        assert len(first["value"]) == 100
        second = graph.get(first["@odata.nextLink"]).json()
        # 105 apps after the tenant's built-in service principals.
        assert len(second["value"]) == 5 + BUILTIN_SERVICE_PRINCIPALS
        assert "@odata.nextLink" not in second

        names: list[str] = []
        url: str | None = sb.graph_url + "/servicePrincipals?$top=40&$select=displayName"
        pages = 0
        while url:
            page = graph.get(url).json()
            names += [sp["displayName"] for sp in page["value"]]
            url = page.get("@odata.nextLink")
            pages += 1
            if url:
                parts = urlsplit(url)
                assert url.startswith(sb.graph_url + "/servicePrincipals?")
                query = parse_qs(parts.query)
                assert query["$top"] == ["40"] and query["$select"] == ["displayName"]
                assert "$skiptoken" in query
        assert pages == 3
        assert names[BUILTIN_SERVICE_PRINCIPALS:] == [f"App {n:03}" for n in range(105)]

        bad = graph.get(sb.graph_url + "/servicePrincipals", params={"$skiptoken": "garbage"})
        _assert_graph_error(bad, 400, "Request_BadRequest")
