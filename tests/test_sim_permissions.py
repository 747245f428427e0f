"""The Graph stand-in checks permissions and directory roles as Microsoft Graph does.

Each route needs the permissions its v1.0 reference page documents (in the token's
``roles`` for app-only sign-in, ``scp`` for delegated sign-in, plus the signed-in user's
directory roles where the page names them); the documented grant reads tell a client what
it holds. All over real HTTPS against a started sandbox; delegated tokens are issued
straight from the sandbox's token store, with the scopes a consent would have given.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from runbook_lib.sim import Sandbox, SandboxConfig, add_sim_arguments, config_from_environment
from runbook_lib.sim.graph._app import GraphApp, _route_key
from runbook_lib.sim.graph._permissions import ROUTE_PERMISSIONS, Requirement
from runbook_lib.sim.tenant._grants import GRAPH_CLI_CLIENT_ID, GRAPH_PERMISSIONS

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
DENIED = "Insufficient privileges to complete the operation."


@pytest.fixture
def fast() -> Iterator[Sandbox]:
    """A sandbox where new objects are visible at once."""
    with Sandbox(SandboxConfig(consistency_reads=0, assignment_reads=0)) as sb:
        yield sb


def _client(sb: Sandbox, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=sb.graph_url,
        verify=sb.client_ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )


def _user_token(sb: Sandbox, *scopes: str, client_id: str = GRAPH_CLI_CLIENT_ID) -> str:
    """A delegated Graph token for the sandbox admin carrying exactly ``scopes``."""
    return sb.state.tokens.issue_access_token(
        kind="user",
        client_id=client_id,
        audience="https://graph.microsoft.com",
        scopes=scopes,
        subject=sb.state.admin_object_id,
    )


def _refused(response: httpx.Response) -> None:
    """403 Authorization_RequestDenied, Graph's answer on the directory routes."""
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("Authorization_RequestDenied", DENIED)
    assert error["innerError"]["request-id"] == response.headers["request-id"]


def _sync_refused(response: httpx.Response) -> None:
    """The synchronization API's answer: 401 UnknownError with an empty message."""
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("UnknownError", "")
    assert "WWW-Authenticate" not in response.headers


def _sp_by_app_id(graph: httpx.Client, app_id: str) -> dict[str, Any]:
    found = graph.get("/servicePrincipals", params={"$filter": f"appId eq '{app_id}'"}).json()
    assert len(found["value"]) == 1, found
    return dict(found["value"][0])


# -- the table ------------------------------------------------------------------------------------


def test_every_route_has_an_entry_naming_its_page(sandbox: Sandbox) -> None:
    app = GraphApp(
        sandbox.state, authority=sandbox.authority, probe_context=sandbox.client_ssl_context()
    )
    routes = {_route_key(rule) for rule in app.url_map.iter_rules()}
    assert routes == set(ROUTE_PERMISSIONS)
    for route, entry in ROUTE_PERMISSIONS.items():
        if entry is None:
            assert route == ("POST", "/v1.0/$batch")
            continue
        assert entry.page.endswith(".md"), route
        requirements = [entry] if isinstance(entry, Requirement) else entry.variants.values()
        for requirement in requirements:
            assert requirement.application or requirement.delegated, route


# -- withheld permissions -------------------------------------------------------------------------


def test_a_withheld_permission_is_refused_where_needed_and_nothing_else_changes(
    sandbox_factory: Callable[..., Sandbox], sandbox_graph_for: Callable[[Sandbox], httpx.Client]
) -> None:
    full = sandbox_graph_for(sandbox_factory())
    lacking = sandbox_graph_for(sandbox_factory(withheld_permissions=("AuditLog.Read.All",)))
    assert full.get("/auditLogs/provisioning").status_code == 200
    _refused(lacking.get("/auditLogs/provisioning"))
    for path in ("/users", "/groups", "/servicePrincipals", "/subscribedSkus"):
        assert lacking.get(path).json()["value"] == full.get(path).json()["value"], path
    created = lacking.post(
        "/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate",
        json={"displayName": "Still allowed"},
    )
    assert created.status_code == 201


