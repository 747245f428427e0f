"""The provisioning engine end to end: the vendor procedure over raw Graph, then the SCIM store.

These tests play the Entra admin with plain HTTPS calls (no runbook_lib steps, no
runbook_lib Graph client) and check what the Iru stand-in ends up holding.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runbook_lib.sim import ALL_COMPANY, IRU_MAC_USERS, IRU_PILOT, Sandbox

TEMPLATE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
USER_ROLE = "18d14569-c3bd-439b-9a66-3a2aee01d14f"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}

App = Callable[..., dict[str, str]]
Assign = Callable[[httpx.Client, str, str], dict[str, Any]]


def _scim_users(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {u["userName"]: u for u in sb.scim_users()}


def _scim_groups(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {g["displayName"]: g for g in sb.scim_groups()}


def _members(group: dict[str, Any]) -> set[str]:
    return {m["value"] for m in group.get("members") or []}


def _iru_writes(sb: Sandbox) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sb.requests("iru") if r.method in WRITES]


def _wait_active(
    graph: httpx.Client, sp_id: str, job_id: str, timeout: float = 5
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = graph.get(f"/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}").json()
        if status["status"]["code"] not in ("NotRun",):
            return dict(status["status"])
        time.sleep(0.02)
    raise AssertionError("the first cycle never finished")


def test_the_vendor_procedure_over_raw_graph(sandbox: Sandbox, sandbox_graph: httpx.Client) -> None:
    graph = sandbox_graph
    # 1-2. Create the non-gallery app and wait for it to replicate.
    created = graph.post(
        f"/applicationTemplates/{TEMPLATE}/instantiate", json={"displayName": "Iru"}
    )
    assert created.status_code == 201
    sp_id = created.json()["servicePrincipal"]["id"]
    for _ in range(10):
        if graph.get(f"/servicePrincipals/{sp_id}").status_code == 200:
            break
    sync = f"/servicePrincipals/{sp_id}/synchronization"
    # 3-4. The scim template and its job.
    [template] = graph.get(f"{sync}/templates").json()["value"]
    job_id = graph.post(f"{sync}/jobs", json={"templateId": template["id"]}).json()["id"]
    # 5-6. Test connection, then save the credentials and the scope.
    credentials = [
        {"key": "BaseAddress", "value": sandbox.scim_url},
        {"key": "SecretToken", "value": sandbox.scim_token},
    ]
    checked = graph.post(
        f"{sync}/jobs/{job_id}/validateCredentials",
        json={"useSavedCredentials": False, "credentials": credentials},
    )
    assert checked.status_code == 204
    secrets = credentials + [
        {"key": "SyncAll", "value": "false"},
        {
            "key": "SyncNotificationSettings",
            "value": '{"Enabled":false,"DeleteThresholdEnabled":false}',
        },
    ]
    assert graph.put(f"{sync}/secrets", json={"value": secrets}).status_code == 204
    # 7. externalId <- objectId (what Device Compliance wants), by a full schema PUT.
    schema = graph.get(f"{sync}/jobs/{job_id}/schema").json()
    users_mapping = schema["synchronizationRules"][0]["objectMappings"][0]
    for row in users_mapping["attributeMappings"]:
        if row["targetAttributeName"] == "externalId":
            row["source"] = {
                "expression": "[objectId]",
                "name": "objectId",
                "parameters": [],
                "type": "Attribute",
            }
    assert graph.put(f"{sync}/jobs/{job_id}/schema", json=schema).status_code == 204
    # 8. Assign one user directly and one group.
    lee = sandbox.user("lee.gu@sandbox.example")
    macs = sandbox.group(IRU_MAC_USERS)
    assignment_ids = {}
    for principal in (lee["id"], macs["id"]):
        body = {"principalId": principal, "resourceId": sp_id, "appRoleId": USER_ROLE}
        response = graph.post(f"/servicePrincipals/{sp_id}/appRoleAssignedTo", json=body)
        assert response.status_code == 201, response.text
        assignment_ids[principal] = response.json()["id"]
    # 10. Start, and poll the job until the first cycle has run.
    assert graph.post(f"{sync}/jobs/{job_id}/start").status_code == 204
    status = _wait_active(graph, sp_id, job_id)
    assert status["code"] == "Active" and status["lastExecution"]["state"] == "Succeeded"
    counts = {
        item["key"].split(" ")[0]: item["value"] for item in status["synchronizedEntryCountByType"]
    }
    assert counts == {"User": 4, "Group": 1}

    # Assigned users (direct, and direct members of the group) are there, from the mappings.
    users = _scim_users(sandbox)
    assert sorted(users) == [
        "adele.vance@sandbox.example",
        "alex.wilber@sandbox.example",
        "lee.gu@sandbox.example",
        "megan.bowen@sandbox.example",
    ]
    for upn, user in users.items():
        source = sandbox.user(upn)
        assert user["active"] is True
        assert user["externalId"] == source["id"]
        assert user["name"]["formatted"] == source["displayName"]
        assert user["emails"][0] == {"primary": True, "type": "work", "value": upn}
    # The group holds exactly its direct user members; the nested group is not provisioned.
    groups = _scim_groups(sandbox)
    assert sorted(groups) == [IRU_MAC_USERS]
    direct = {
        users[u]["id"]
        for u in (
            "adele.vance@sandbox.example",
            "alex.wilber@sandbox.example",
            "megan.bowen@sandbox.example",
        )
    }
    assert _members(groups[IRU_MAC_USERS]) == direct
    assert groups[IRU_MAC_USERS]["externalId"] == macs["id"]

    # The provisioning logs tell the same story.
    logs = graph.get("/auditLogs/provisioning", params={"$filter": f"jobId eq '{job_id}'"}).json()
    actions = sorted(
        (e["provisioningAction"], e["sourceIdentity"]["displayName"]) for e in logs["value"]
    )
    assert ("create", "lee.gu@sandbox.example") in actions and ("create", IRU_MAC_USERS) in actions
    assert all(e["provisioningStatusInfo"]["status"] == "success" for e in logs["value"])

    # Nothing changed: the next cycle sends nothing at all.
    sandbox.clear_requests()
    [report] = sandbox.fast_forward(40 * 60)
    assert report.exported == 0 and report.requests == 0
    assert sandbox.requests("iru") == []

    # Unassigning a user disables it in Iru.
    unassigned = graph.delete(
        f"/servicePrincipals/{sp_id}/appRoleAssignedTo/{assignment_ids[lee['id']]}"
    )
    assert unassigned.status_code == 204
    sandbox.fast_forward(40 * 60)
    assert _scim_users(sandbox)["lee.gu@sandbox.example"]["active"] is False
    assert _iru_writes(sandbox) == [
        ("PATCH", f"/api/v1/scim/Users/{users['lee.gu@sandbox.example']['id']}")
    ]

    # A hard delete deletes it (and takes it out of the group).
    sandbox.clear_requests()
    sandbox.hard_delete_user("adele.vance@sandbox.example")
    sandbox.fast_forward(40 * 60)
    adele_scim = users["adele.vance@sandbox.example"]["id"]
    assert "adele.vance@sandbox.example" not in _scim_users(sandbox)
    assert ("DELETE", f"/api/v1/scim/Users/{adele_scim}") in _iru_writes(sandbox)
    assert adele_scim not in _members(_scim_groups(sandbox)[IRU_MAC_USERS])

    # A bad SecretToken quarantines the job.
    bad = [
        {"key": "BaseAddress", "value": sandbox.scim_url},
        {"key": "SecretToken", "value": "not-the-token-123"},
    ]
    assert graph.put(f"{sync}/secrets", json={"value": bad}).status_code == 204
    sandbox.update_user("alex.wilber@sandbox.example", jobTitle="Marketing Lead")
    sandbox.fast_forward(40 * 60)
    job = graph.get(f"{sync}/jobs/{job_id}").json()
    assert job["status"]["code"] == "Quarantine"
    quarantine = job["status"]["quarantine"]
    assert quarantine["reason"] == "EncounteredQuarantineException"
    assert (
        quarantine["error"]["code"]
        == "SystemForCrossDomainIdentityManagementCredentialValidationFailure"
    )
    assert job["status"]["lastExecution"]["state"] == "Failed"
    assert job["status"]["countSuccessiveCompleteFailures"] == 1
    # Fixing the token and restarting clears the quarantine and catches up.
    assert graph.put(f"{sync}/secrets", json={"value": credentials}).status_code == 204
    assert (
        graph.post(
            f"{sync}/jobs/{job_id}/restart", json={"criteria": {"resetScope": "QuarantineState"}}
        ).status_code
        == 204
    )
    assert sandbox.wait_idle(10)
    assert sandbox.job_status(sp_id)["code"] == "Active"
    assert _scim_users(sandbox)["alex.wilber@sandbox.example"]["title"] == "Marketing Lead"


@pytest.fixture
def started(
    sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App, sandbox_assign: Assign
) -> Callable[..., dict[str, str]]:
    """Set up the app, assign principals (UPNs or group names), start and wait."""

    def start(*principals: str, sync_all: str = "false") -> dict[str, str]:
        app = sandbox_scim_app(sandbox, sandbox_graph, sync_all=sync_all)
        for principal in principals:
            if "@" in principal:
                object_id = sandbox.user(principal)["id"]
            else:
                object_id = principal if "-" in principal else sandbox.group(principal)["id"]
            sandbox_assign(sandbox_graph, app["sp"], object_id)
        sync = f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}"
        assert sandbox_graph.post(f"{sync}/start").status_code == 204
        assert sandbox.wait_idle(10)
        return app

    return start


def test_nested_group_members_are_not_provisioned(
    sandbox: Sandbox, started: Callable[..., dict[str, str]]
) -> None:
    started(IRU_MAC_USERS)
    users = _scim_users(sandbox)
    assert "grady.archie@sandbox.example" not in users
    assert "lynne.robbins@sandbox.example" not in users
    assert list(_scim_groups(sandbox)) == [IRU_MAC_USERS]


def test_a_group_that_is_not_security_enabled_is_skipped(
    sandbox: Sandbox, started: Callable[..., dict[str, str]]
) -> None:
    started(ALL_COMPANY, "megan.bowen@sandbox.example")
    assert list(_scim_users(sandbox)) == ["megan.bowen@sandbox.example"]
    assert _scim_groups(sandbox) == {}


def test_a_disabled_user_is_not_created(
    sandbox: Sandbox, started: Callable[..., dict[str, str]]
) -> None:
    app = started("joni.sherman@sandbox.example", "lee.gu@sandbox.example")
    assert list(_scim_users(sandbox)) == ["lee.gu@sandbox.example"]
    [skipped] = [
        e
        for e in sandbox.provisioning_logs(app["sp"])
        if e["provisioningStatusInfo"]["status"] == "skipped"
    ]
    assert skipped["sourceIdentity"]["displayName"] == "joni.sherman@sandbox.example"


def test_disable_enable_soft_delete(
    sandbox: Sandbox, started: Callable[..., dict[str, str]]
) -> None:
    started(IRU_PILOT)
    sandbox.disable_user("lee.gu@sandbox.example")
    sandbox.fast_forward(2400)
    assert _scim_users(sandbox)["lee.gu@sandbox.example"]["active"] is False
    sandbox.enable_user("lee.gu@sandbox.example")
    sandbox.fast_forward(2400)
    assert _scim_users(sandbox)["lee.gu@sandbox.example"]["active"] is True
    sandbox.clear_requests()
    sandbox.soft_delete_user("johanna.lorenz@sandbox.example")
    sandbox.fast_forward(2400)
    johanna = _scim_users(sandbox)["johanna.lorenz@sandbox.example"]
    assert johanna["active"] is False
    # Soft-deleted users leave their groups in Entra, so the membership goes too.
    assert johanna["id"] not in _members(_scim_groups(sandbox)[IRU_PILOT])
    assert not any(method == "DELETE" for method, _ in _iru_writes(sandbox))
    sandbox.hard_delete_user("johanna.lorenz@sandbox.example")
    sandbox.fast_forward(2400)
    assert "johanna.lorenz@sandbox.example" not in _scim_users(sandbox)


def test_an_unassigned_user_deleted_later_is_not_deleted_in_iru(
    sandbox: Sandbox, sandbox_graph: httpx.Client, started: Callable[..., dict[str, str]]
) -> None:
    app = started("megan.bowen@sandbox.example")
    [assignment] = sandbox.assignments(app["sp"])
    sandbox_graph.delete(f"/servicePrincipals/{app['sp']}/appRoleAssignedTo/{assignment['id']}")
    sandbox.fast_forward(2400)
    assert _scim_users(sandbox)["megan.bowen@sandbox.example"]["active"] is False
    sandbox.clear_requests()
    sandbox.hard_delete_user("megan.bowen@sandbox.example")
    sandbox.fast_forward(2400)
    assert sandbox.requests("iru") == []
    assert "megan.bowen@sandbox.example" in _scim_users(sandbox)


def test_membership_changes_become_member_patches(
    sandbox: Sandbox, started: Callable[..., dict[str, str]]
) -> None:
    started(IRU_PILOT)
    sandbox.add_group_member(IRU_PILOT, "diego.siciliani@sandbox.example")
    sandbox.remove_group_member(IRU_PILOT, "lee.gu@sandbox.example")
    sandbox.clear_requests()
    sandbox.fast_forward(2400)
    users = _scim_users(sandbox)
    assert users["diego.siciliani@sandbox.example"]["active"] is True
    assert users["lee.gu@sandbox.example"]["active"] is False
    pilot = _scim_groups(sandbox)[IRU_PILOT]
    assert _members(pilot) == {
        users["diego.siciliani@sandbox.example"]["id"],
        users["johanna.lorenz@sandbox.example"]["id"],
    }
    writes = _iru_writes(sandbox)
    assert writes[0] == ("POST", "/api/v1/scim/Users")
    assert sum(1 for method, path in writes if method == "PATCH" and "/Groups/" in path) == 2


def test_sync_all_scope_and_duplicate_group_names(
    sandbox: Sandbox, started: Callable[..., dict[str, str]]
) -> None:
    app = started(sync_all="true")
    users = _scim_users(sandbox)
    assert len(users) == 13 and "joni.sherman@sandbox.example" not in users
    assert sorted(_scim_groups(sandbox)) == ["Iru Mac Contractors", IRU_MAC_USERS, IRU_PILOT]
    failures = [
        e
        for e in sandbox.provisioning_logs(app["sp"])
        if e["provisioningStatusInfo"]["status"] == "failure"
    ]
    assert {e["sourceIdentity"]["displayName"] for e in failures} == {"Sales"}
    assert {e["provisioningStatusInfo"]["errorInformation"]["errorCode"] for e in failures} == {
        "DuplicateSourceEntries"
    }
    assert sandbox.job_status(app["sp"])["lastExecution"]["state"] == "EntryLevelErrors"
    # The next cycle leaves the disabled (skipped) user and the clashing groups alone.
    sandbox.clear_requests()
    [report] = sandbox.fast_forward(2400)
    assert report.requests == 0 and sandbox.requests("iru") == []


def test_disabling_the_group_mapping_stops_group_provisioning(
    sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App, sandbox_assign: Assign
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    sync = f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}"
    schema = sandbox_graph.get(f"{sync}/schema").json()
    schema["synchronizationRules"][0]["objectMappings"][1]["enabled"] = False
    assert sandbox_graph.put(f"{sync}/schema", json=schema).status_code == 204
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group(IRU_PILOT)["id"])
    sandbox_graph.post(f"{sync}/start")
    assert sandbox.wait_idle(10)
    assert sorted(_scim_users(sandbox)) == [
        "johanna.lorenz@sandbox.example",
        "lee.gu@sandbox.example",
    ]
    assert _scim_groups(sandbox) == {}
    assert not any("/Groups" in r.path for r in sandbox.requests("iru"))


def test_a_schema_change_re_evaluates_everyone(
    sandbox: Sandbox, sandbox_graph: httpx.Client, started: Callable[..., dict[str, str]]
) -> None:
    app = started(IRU_PILOT)
    assert _scim_users(sandbox)["lee.gu@sandbox.example"]["externalId"] == "lee.gu"
    sync = f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}"
    schema = sandbox_graph.get(f"{sync}/schema").json()
    edited = copy.deepcopy(schema)
    for row in edited["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"]:
        if row["targetAttributeName"] == "externalId":
            row["source"] = {
                "expression": "[objectId]",
                "name": "objectId",
                "parameters": [],
                "type": "Attribute",
            }
    sandbox_graph.put(f"{sync}/schema", json=edited)
    sandbox.clear_requests()
    [report] = sandbox.fast_forward(2400)
    assert report.full is True
    users = _scim_users(sandbox)
    for upn in ("lee.gu@sandbox.example", "johanna.lorenz@sandbox.example"):
        assert users[upn]["externalId"] == sandbox.user(upn)["id"]
    reads = [r for r in sandbox.requests("iru") if r.method == "GET"]
    assert len(reads) == 3  # each linked user and the group is re-read
    assert [m for m, _ in _iru_writes(sandbox)] == ["PATCH", "PATCH"]


def test_restart_full_rematches_without_duplicates(
    sandbox: Sandbox, sandbox_graph: httpx.Client, started: Callable[..., dict[str, str]]
) -> None:
    app = started(IRU_MAC_USERS)
    before = {u["id"] for u in sandbox.scim_users()}
    sync = f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}"
    sandbox.clear_requests()
    assert (
        sandbox_graph.post(f"{sync}/restart", json={"criteria": {"resetScope": "Full"}}).status_code
        == 204
    )
    assert sandbox.wait_idle(10)
    assert {u["id"] for u in sandbox.scim_users()} == before
    assert not any(method == "POST" for method, _ in _iru_writes(sandbox))
    lookups = [r.query for r in sandbox.requests("iru") if r.method == "GET"]
    assert sum("filter=userName" in q for q in lookups) == 3
    assert sum("filter=displayName" in q for q in lookups) == 1
    assert any("members%5Bvalue" in q or "members[value" in q for q in lookups)


def test_cycles_run_on_a_real_interval_when_asked(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
    sandbox_scim_app: App,
    sandbox_assign: Assign,
) -> None:
    sb = sandbox_factory(cycle_seconds=0.3, consistency_reads=0)
    graph = sandbox_graph_for(sb)
    app = sandbox_scim_app(sb, graph)
    sandbox_assign(graph, app["sp"], sb.group(IRU_PILOT)["id"])
    graph.post(f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/start")
    assert sb.wait_idle(10)
    assert (
        graph.get(f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}").json()[
            "schedule"
        ]["interval"]
        == "PT0.3S"
    )
    sb.update_user("lee.gu@sandbox.example", jobTitle="VP")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _scim_users(sb)["lee.gu@sandbox.example"].get("title") == "VP":
            break
        time.sleep(0.05)
    assert _scim_users(sb)["lee.gu@sandbox.example"]["title"] == "VP"


def test_same_seed_same_provisioning(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
    sandbox_scim_app: App,
    sandbox_assign: Assign,
) -> None:
    def run(seed: int) -> tuple[list[str], list[tuple[str, str, str]]]:
        sb = sandbox_factory(seed=seed, consistency_reads=0, assignment_reads=0)
        graph = sandbox_graph_for(sb)
        app = sandbox_scim_app(sb, graph)
        for name in (IRU_MAC_USERS, IRU_PILOT):
            sandbox_assign(graph, app["sp"], sb.group(name)["id"])
        graph.post(f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/start")
        assert sb.wait_idle(10)
        ids = sorted(u["id"] for u in sb.scim_users()) + sorted(g["id"] for g in sb.scim_groups())
        wire = [(r.method, r.path, r.query) for r in sb.requests("iru")]
        return ids, wire

    first, second, other = run(11), run(11), run(12)
    assert first == second
    assert first[0] != other[0]


def test_the_default_sandbox_starts_in_under_two_seconds() -> None:
    started = time.perf_counter()
    with Sandbox() as sb:
        elapsed = time.perf_counter() - started
        assert sb.running and len(sb.users()) == 14
    assert elapsed < 2.0


def test_stop_ends_a_long_cycle_promptly(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
    sandbox_scim_app: App,
) -> None:
    sb = sandbox_factory(users=3000, consistency_reads=0)
    graph = sandbox_graph_for(sb)
    app = sandbox_scim_app(sb, graph, sync_all="true")
    graph.post(f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/start")
    # Wait until the cycle is under way (a loaded machine may take seconds to get there).
    deadline = time.monotonic() + 30
    while not sb.scim_users() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sb.worker is not None and sb.worker.busy()
    stopping = time.perf_counter()
    sb.stop()
    assert time.perf_counter() - stopping < 5
    assert 0 < len(sb.scim_users()) < 3000


def test_skip_out_of_scope_deletions(
    sandbox: Sandbox, sandbox_graph: httpx.Client, started: Callable[..., dict[str, str]]
) -> None:
    app = started("megan.bowen@sandbox.example")
    secrets = [
        {"key": "BaseAddress", "value": sandbox.scim_url},
        {"key": "SecretToken", "value": sandbox.scim_token},
        {"key": "SyncAll", "value": "false"},
        {"key": "SkipOutOfScopeDeletions", "value": "True"},
    ]
    sandbox_graph.put(
        f"/servicePrincipals/{app['sp']}/synchronization/secrets", json={"value": secrets}
    )
    [assignment] = sandbox.assignments(app["sp"])
    sandbox_graph.delete(f"/servicePrincipals/{app['sp']}/appRoleAssignedTo/{assignment['id']}")
    sandbox.clear_requests()
    sandbox.fast_forward(2400)
    assert _scim_users(sandbox)["megan.bowen@sandbox.example"]["active"] is True
    assert _iru_writes(sandbox) == []


def test_a_scoping_filter_narrows_the_users(
    sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App, sandbox_assign: Assign
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    sync = f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}"
    schema = sandbox_graph.get(f"{sync}/schema").json()
    schema["synchronizationRules"][0]["objectMappings"][0]["scope"] = {
        "groups": [
            {
                "clauses": [
                    {
                        "operatorName": "EQUALS",
                        "sourceOperandName": "department",
                        "targetOperand": {"values": ["Marketing"]},
                    }
                ]
            }
        ],
        "inputFilterGroups": [],
        "categoryFilterGroups": [],
    }
    assert sandbox_graph.put(f"{sync}/schema", json=schema).status_code == 204
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group(IRU_MAC_USERS)["id"])
    sandbox_graph.post(f"{sync}/start")
    assert sandbox.wait_idle(10)
    assert sorted(_scim_users(sandbox)) == [
        "alex.wilber@sandbox.example",
        "megan.bowen@sandbox.example",
    ]
    assert len(_members(_scim_groups(sandbox)[IRU_MAC_USERS])) == 2


def test_a_watermark_restart_corrects_drift_in_iru(
    sandbox: Sandbox,
    sandbox_graph: httpx.Client,
    sandbox_scim: httpx.Client,
    started: Callable[..., dict[str, str]],
) -> None:
    app = started(IRU_PILOT)
    lee = _scim_users(sandbox)["lee.gu@sandbox.example"]
    drift = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "title", "value": "Changed in Iru"}],
    }
    sandbox_scim.patch(f"/Users/{lee['id']}", json=drift)
    # An incremental cycle does not see edits made on the target side...
    sandbox.fast_forward(2400)
    assert _scim_users(sandbox)["lee.gu@sandbox.example"]["title"] == "Changed in Iru"
    # ...a restart that clears the watermark re-reads every linked object and fixes them.
    sync = f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}"
    sandbox_graph.post(f"{sync}/restart", json={"criteria": {"resetScope": "Watermark"}})
    assert sandbox.wait_idle(10)
    assert _scim_users(sandbox)["lee.gu@sandbox.example"]["title"] == "Director"


def test_without_a_secret_token_entra_sends_its_own_token(
    sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App, sandbox_assign: Assign
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph, token="")
    assert "SecretToken" not in sandbox.secrets(app["sp"])
    sandbox_assign(sandbox_graph, app["sp"], sandbox.user("lee.gu@sandbox.example")["id"])
    sandbox_graph.post(f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/start")
    assert sandbox.wait_idle(10)
    status = sandbox.job_status(app["sp"])
    assert status["code"] == "Quarantine"
    assert status["quarantine"]["error"]["code"].endswith("CredentialValidationFailure")
