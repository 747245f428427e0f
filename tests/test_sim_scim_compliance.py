"""The Iru SCIM stand-in against scim2-tester and a replay of Entra's request shapes.

scim2-tester checks RFC 7643/7644 CRUD and PATCH; it does not check what Entra needs
(filters, capitalised ops, ``"False"`` strings, member removal by value, uniqueness),
so the replay suite sends the shapes the Entra provisioning service documents, in its
default dialect and with the ``aadOptscim062020`` flag, and checks the answers Entra
expects.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from runbook_lib.sim import Sandbox
from runbook_lib.sim.plumbing._request_log import logging_middleware

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def test_scim2_tester_checks_pass_in_process(sandbox: Sandbox) -> None:
    scim2_tester = pytest.importorskip("scim2_tester")
    from scim2_client.engines.wsgi import WSGISCIMClient

    # The same stack the HTTPS server runs (request log included), minus the socket.
    app = logging_middleware(
        sandbox.faults.middleware(sandbox.iru, "iru"), "iru", sandbox.log, sandbox.redactor
    )
    client = WSGISCIMClient(
        app,
        base_url="https://localhost/api/v1/scim",
        headers={"Authorization": f"Bearer {sandbox.scim_token}"},
    )
    client.discover()
    results = scim2_tester.check_server(client)
    failed = [
        (r.status.name, r.title, r.reason)
        for r in results
        if r.status.name not in ("SUCCESS", "SKIPPED")
    ]
    assert failed == []
    assert Counter(r.status.name for r in results)["SUCCESS"] >= 100
    assert {r.server for r in sandbox.requests()} == {"iru"}


def test_scim2_tester_checks_pass_over_https(sandbox: Sandbox) -> None:
    scim2_tester = pytest.importorskip("scim2_tester")
    httpx2 = pytest.importorskip("httpx2")
    from scim2_client.engines.httpx2 import SyncSCIMClient

    with httpx2.Client(
        base_url=sandbox.scim_url + "/",
        verify=sandbox.client_ssl_context(),
        headers={"Authorization": f"Bearer {sandbox.scim_token}"},
    ) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = scim2_tester.check_server(client)
    assert [r.title for r in results if r.status.name not in ("SUCCESS", "SKIPPED")] == []


# -- the Entra replay suite --------------------------------------------------------------


@dataclass
class Seeded:
    """Two users and a group (with the first user as member) created the way Entra does."""

    client: httpx.Client
    alice: dict[str, Any]
    bob: dict[str, Any]
    group: dict[str, Any]


def _entra_user(name: str) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": name,
        "userName": f"{name}@contoso.com",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"{name}@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": f"{name.title()} Smith",
            "familyName": "Smith",
            "givenName": name.title(),
        },
        "roles": [],
    }


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


@pytest.fixture
def seeded(sandbox_scim: httpx.Client) -> Seeded:
    alice = sandbox_scim.post("/Users", json=_entra_user("alice"))
    bob = sandbox_scim.post("/Users", json=_entra_user("bob"))
    assert alice.status_code == bob.status_code == 201
    group = sandbox_scim.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "externalId": str(uuid.uuid4()),
            "displayName": "Engineering",
            "meta": {"resourceType": "Group"},
        },
    )
    assert group.status_code == 201
    add = _patch(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": alice.json()["id"]}]}
    )
    assert sandbox_scim.patch(f"/Groups/{group.json()['id']}", json=add).status_code == 204
    return Seeded(sandbox_scim, alice.json(), bob.json(), group.json())


def _user(s: Seeded, who: str = "alice") -> dict[str, Any]:
    resource = s.alice if who == "alice" else s.bob
    return dict(s.client.get(f"/Users/{resource['id']}").json())


def _members(s: Seeded) -> set[str]:
    group = s.client.get(f"/Groups/{s.group['id']}").json()
    return {m["value"] for m in group.get("members") or []}


def _ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in statuses, response.text
    assert (
        response.headers["Content-Type"].startswith("application/scim+json")
        or response.status_code == 204
    )
    return response


def case_test_connection(s: Seeded) -> None:
    body = _ok(
        s.client.get("/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'}), 200
    ).json()
    assert body["schemas"] == [LIST] and body["totalResults"] == 0 and body["Resources"] == []


def case_test_connection_groups(s: Seeded) -> None:
    params = {"excludedAttributes": "members", "filter": f'displayName eq "{uuid.uuid4()}"'}
    assert _ok(s.client.get("/Groups", params=params), 200).json()["totalResults"] == 0


def case_post_user_echoes_attributes(s: Seeded) -> None:
    created = _ok(s.client.post("/Users", json=_entra_user("carol")), 201).json()
    assert (
        created["id"] and created["userName"] == "carol@contoso.com" and created["active"] is True
    )
    assert created["externalId"] == "carol" and created["name"]["formatted"] == "Carol Smith"


def case_duplicate_user_is_409(s: Seeded) -> None:
    response = _ok(s.client.post("/Users", json=_entra_user("alice")), 409)
    assert response.json()["schemas"] == [ERROR]


@pytest.mark.parametrize(
    "clause",
    [
        'userName eq "alice@contoso.com"',
        'userName eq "ALICE@Contoso.com"',
        'externalId eq "alice"',
        'emails[type eq "work"].value eq "alice@contoso.com"',
    ],
)
def test_matching_filters(seeded: Seeded, clause: str) -> None:
    body = _ok(seeded.client.get("/Users", params={"filter": clause}), 200).json()
    assert [r["id"] for r in body["Resources"]] == [seeded.alice["id"]]


def case_get_and_404(s: Seeded) -> None:
    assert _ok(s.client.get(f"/Users/{s.alice['id']}"), 200).json()["id"] == s.alice["id"]
    missing = _ok(s.client.get(f"/Users/{uuid.uuid4()}"), 404).json()
    assert missing["schemas"] == [ERROR] and missing["status"] == "404"


def case_replace_email_and_family_name(s: Seeded) -> None:
    ops = _patch(
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "alice2@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Jones"},
    )
    _ok(s.client.patch(f"/Users/{s.alice['id']}", json=ops), 200, 204)
    user = _user(s)
    assert (
        user["emails"][0]["value"] == "alice2@contoso.com" and user["name"]["familyName"] == "Jones"
    )


def case_replace_user_name(s: Seeded) -> None:
    ops = _patch({"op": "Replace", "path": "userName", "value": "alice.new@contoso.com"})
    _ok(s.client.patch(f"/Users/{s.alice['id']}", json=ops), 200, 204)
    assert _user(s)["userName"] == "alice.new@contoso.com"


def case_disable_with_string_false(s: Seeded) -> None:
    _ok(
        s.client.patch(
            f"/Users/{s.alice['id']}",
            json=_patch({"op": "Replace", "path": "active", "value": "False"}),
        ),
        200,
        204,
    )
    assert _user(s)["active"] is False
    _ok(
        s.client.patch(
            f"/Users/{s.alice['id']}",
            json=_patch({"op": "Replace", "path": "active", "value": "True"}),
        ),
        200,
        204,
    )
    assert _user(s)["active"] is True


def case_add_single_value(s: Seeded) -> None:
    _ok(
        s.client.patch(
            f"/Users/{s.alice['id']}",
            json=_patch({"op": "Add", "path": "nickName", "value": "Babs"}),
        ),
        200,
        204,
    )
    assert _user(s)["nickName"] == "Babs"


def case_add_missing_multi_valued_entry(s: Seeded) -> None:
    ops = _patch(
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"}
    )
    _ok(s.client.patch(f"/Users/{s.alice['id']}", json=ops), 200, 204)
    assert _user(s)["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}]


def case_enterprise_extension_attributes(s: Seeded) -> None:
    ops = _patch(
        {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "R&D"},
        {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": {"value": s.bob["id"]}},
    )
    _ok(s.client.patch(f"/Users/{s.alice['id']}", json=ops), 200, 204)
    extension = _user(s)[ENTERPRISE]
    assert extension["department"] == "R&D" and extension["manager"]["value"] == s.bob["id"]
    cleared = _patch({"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": {"value": ""}})
    _ok(s.client.patch(f"/Users/{s.alice['id']}", json=cleared), 200, 204)


def case_delete_user(s: Seeded) -> None:
    _ok(s.client.delete(f"/Users/{s.bob['id']}"), 204)
    _ok(s.client.get(f"/Users/{s.bob['id']}"), 404)


def case_paging(s: Seeded) -> None:
    body = _ok(s.client.get("/Users", params={"startIndex": "2", "count": "1"}), 200).json()
    assert body["totalResults"] == 2 and body["itemsPerPage"] == 1 and body["startIndex"] == 2


def case_group_lookups_exclude_members(s: Seeded) -> None:
    params = {"excludedAttributes": "members", "filter": 'displayName eq "Engineering"'}
    [found] = _ok(s.client.get("/Groups", params=params), 200).json()["Resources"]
    assert found["id"] == s.group["id"] and "members" not in found
    single = _ok(
        s.client.get(f"/Groups/{s.group['id']}", params={"excludedAttributes": "members"}), 200
    )
    assert "members" not in single.json()


def case_post_group_with_the_tutorial_urn(s: Seeded) -> None:
    body = {
        "schemas": [GROUP, ADSCIM_GROUP],
        "externalId": str(uuid.uuid4()),
        "displayName": "Sales",
        "meta": {"resourceType": "Group"},
    }
    created = _ok(s.client.post("/Groups", json=body), 201).json()
    assert not created.get("members")


def case_duplicate_group_is_409(s: Seeded) -> None:
    body = {"schemas": [GROUP], "displayName": "Engineering", "externalId": "other"}
    assert _ok(s.client.post("/Groups", json=body), 409).json()["scimType"] == "uniqueness"


def case_rename_group(s: Seeded) -> None:
    ops = _patch({"op": "Replace", "path": "displayName", "value": "Platform"})
    _ok(s.client.patch(f"/Groups/{s.group['id']}", json=ops), 204)
    assert s.client.get(f"/Groups/{s.group['id']}").json()["displayName"] == "Platform"


def case_add_many_members(s: Seeded) -> None:
    ops = _patch(
        {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": s.bob["id"]}, {"$ref": None, "value": s.alice["id"]}],
        }
    )
    _ok(s.client.patch(f"/Groups/{s.group['id']}", json=ops), 204)
    assert _members(s) == {s.alice["id"], s.bob["id"]}


def case_membership_check(s: Seeded) -> None:
    def check(user_id: str) -> int:
        params = {
            "excludedAttributes": "members",
            "filter": f'id eq "{s.group["id"]}" and members[value eq "{user_id}"]',
        }
        return int(_ok(s.client.get("/Groups", params=params), 200).json()["totalResults"])

    assert (check(s.alice["id"]), check(s.bob["id"])) == (1, 0)


def case_delete_group(s: Seeded) -> None:
    _ok(s.client.delete(f"/Groups/{s.group['id']}"), 204)
    _ok(s.client.get(f"/Groups/{s.group['id']}"), 404)


# The two dialects differ in how they disable users, replace several attributes and
# remove members.


def default_remove_member(s: Seeded) -> None:
    ops = _patch(
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": s.alice["id"]}]}
    )
    _ok(s.client.patch(f"/Groups/{s.group['id']}", json=ops), 204)
    assert _members(s) == set()


def flag_remove_member(s: Seeded) -> None:
    ops = _patch({"op": "remove", "path": f'members[value eq "{s.alice["id"]}"]'})
    _ok(s.client.patch(f"/Groups/{s.group['id']}", json=ops), 204)
    assert _members(s) == set()


def flag_disable_with_boolean(s: Seeded) -> None:
    _ok(
        s.client.patch(
            f"/Users/{s.alice['id']}",
            json=_patch({"op": "replace", "path": "active", "value": False}),
        ),
        200,
        204,
    )
    assert _user(s)["active"] is False


def flag_pathless_replace(s: Seeded) -> None:
    ops = _patch(
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "a@contoso.com"},
        {
            "op": "replace",
            "value": {
                "displayName": "Alice S.",
                "name.givenName": "Al",
                "name.familyName": "S",
                f"{ENTERPRISE}:employeeNumber": "42",
            },
        },
    )
    _ok(s.client.patch(f"/Users/{s.alice['id']}", json=ops), 200, 204)
    user = _user(s)
    assert user["displayName"] == "Alice S." and user["name"]["givenName"] == "Al"
    assert (
        user[ENTERPRISE]["employeeNumber"] == "42" and user["emails"][0]["value"] == "a@contoso.com"
    )


def flag_lowercase_add(s: Seeded) -> None:
    _ok(
        s.client.patch(
            f"/Users/{s.alice['id']}", json=_patch({"op": "add", "path": "nickName", "value": "Al"})
        ),
        200,
        204,
    )
    assert _user(s)["nickName"] == "Al"


SHARED: list[Callable[[Seeded], None]] = [
    case_test_connection,
    case_test_connection_groups,
    case_post_user_echoes_attributes,
    case_duplicate_user_is_409,
    case_get_and_404,
    case_replace_email_and_family_name,
    case_replace_user_name,
    case_add_single_value,
    case_add_missing_multi_valued_entry,
    case_enterprise_extension_attributes,
    case_delete_user,
    case_paging,
    case_group_lookups_exclude_members,
    case_post_group_with_the_tutorial_urn,
    case_duplicate_group_is_409,
    case_rename_group,
    case_add_many_members,
    case_membership_check,
    case_delete_group,
]
VARIANTS: dict[str, list[Callable[[Seeded], None]]] = {
    "default": [*SHARED, case_disable_with_string_false, default_remove_member],
    "aadOptscim062020": [
        *SHARED,
        flag_disable_with_boolean,
        flag_pathless_replace,
        flag_lowercase_add,
        flag_remove_member,
    ],
}
CASES = [
    pytest.param(case, id=f"{variant}-{case.__name__.removeprefix('case_')}")
    for variant, cases in VARIANTS.items()
    for case in cases
]


@pytest.mark.parametrize("case", CASES)
def test_entra_replay(seeded: Seeded, case: Callable[[Seeded], None]) -> None:
    case(seeded)


def test_every_request_needs_the_token(sandbox: Sandbox) -> None:
    verify = sandbox.client_ssl_context()
    for method, path in (
        ("GET", "/Users"),
        ("POST", "/Users"),
        ("PATCH", "/Groups/x"),
        ("DELETE", "/Users/x"),
    ):
        response = httpx.request(method, sandbox.scim_url + path, json={}, verify=verify)
        assert response.status_code == 401, (method, path)
        assert response.json()["schemas"] == [ERROR]