def test_withholding_a_permission_also_withholds_the_broader_ones(
    sandbox_factory: Callable[..., Sandbox], sandbox_graph_for: Callable[[Sandbox], httpx.Client]
) -> None:
    # Group.ReadWrite.All is granted by default and would cover reading groups.
    sb = sandbox_factory(withheld_permissions=("GroupMember.Read.All",))
    graph = sandbox_graph_for(sb)
    granted = set(sb.state.grants.granted_app_roles())
    assert not granted & {
        "GroupMember.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All",
    }
    _refused(graph.get("/groups"))
    _refused(graph.post("/groups", json={"displayName": "x", "mailNickname": "x"}))
    assert graph.get("/users").status_code == 200


# -- the documented grant reads ------------------------------------------------------------------


def test_built_in_service_principals_are_found_by_app_id(
    sandbox: Sandbox, sandbox_graph: httpx.Client
) -> None:
    graph_sp = _sp_by_app_id(sandbox_graph, GRAPH_APP_ID)
    assert graph_sp["displayName"] == "Microsoft Graph"
    roles = {r["value"]: r for r in graph_sp["appRoles"]}
    scopes = {s["value"]: s for s in graph_sp["oauth2PermissionScopes"]}
    for name, permission in GRAPH_PERMISSIONS.items():
        if permission.app_role_id:
            assert roles[name]["id"] == permission.app_role_id
            assert roles[name]["allowedMemberTypes"] == ["Application"] and roles[name]["isEnabled"]
        if permission.scope_id:
            assert scopes[name]["id"] == permission.scope_id and scopes[name]["isEnabled"]
    assert scopes["Synchronization.ReadWrite.All"]["type"] == "Admin"
    runbook = _sp_by_app_id(sandbox_graph, sandbox.client_id)
    cli = _sp_by_app_id(sandbox_graph, GRAPH_CLI_CLIENT_ID)
    assert cli["displayName"] == "Microsoft Graph Command Line Tools"
    for sp in (graph_sp, runbook, cli):
        one = sandbox_graph.get(f"/servicePrincipals/{sp['id']}")
        assert one.status_code == 200 and one.json()["appId"] == sp["appId"]
    # Finding the runbook's enterprise app by display name sees none of them.
    by_name = sandbox_graph.get(
        "/servicePrincipals", params={"$filter": f"displayName eq '{sandbox.app_name}'"}
    )
    assert by_name.json()["value"] == []


def test_app_role_assignments_list_what_the_app_was_granted(
    sandbox_factory: Callable[..., Sandbox], sandbox_graph_for: Callable[[Sandbox], httpx.Client]
) -> None:
    sb = sandbox_factory(withheld_permissions=("AuditLog.Read.All",))
    graph = sandbox_graph_for(sb)
    graph_sp = _sp_by_app_id(graph, GRAPH_APP_ID)
    runbook = _sp_by_app_id(graph, sb.client_id)
    names = {r["id"]: r["value"] for r in graph_sp["appRoles"]}
    assigned = graph.get(f"/servicePrincipals/{runbook['id']}/appRoleAssignments").json()["value"]
    assert sorted(names[a["appRoleId"]] for a in assigned) == list(
        sb.state.grants.granted_app_roles()
    )
    assert "AuditLog.Read.All" not in {names[a["appRoleId"]] for a in assigned}
    for a in assigned:
        assert a["principalId"] == runbook["id"] and a["principalType"] == "ServicePrincipal"
        assert a["resourceId"] == graph_sp["id"] and a["resourceDisplayName"] == "Microsoft Graph"
    assert (
        graph.get(f"/servicePrincipals/{graph_sp['id']}/appRoleAssignments").json()["value"] == []
    )
    assert (
        graph.get(
            f"/servicePrincipals/{'0' * 8}-0000-4000-8000-{'0' * 12}/appRoleAssignments"
        ).status_code
        == 404
    )


