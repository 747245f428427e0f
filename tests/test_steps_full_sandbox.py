"""Pages 04-09 against the sandbox's provisioning engine: what arrives in Iru is checked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runbook_lib import Runbook, Status, load_settings
from runbook_lib.steps import (
    AssignUsersAndGroups,
    ConfigureProvisioning,
    Considerations,
    CreateEnterpriseApp,
    EnableProvisioning,
    MappingsAndScope,
    UpdateMappingsAndRestart,
    VerifyProvisioning,
)

USERS = ["adele.vance@sandbox.example", "megan.bowen@sandbox.example"]
GROUPS = ["Iru Mac Users", "Iru Pilot"]


def writes(sb) -> list[str]:
    """Graph writes that succeeded; the comparison's ``$batch`` carries only GETs."""
    return [
        f"{r.method} {r.path}"
        for r in sb.requests("graph")
        if r.method in {"POST", "PUT", "PATCH", "DELETE"}
        and r.status < 400
        and not r.path.endswith(("validateCredentials", "/$batch"))
    ]


def _runbook(sb, monkeypatch) -> Runbook:
    for key, value in {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    return Runbook(load_settings())


@pytest.fixture
def rb(sandbox, monkeypatch) -> Iterator[Runbook]:
    with _runbook(sandbox, monkeypatch) as runbook:
        yield runbook


def setup_through_assign(
    rb: Runbook, *, device_compliance: bool = True, groups=GROUPS, maps=("Iru Mac Users",)
):
    results = [
        CreateEnterpriseApp(rb).run(),
        ConfigureProvisioning(rb).run(),
        MappingsAndScope(rb, device_compliance=device_compliance).run(),
        EnableProvisioning(rb).run(),
        AssignUsersAndGroups(
            rb, users=USERS, groups=list(groups), assignment_map_groups=list(maps)
        ).run(),
    ]
    return results


def test_full_procedure_puts_assigned_users_and_groups_into_iru(rb: Runbook, sandbox) -> None:
    results = setup_through_assign(rb)
    assert all(r.ok for r in results), "\n".join(str(r) for r in results)
    assign = results[-1]
    assert any("nested" in n for n in assign.notes)  # Iru Mac Users contains a nested group
    verify = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert verify.ok, verify
    users = {u["userName"].lower(): u for u in sandbox.scim_users()}
    directory = {u["userPrincipalName"].lower(): u for u in sandbox.users()}
    for upn in USERS:
        assert users[upn]["externalId"] == directory[upn]["id"]
    groups = {g["displayName"]: g for g in sandbox.scim_groups()}
    assert set(groups) == set(GROUPS)
    # Nested group members are not provisioned: only direct members of assigned groups.
    contractors = [u for u in sandbox.users() if "contractor" in u.get("jobTitle", "").lower()]
    for user in contractors:
        if user["userPrincipalName"].lower() not in {m.lower() for m in USERS}:
            assert user["userPrincipalName"].lower() not in users

    sandbox.clear_requests()
    again = [
        MappingsAndScope(rb, device_compliance=True).run(),
        EnableProvisioning(rb).run(),
        AssignUsersAndGroups(rb, users=USERS, groups=GROUPS).run(),
        VerifyProvisioning(rb, timeout_minutes=1).run(),
    ]
    assert all(r.ok and not r.applied for r in again), "\n".join(str(r) for r in again)
    assert writes(sandbox) == []


def test_missing_assignment_map_group_is_named(rb: Runbook) -> None:
    results = setup_through_assign(rb, groups=["Iru Pilot"], maps=("Iru Mac Users",))
    failed = [c for c in results[-1].checks if c.status is Status.FAIL]
    assert failed and "Iru Mac Users" in failed[0].title


def test_free_tier_assigns_users_and_explains_the_groups(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(tier="free")
    with _runbook(sb, monkeypatch) as rb:
        results = setup_through_assign(rb)
        assign = results[-1]
        assert assign.ok, assign
        warned = [c for c in assign.checks if c.status is Status.WARN]
        assert warned and "Entra ID Free" in warned[0].remediation
        assert {a["principalType"] for a in sb.assignments(sb.service_principals()[0]["id"])} == {
            "User"
        }
        verify = VerifyProvisioning(rb, timeout_minutes=1).run()
        assert verify.ok, verify
        assert sb.scim_groups() == []
        assert {u["userName"].lower() for u in sb.scim_users()} == set(USERS)


def test_update_mappings_moves_a_default_setup_to_object_id(rb: Runbook, sandbox) -> None:
    results = setup_through_assign(rb, device_compliance=False)
    assert all(r.ok for r in results)
    assert VerifyProvisioning(rb, timeout_minutes=1).run().ok
    directory = {u["userPrincipalName"].lower(): u for u in sandbox.users()}
    before = {u["userName"].lower(): u["externalId"] for u in sandbox.scim_users()}
    assert (
        before["adele.vance@sandbox.example"]
        == directory["adele.vance@sandbox.example"]["mailNickname"]
    )

    update = UpdateMappingsAndRestart(rb, timeout_minutes=1).run()
    assert update.ok, update
    assert [c.action for c in update.applied] == ["map", "pause", "start"]
    after = {u["userName"].lower(): u["externalId"] for u in sandbox.scim_users()}
    assert after and all(after[name] == directory[name]["id"] for name in after)
    assert UpdateMappingsAndRestart(rb).run().applied == []


def test_dry_run_of_a_configured_tenant_writes_nothing(rb: Runbook, sandbox) -> None:
    setup_through_assign(rb)
    sandbox.clear_requests()
    for step in (MappingsAndScope(rb, device_compliance=False), EnableProvisioning(rb)):
        step.run(dry_run=True)
    plan = UpdateMappingsAndRestart(rb).run(dry_run=True)
    assert plan.applied == []
    assert writes(sandbox) == []


def test_demo_is_skipped_before_any_write_without_user_readwrite(
    sandbox_factory, monkeypatch
) -> None:
    sb = sandbox_factory(withheld_permissions=("User.ReadWrite.All",))
    with _runbook(sb, monkeypatch) as rb:
        setup_through_assign(rb)
        sb.clear_requests()
        demo = Considerations(
            rb, demo_user="lee.gu@sandbox.example", run_demo=True, timeout_minutes=1
        ).run()
    assert demo.ok and demo.applied == []
    assert [c.status for c in demo.checks] == [Status.PASS, Status.WARN]
    assert "User.ReadWrite.All" in demo.checks[1].detail
    assert writes(sb) == []


def test_disable_then_delete_demo(rb: Runbook, sandbox) -> None:
    setup_through_assign(rb)
    demo = Considerations(
        rb, demo_user="lee.gu@sandbox.example", run_demo=True, timeout_minutes=1
    ).run()
    assert demo.ok, demo
    assert [c.status for c in demo.checks] == [Status.PASS] * 3
    # App-only sign-in may not purge (Microsoft does not support it): the demo stops at the
    # soft delete, which Iru shows as inactive, and says why.
    assert [a.action for a in demo.applied] == ["provision", "disable", "delete"]
    assert any("purge" in n.lower() for n in demo.notes)
    iru = {u["userName"].lower(): u for u in sandbox.scim_users()}
    assert iru["lee.gu@sandbox.example"]["active"] is False
    purges = [r for r in sandbox.requests("graph") if "/directory/deletedItems/" in r.path]
    assert purges == []
    again = Considerations(rb, demo_user="lee.gu@sandbox.example", run_demo=True).run()
    assert again.applied == [] and again.ok


def test_a_user_administrator_signed_in_with_a_device_code_sees_the_purge(
    sandbox, monkeypatch
) -> None:
    from runbook_lib._auth import GRAPH_CLI_CLIENT_ID

    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RUNBOOK_CLIENT_SECRET")
    monkeypatch.delenv("RUNBOOK_CLIENT_ID")  # the default: Microsoft Graph Command Line Tools
    monkeypatch.setenv("RUNBOOK_AUTH", "device-code")
    # The admin consented to the demo's permission once, besides the runbook's own scopes.
    sandbox.state.grants.consent(GRAPH_CLI_CLIENT_ID, ("User.ReadWrite.All",))
    with Runbook(load_settings()) as rb:
        assert all(r.ok for r in setup_through_assign(rb))
        demo = Considerations(
            rb, demo_user="lee.gu@sandbox.example", run_demo=True, timeout_minutes=1
        ).run()
    assert demo.ok, demo
    assert [a.action for a in demo.applied] == ["provision", "disable", "delete", "purge"]
    assert [c.status for c in demo.checks] == [Status.PASS] * 4
    assert "lee.gu@sandbox.example" not in {u["userName"].lower() for u in sandbox.scim_users()}
