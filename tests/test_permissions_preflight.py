"""Page 01's permissions pre-flight, the permission table and the 403 hint, against the sandbox.

The sandbox enforces each Graph route's documented permissions and can withhold any of them
(``withheld_permissions``), so these tests rehearse a tenant where an admin forgot one.
"""

from __future__ import annotations

import pytest

from runbook_lib import GraphAuthError, Runbook, Status, load_settings
from runbook_lib._permissions import (
    PERMISSIONS,
    delegated_scopes,
    grant_instructions,
    missing_permissions,
    permission_for_request,
    permissions_table_markdown,
)
from runbook_lib.sim import FaultRule
from runbook_lib.steps import (
    AssignUsersAndGroups,
    ConfigureProvisioning,
    Connect,
    CreateEnterpriseApp,
    EnableProvisioning,
    MappingsAndScope,
    VerifyProvisioning,
)

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _runbook(sb, monkeypatch) -> Runbook:
    for key, value in {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    return Runbook(load_settings())


def _writes(sb) -> list[str]:
    return [f"{r.method} {r.path}" for r in sb.requests("graph") if r.method in WRITES]


# -- the table ------------------------------------------------------------------------------


def test_the_table_covers_every_page_that_reads_or_writes_graph() -> None:
    pages = {page for p in PERMISSIONS for page in p.pages}
    assert {"02", "03", "04", "05", "06", "07", "08", "09"} <= pages
    required = {p.name for p in PERMISSIONS if p.required}
    assert {
        "Application.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
        "Synchronization.ReadWrite.All",
        "User.Read.All",
        "GroupMember.Read.All",
    } == required
    assert {p.name for p in PERMISSIONS if not p.required} == {
        "AuditLog.Read.All",
        "User.ReadWrite.All",
    }


def test_higher_privileged_permissions_satisfy_a_row() -> None:
    granted = {p.name for p in PERMISSIONS if p.required} - {"GroupMember.Read.All"}
    assert [p.name for p in missing_permissions(granted, include_optional=False)] == [
        "GroupMember.Read.All"
    ]
    assert missing_permissions(granted | {"Directory.Read.All"}, include_optional=False) == []


def test_device_code_asks_for_the_scopes_by_name_without_the_demo_scope() -> None:
    scopes = delegated_scopes("https://graph.microsoft.us")
    assert "https://graph.microsoft.us/Synchronization.ReadWrite.All" in scopes
    assert not any(s.endswith("/.default") for s in scopes)
    assert not any(s.endswith("/User.ReadWrite.All") for s in scopes)


def test_requests_map_to_the_permission_they_need() -> None:
    cases = {
        ("GET", "/users/abc"): "User.Read.All",
        ("GET", "users?$filter=userPrincipalName eq 'x'"): "User.Read.All",
        ("GET", "groups/1/members"): "GroupMember.Read.All",
        ("POST", "servicePrincipals/1/appRoleAssignedTo"): "AppRoleAssignment.ReadWrite.All",
        ("GET", "servicePrincipals/1/synchronization/jobs"): "Synchronization.ReadWrite.All",
        ("POST", "applicationTemplates/t/instantiate"): "Application.ReadWrite.All",
        ("GET", "auditLogs/provisioning"): "AuditLog.Read.All",
    }
    for (method, path), name in cases.items():
        found = permission_for_request(method, path)
        assert found is not None and found.name == name, (method, path)
    assert permission_for_request("GET", "subscribedSkus") is None


def test_grant_instructions_give_the_portal_path_and_a_one_liner() -> None:
    row = next(p for p in PERMISSIONS if p.name == "User.Read.All")
    app = grant_instructions(row, "application", "11111111-2222-3333-4444-555555555555")
    assert "API permissions" in app and row.app_role_id in app and "admin-consent" in app
    delegated = grant_instructions(row, "delegated")
    assert "Connect-MgGraph -Scopes User.Read.All" in delegated


def test_docs_and_page_00_quote_the_table() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    table = permissions_table_markdown()
    assert table in (root / "docs" / "settings.md").read_text(encoding="utf-8")
    assert table in (root / "notebooks" / "00-overview.ipynb").read_text(encoding="utf-8").replace(
        '\\n",\n    "', "\n"
    ).replace("\\n", "\n")


# -- the pre-flight against the sandbox ---------------------------------------------------------


def test_all_permissions_granted_passes_with_the_list(sandbox, monkeypatch) -> None:
    with _runbook(sandbox, monkeypatch) as rb:
        result = Connect(rb).run()
    assert result.ok, result
    perms = next(c for c in result.checks if c.title == "Microsoft Graph permissions")
    assert perms.status is Status.PASS
    assert "Synchronization.ReadWrite.All" in perms.detail and "from Graph" in perms.detail


@pytest.mark.parametrize("withheld", ["User.Read.All", "Synchronization.ReadWrite.All"])
def test_a_missing_required_permission_stops_page_01_by_name(
    sandbox_factory, monkeypatch, withheld
) -> None:
    sb = sandbox_factory(withheld_permissions=(withheld,))
    with _runbook(sb, monkeypatch) as rb:
        result = Connect(rb).run()
    assert not result.ok
    failed = [c for c in result.checks if c.status is Status.FAIL]
    assert [c.title for c in failed] == [f"Permission {withheld}"]
    assert "az ad app permission add" in failed[0].remediation
    assert _writes(sb) == []


def test_a_missing_optional_permission_warns_and_the_run_goes_on(
    sandbox_factory, monkeypatch
) -> None:
    sb = sandbox_factory(withheld_permissions=("AuditLog.Read.All",))
    with _runbook(sb, monkeypatch) as rb:
        connect = Connect(rb).run()
        assert connect.ok, connect
        warned = [c.title for c in connect.checks if c.status is Status.WARN]
        assert warned == ["Permission AuditLog.Read.All"]
        results = [
            CreateEnterpriseApp(rb).run(),
            ConfigureProvisioning(rb).run(),
            MappingsAndScope(rb).run(),
            EnableProvisioning(rb).run(),
            AssignUsersAndGroups(rb, users=["adele.vance@sandbox.example"]).run(),
            VerifyProvisioning(rb, timeout_minutes=1).run(),
        ]
    assert all(r.ok for r in results), "\n".join(str(r) for r in results)
    logs = next(c for c in results[-1].checks if c.title == "Provisioning logs readable")
    assert logs.status is Status.WARN and "AuditLog.Read.All" in logs.remediation


def test_unreadable_grants_warn_and_go_on(sandbox, monkeypatch) -> None:
    sandbox.inject(
        FaultRule(server="graph", path="/v1.0/servicePrincipals/*/appRoleAssignments", status=403)
    )
    with _runbook(sandbox, monkeypatch) as rb:
        result = Connect(rb).run()
    assert result.ok, result
    perms = [c for c in result.checks if "permissions" in c.title.lower()]
    assert perms, result
    # Either the token's claims stood in (said so) or the check warned: never a silent pass.
    if perms[0].status is Status.PASS:
        assert "from the access token" in perms[0].detail
    else:
        assert perms[0].status is Status.WARN and "could not be read" in perms[0].detail


def test_a_403_later_names_the_permission(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(withheld_permissions=("GroupMember.Read.All",))
    with _runbook(sb, monkeypatch) as rb:
        CreateEnterpriseApp(rb).run()
        with pytest.raises(GraphAuthError) as caught:
            AssignUsersAndGroups(rb, groups=["Iru Pilot"]).plan()
    assert "GroupMember.Read.All" in caught.value.remediation
    assert caught.value.status == 403