def test_delegated_grants_me_and_directory_roles(
    sandbox: Sandbox, sandbox_graph: httpx.Client
) -> None:
    held = sandbox.state.grants.consent(
        GRAPH_CLI_CLIENT_ID, ("Directory.Read.All", "User.Read", "Synchronization.ReadWrite.All")
    )
    cli = _sp_by_app_id(sandbox_graph, GRAPH_CLI_CLIENT_ID)
    graph_sp = _sp_by_app_id(sandbox_graph, GRAPH_APP_ID)
    with _client(sandbox, _user_token(sandbox, *held)) as admin:
        grants = admin.get(
            "/oauth2PermissionGrants", params={"$filter": f"clientId eq '{cli['id']}'"}
        ).json()["value"]
        assert len(grants) == 1
        assert grants[0]["consentType"] == "AllPrincipals" and grants[0]["principalId"] is None
        assert grants[0]["resourceId"] == graph_sp["id"]
        assert sorted(grants[0]["scope"].split()) == sorted(held)
        me = admin.get("/me", params={"$select": "id,userPrincipalName"}).json()
        assert (me["id"], me["userPrincipalName"]) == (
            sandbox.state.admin_object_id,
            sandbox.state.admin_upn,
        )
        roles = admin.get("/me/memberOf/microsoft.graph.directoryRole").json()["value"]
        assert [r["displayName"] for r in roles] == list(sandbox.state.grants.admin_roles)
        assert roles[0]["roleTemplateId"] == "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
        listed = admin.get("/me/memberOf", params={"$select": "displayName"}).json()["value"]
        assert listed == [
            {"@odata.type": "#microsoft.graph.directoryRole", "displayName": r["displayName"]}
            for r in roles
        ]
        first = admin.get("/me/memberOf/microsoft.graph.directoryRole", params={"$top": "1"})
        second = admin.get(first.json()["@odata.nextLink"]).json()
        assert [r["id"] for r in first.json()["value"] + second["value"]] == [
            r["id"] for r in roles
        ]
    # With only User.Read, directory roles come back with limited information.
    with _client(sandbox, _user_token(sandbox, "User.Read")) as reader:
        limited = reader.get("/me/memberOf/microsoft.graph.directoryRole").json()["value"]
        assert limited and all(r["id"] and r["displayName"] is None for r in limited)
        _refused(reader.get("/oauth2PermissionGrants"))
    # /me needs a signed-in user.
    refused = sandbox_graph.get("/me")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "/me request is only valid with delegated authentication flow."
    )
    assert sandbox_graph.get("/me/memberOf").status_code == 400


def test_grant_reads_need_their_own_permissions(sandbox_graph: httpx.Client) -> None:
    # The runbook's default grants do not include Directory.Read.All: a client must cope.
    _refused(sandbox_graph.get("/oauth2PermissionGrants"))


# -- directory roles and app-only limits ----------------------------------------------------------


def test_delegated_synchronization_calls_need_an_admin_role(
    fast: Sandbox, sandbox_scim_app: Callable[..., dict[str, str]]
) -> None:
    with _client(fast, fast.app_token()) as app:
        ids = sandbox_scim_app(fast, app)
    jobs = f"/servicePrincipals/{ids['sp']}/synchronization/jobs"
    token = _user_token(fast, "Synchronization.ReadWrite.All", "Application.Read.All")
    with _client(fast, token) as admin:
        assert admin.get(jobs).status_code == 200  # Application Administrator by default
        fast.state.grants.admin_roles = ("User Administrator",)
        _sync_refused(admin.get(jobs))
        _sync_refused(admin.post(f"{jobs}/{ids['job']}/pause"))
        assert admin.get(f"/servicePrincipals/{ids['sp']}").status_code == 200  # no role needed
        fast.state.grants.admin_roles = ("Cloud Application Administrator",)
        assert admin.get(jobs).status_code == 200
        fast.state.grants.admin_roles = ("Global Administrator",)
        assert admin.post(f"{jobs}/{ids['job']}/pause").status_code == 204
    with _client(fast, _user_token(fast, "Application.Read.All")) as no_scope:
        _sync_refused(no_scope.get(jobs))


def test_app_only_purge_of_a_deleted_user_is_refused(fast: Sandbox) -> None:
    lee = fast.user("lee.gu@sandbox.example")
    with _client(fast, fast.app_token()) as app:
        assert app.delete(f"/users/{lee['id']}").status_code == 204
        _refused(app.delete(f"/directory/deletedItems/{lee['id']}"))
        assert app.get(f"/directory/deletedItems/{lee['id']}").status_code == 200
        # No such deleted object: nothing to guard, a plain 404.
        assert (
            app.delete(f"/directory/deletedItems/{'1' * 8}-1111-4111-8111-{'1' * 12}").status_code
            == 404
        )
    fast.state.grants.admin_roles = ("Application Administrator",)
    with _client(fast, _user_token(fast, "User.ReadWrite.All")) as admin:
        _refused(admin.delete(f"/directory/deletedItems/{lee['id']}"))  # not a User Administrator
        fast.state.grants.admin_roles = ("User Administrator",)
        assert admin.delete(f"/directory/deletedItems/{lee['id']}").status_code == 204
    with pytest.raises(KeyError):
        fast.user("lee.gu@sandbox.example")


