"""The simulated directory: the default tenant, /users and /groups queries, and $batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runbook_lib.sim import (
    ALL_COMPANY,
    DEFAULT_GROUPS,
    DEFAULT_USERS,
    IRU_MAC_CONTRACTORS,
    IRU_MAC_USERS,
    IRU_PILOT,
    Sandbox,
    SandboxConfig,
)
from runbook_lib.sim.directory._seed import EDGE_CASE_USERS

EVENTUAL = {"ConsistencyLevel": "eventual"}


def test_default_tenant_names_are_fixed(sandbox: Sandbox) -> None:
    assert DEFAULT_USERS[:4] == (
        "adele.vance@sandbox.example",
        "alex.wilber@sandbox.example",
        "megan.bowen@sandbox.example",
        "lee.gu@sandbox.example",
    )
    assert len(DEFAULT_USERS) == 12
    assert [u["userPrincipalName"] for u in sandbox.users()] == [*DEFAULT_USERS, *EDGE_CASE_USERS]
    assert sorted(g["displayName"] for g in sandbox.groups()) == sorted(DEFAULT_GROUPS)
    assert DEFAULT_GROUPS.count("Sales") == 2
    sales = [g for g in sandbox.groups() if g["displayName"] == "Sales"]
    assert len({g["id"] for g in sales}) == 2
    disabled = [u["userPrincipalName"] for u in sandbox.users() if not u["accountEnabled"]]
    assert disabled == ["joni.sherman@sandbox.example"]


def test_default_groups_have_the_documented_members(sandbox: Sandbox) -> None:
    macs = sandbox.group_members(IRU_MAC_USERS)
    users = [m["userPrincipalName"] for m in macs if m["@odata.type"] == "#microsoft.graph.user"]
    nested = [m["displayName"] for m in macs if m["@odata.type"] == "#microsoft.graph.group"]
    assert users == [
        "adele.vance@sandbox.example",
        "alex.wilber@sandbox.example",
        "megan.bowen@sandbox.example",
    ]
    assert nested == [IRU_MAC_CONTRACTORS]
    assert len(sandbox.group_members(IRU_MAC_CONTRACTORS)) == 2
    assert len(sandbox.group_members(IRU_PILOT)) == 2
    everyone = sandbox.group(ALL_COMPANY)
    assert everyone["securityEnabled"] is False and everyone["mailEnabled"] is True
    assert everyone["groupTypes"] == ["Unified"]
    with pytest.raises(KeyError, match="2 groups"):
        sandbox.group("Sales")


def test_ids_are_stable_across_seeds_and_sizes() -> None:
    small = Sandbox(SandboxConfig(seed=4))
    large = Sandbox(SandboxConfig(seed=4, users=300, groups=40))
    other = Sandbox(SandboxConfig(seed=5))
    adele = "adele.vance@sandbox.example"
    assert small.user(adele)["id"] == large.user(adele)["id"] != other.user(adele)["id"]
    assert small.group(IRU_PILOT)["id"] == large.group(IRU_PILOT)["id"]
    assert len(large.users()) == 302 and len(large.groups()) == 41
    again = Sandbox(SandboxConfig(seed=4, users=300, groups=40))
    assert [u["id"] for u in again.users()] == [u["id"] for u in large.users()]
    assert len({u["userPrincipalName"] for u in large.users()}) == 302


def test_a_large_directory_builds_quickly() -> None:
    sb = Sandbox(SandboxConfig(seed=2, users=20_000, groups=1_000))
    assert len(sb.state.directory.users) == 20_002
    assert len(sb.state.directory.groups) == 1_001


def test_user_default_properties_and_select(sandbox_graph: httpx.Client) -> None:
    body = sandbox_graph.get("/users", params={"$top": "2"}).json()
    first = body["value"][0]
    assert "accountEnabled" not in first and "department" not in first
    assert first["userPrincipalName"] == "adele.vance@sandbox.example"
    assert body["@odata.context"].endswith("$metadata#users")
    selected = sandbox_graph.get(
        "/users", params={"$select": "id,accountEnabled,department,mailNickname"}
    ).json()
    assert set(selected["value"][0]) == {"id", "accountEnabled", "department", "mailNickname"}
    bad = sandbox_graph.get("/users", params={"$select": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "Request_BadRequest"


def test_paging_follows_next_links(sandbox_graph: httpx.Client) -> None:
    seen: list[str] = []
    url: str | None = "/users?$top=5&$select=id"
    pages = 0
    while url:
        body = sandbox_graph.get(url).json()
        seen += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 14
    for top in ("0", "1000", "x"):
        assert sandbox_graph.get("/users", params={"$top": top}).status_code == 400


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("userPrincipalName eq 'ADELE.VANCE@sandbox.example'", ["Adele Vance"]),
        ("startswith(displayName,'Me')", ["Megan Bowen"]),
        ("department eq 'Marketing' and accountEnabled eq true", ["Alex Wilber", "Megan Bowen"]),
        ("accountEnabled eq false", ["Joni Sherman"]),
        ("jobTitle in ('Director', 'Designer')", ["Lee Gu", "Grady Archie", "Miriam Graham"]),
        ("mail eq 'nobody@sandbox.example'", []),
    ],
)
def test_user_filters(sandbox_graph: httpx.Client, expression: str, expected: list[str]) -> None:
    response = sandbox_graph.get("/users", params={"$filter": expression})
    assert response.status_code == 200, response.text
    assert [u["displayName"] for u in response.json()["value"]] == expected


def test_advanced_queries_need_consistency_level(sandbox_graph: httpx.Client) -> None:
    search = {"$search": '"displayName:meg"'}
    refused = sandbox_graph.get("/users", params=search)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert "ConsistencyLevel" in refused.json()["error"]["message"]
    found = sandbox_graph.get("/users", params={**search, "$count": "true"}, headers=EVENTUAL)
    assert found.json()["@odata.count"] == 1
    assert found.json()["value"][0]["displayName"] == "Megan Bowen"
    count = sandbox_graph.get("/users", params={"$count": "true"})
    assert count.status_code == 400 and "$count" in count.json()["error"]["message"]
    ne = {"$filter": "department ne 'Marketing'"}
    assert sandbox_graph.get("/users", params=ne).status_code == 400
    allowed = sandbox_graph.get("/users", params={**ne, "$count": "true"}, headers=EVENTUAL)
    assert allowed.json()["@odata.count"] == 12
    text = sandbox_graph.get("/users/$count", headers=EVENTUAL)
    assert text.text == "14" and text.headers["Content-Type"].startswith("text/plain")
    unknown = sandbox_graph.get("/users", params={"$filter": "shoeSize eq '9'"})
    assert unknown.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_get_user_by_id_or_upn(sandbox_graph: httpx.Client, sandbox: Sandbox) -> None:
    adele = sandbox.user("adele.vance@sandbox.example")
    by_upn = sandbox_graph.get("/users/adele.vance@sandbox.example").json()
    by_id = sandbox_graph.get(f"/users/{adele['id']}", params={"$select": "accountEnabled"})
    assert by_upn["id"] == adele["id"]
    assert by_id.json()["accountEnabled"] is True
    missing = sandbox_graph.get("/users/nobody@sandbox.example")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"


def test_groups_members_are_direct_only(sandbox_graph: httpx.Client, sandbox: Sandbox) -> None:
    macs = sandbox.group(IRU_MAC_USERS)["id"]
    direct = sandbox_graph.get(f"/groups/{macs}/members").json()["value"]
    assert [m["@odata.type"] for m in direct].count("#microsoft.graph.group") == 1
    assert len(direct) == 4
    transitive = sandbox_graph.get(f"/groups/{macs}/transitiveMembers").json()["value"]
    assert len(transitive) == 6
    unified = sandbox_graph.get(
        "/groups", params={"$filter": "groupTypes/any(c:c eq 'Unified')"}
    ).json()
    assert [g["displayName"] for g in unified["value"]] == [ALL_COMPANY]
    sales = sandbox_graph.get("/groups", params={"$filter": "displayName eq 'Sales'"}).json()
    assert len(sales["value"]) == 2
    group = sandbox_graph.get(f"/groups/{macs}").json()
    assert group["securityEnabled"] is True and group["mailEnabled"] is False


def test_directory_changes_through_the_handle(
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(consistency_reads=1)
    graph = sandbox_graph_for(sb)
    new = sb.add_user("jane.doe@sandbox.example", jobTitle="Engineer", groups=[IRU_PILOT])
    assert new["displayName"] == "Jane Doe" and new["jobTitle"] == "Engineer"
    # A new user replicates after one read.
    assert graph.get(f"/users/{new['id']}").status_code == 404
    assert graph.get(f"/users/{new['id']}").status_code == 200
    assert sb.update_user("jane.doe@sandbox.example", department="R&D")["department"] == "R&D"
    assert sb.disable_user("jane.doe@sandbox.example")["accountEnabled"] is False
    sb.soft_delete_user("jane.doe@sandbox.example")
    assert graph.get(f"/users/{new['id']}").status_code == 404
    deleted = graph.get("/directory/deletedItems/microsoft.graph.user").json()["value"]
    assert [u["id"] for u in deleted] == [new["id"]]
    sb.restore_user("jane.doe@sandbox.example")
    sb.hard_delete_user("jane.doe@sandbox.example")
    with pytest.raises(KeyError):
        sb.user("jane.doe@sandbox.example")
    members = [m.get("userPrincipalName") for m in sb.group_members(IRU_PILOT)]
    assert "jane.doe@sandbox.example" not in members
    with pytest.raises(ValueError, match="userPrincipalName"):
        sb.add_user("adele.vance@sandbox.example")
    with pytest.raises(ValueError, match="unknown user property"):
        sb.update_user("adele.vance@sandbox.example", shoeSize="9")


def _batch(graph: httpx.Client, requests: list[dict[str, Any]]) -> httpx.Response:
    return graph.post("/$batch", json={"requests": requests})


def test_batch_runs_each_request(sandbox_graph: httpx.Client, sandbox: Sandbox) -> None:
    response = _batch(
        sandbox_graph,
        [
            {"id": "1", "method": "GET", "url": "/users?$top=1&$select=id"},
            {"id": "2", "method": "GET", "url": "/users/nobody@sandbox.example"},
            {"id": "3", "method": "GET", "url": "/groups", "dependsOn": ["2"]},
            {"id": "4", "method": "GET", "url": "groups?$top=2"},
        ],
    )
    assert response.status_code == 200
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["1"]["status"] == 200 and len(answers["1"]["body"]["value"]) == 1
    assert answers["2"]["status"] == 404
    assert answers["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert answers["3"]["status"] == 424
    assert len(answers["4"]["body"]["value"]) == 2
    [record] = [r for r in sandbox.requests("graph") if r.path.endswith("$batch")]
    assert record.method == "POST" and record.status == 200


def test_batch_limits(sandbox_graph: httpx.Client) -> None:
    many = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]
    assert _batch(sandbox_graph, many).status_code == 400
    assert _batch(sandbox_graph, many[:20]).status_code == 200
    assert _batch(sandbox_graph, []).status_code == 400
    duplicate = [{"id": "1", "method": "GET", "url": "/users"}] * 2
    assert _batch(sandbox_graph, duplicate).status_code == 400
    no_type = [{"id": "1", "method": "POST", "url": "/$batch", "body": {}}]
    assert _batch(sandbox_graph, no_type).status_code == 400


def test_batch_needs_a_valid_token(sandbox: Sandbox) -> None:
    response = httpx.post(
        sandbox.graph_url + "/$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": "/users"}]},
        verify=sandbox.client_ssl_context(),
    )
    assert response.status_code == 401


def test_user_writes_through_graph(sandbox_graph: httpx.Client, sandbox: Sandbox) -> None:
    lee = sandbox.user("lee.gu@sandbox.example")
    patched = sandbox_graph.patch(f"/users/{lee['id']}", json={"accountEnabled": False})
    assert patched.status_code == 204
    assert sandbox.user("lee.gu@sandbox.example")["accountEnabled"] is False
    for body in ({"id": "x"}, {"shoeSize": "9"}, {"accountEnabled": "no"}):
        assert sandbox_graph.patch(f"/users/{lee['id']}", json=body).status_code == 400
    assert sandbox_graph.delete(f"/users/{lee['id']}").status_code == 204
    assert sandbox_graph.get(f"/users/{lee['id']}").status_code == 404
    deleted = sandbox_graph.get(f"/directory/deletedItems/{lee['id']}").json()
    assert deleted["@odata.type"] == "#microsoft.graph.user" and deleted["deletedDateTime"]
    restored = sandbox_graph.post(f"/directory/deletedItems/{lee['id']}/restore")
    assert restored.status_code == 200 and restored.json()["deletedDateTime"] is None
    sandbox_graph.delete(f"/users/{lee['id']}")
    # Purging a user is not supported app-only (directory-deleteditems-delete.md): 403; a
    # signed-in User Administrator with User.ReadWrite.All may.
    assert sandbox_graph.delete(f"/directory/deletedItems/{lee['id']}").status_code == 403
    admin = sandbox.state.tokens.issue_access_token(
        kind="user",
        client_id="14d82eec-204b-4c2f-b7e8-296a70dab67e",
        audience="https://graph.microsoft.com",
        scopes=("User.ReadWrite.All",),
        subject=sandbox.state.admin_object_id,
    )
    purged = sandbox_graph.delete(
        f"/directory/deletedItems/{lee['id']}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert purged.status_code == 204, purged.text
    assert sandbox_graph.get(f"/directory/deletedItems/{lee['id']}").status_code == 404
    with pytest.raises(KeyError):
        sandbox.user("lee.gu@sandbox.example")


def test_create_users_groups_and_members_through_graph(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
) -> None:
    sb = sandbox_factory(consistency_reads=0)
    graph = sandbox_graph_for(sb)
    body = {
        "accountEnabled": True,
        "displayName": "Test User",
        "mailNickname": "test.user",
        "userPrincipalName": "test.user@sandbox.example",
        "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": "x-1234567!"},
    }
    created = graph.post("/users", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["userPrincipalName"] == "test.user@sandbox.example"
    assert graph.post("/users", json=body).status_code == 400  # same UPN
    assert (
        graph.post(
            "/users", json={k: v for k, v in body.items() if k != "passwordProfile"}
        ).status_code
        == 400
    )
    group = graph.post(
        "/groups",
        json={
            "displayName": "Iru Testers",
            "mailEnabled": False,
            "mailNickname": "irutesters",
            "securityEnabled": True,
        },
    )
    assert group.status_code == 201
    group_id, user_id = group.json()["id"], created.json()["id"]
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"}
    assert graph.post(f"/groups/{group_id}/members/$ref", json=reference).status_code == 204
    assert graph.post(f"/groups/{group_id}/members/$ref", json=reference).status_code == 400
    assert [m["id"] for m in graph.get(f"/groups/{group_id}/members").json()["value"]] == [user_id]
    assert graph.delete(f"/groups/{group_id}/members/{user_id}/$ref").status_code == 204
    assert graph.delete(f"/groups/{group_id}/members/{user_id}/$ref").status_code == 404
    assert graph.delete(f"/groups/{group_id}").status_code == 204
    assert graph.get(f"/groups/{group_id}").status_code == 404