def test_enabling_and_disabling_needs_only_the_narrow_pair(fast: Sandbox) -> None:
    lee = fast.user("lee.gu@sandbox.example")
    token = _user_token(fast, "User.EnableDisableAccount.All", "User.Read.All")
    with _client(fast, token) as admin:
        assert admin.patch(f"/users/{lee['id']}", json={"accountEnabled": False}).status_code == 204
        _refused(admin.patch(f"/users/{lee['id']}", json={"displayName": "Lee"}))
    assert fast.user("lee.gu@sandbox.example")["accountEnabled"] is False


# -- bodies the pages rule out --------------------------------------------------------------------


def test_start_and_pause_take_no_body(
    fast: Sandbox, sandbox_scim_app: Callable[..., dict[str, str]]
) -> None:
    with _client(fast, fast.app_token()) as app:
        ids = sandbox_scim_app(fast, app)
        job = f"/servicePrincipals/{ids['sp']}/synchronization/jobs/{ids['job']}"
        for action in ("start", "pause"):
            for body in ({}, {"criteria": None}):
                refused = app.post(f"{job}/{action}", json=body)
                assert refused.status_code == 400, refused.text
                assert refused.json()["error"]["code"] == "BadRequest"
            assert app.post(f"{job}/{action}").status_code == 204


def test_job_validate_credentials_refuses_undocumented_properties(
    fast: Sandbox, sandbox_scim_app: Callable[..., dict[str, str]]
) -> None:
    credentials = [
        {"key": "BaseAddress", "value": fast.scim_url},
        {"key": "SecretToken", "value": fast.scim_token},
    ]
    with _client(fast, fast.app_token()) as app:
        ids = sandbox_scim_app(fast, app)
        jobs = f"/servicePrincipals/{ids['sp']}/synchronization/jobs"
        body = {"useSavedCredentials": False, "credentials": credentials}
        assert app.post(f"{jobs}/{ids['job']}/validateCredentials", json=body).status_code == 204
        extra = app.post(
            f"{jobs}/{ids['job']}/validateCredentials", json={**body, "templateId": "scim"}
        )
        assert extra.status_code == 400 and "'templateId'" in extra.json()["error"]["message"]
        # The undocumented collection-level action still takes its own body.
        collection = app.post(f"{jobs}/validateCredentials", json={**body, "templateId": "scim"})
        assert collection.status_code == 204, collection.text


# -- $batch ---------------------------------------------------------------------------------------


def test_batch_sub_requests_are_checked_one_by_one(
    sandbox_factory: Callable[..., Sandbox], sandbox_graph_for: Callable[[Sandbox], httpx.Client]
) -> None:
    graph = sandbox_graph_for(sandbox_factory(withheld_permissions=("AuditLog.Read.All",)))
    batch = graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/users?$top=1"},
                {"id": "2", "method": "GET", "url": "/auditLogs/provisioning"},
                {"id": "3", "method": "GET", "url": "/me"},
            ]
        },
    )
    assert batch.status_code == 200
    answers = {r["id"]: r for r in batch.json()["responses"]}
    assert answers["1"]["status"] == 200
    assert answers["2"]["status"] == 403
    assert answers["2"]["body"]["error"]["code"] == "Authorization_RequestDenied"
    assert answers["3"]["status"] == 400


# -- runbook sim --without-permission -------------------------------------------------------------


def test_cli_without_permission(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args(
        ["--without-permission", "user.read.all", "--without-permission", "AuditLog.Read.All"]
    )
    assert args.without_permission == ["User.Read.All", "AuditLog.Read.All"]
    assert parser.parse_args([]).without_permission == []
    with pytest.raises(SystemExit):
        parser.parse_args(["--without-permission", "Mail.Send"])
    error = capsys.readouterr().err
    assert "unknown Microsoft Graph permission 'Mail.Send'" in error
    assert "Synchronization.ReadWrite.All" in error
    config = config_from_environment(1, environ={}, withheld_permissions=("User.Read.All",))
    assert config.withheld_permissions == ("User.Read.All",)
    with pytest.raises(ValueError, match="the sandbox knows"):
        config_from_environment(1, environ={}, withheld_permissions=("Mail.Send",))
