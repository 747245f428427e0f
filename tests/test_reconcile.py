"""The reconciler against the sandbox: every seeded difference once, and what a read costs."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_steps_full_sandbox import GROUPS, USERS, setup_through_assign

from runbook_lib import Runbook, load_settings
from runbook_lib._findings import Finding
from runbook_lib._reconcile import Reconciliation, reconcile
from runbook_lib._tenant import require_app, require_job
from runbook_lib.sim import FaultRule
from runbook_lib.steps import VerifyProvisioning
from runbook_lib.steps.mappings_and_scope import schema_path


@pytest.fixture
def rb(sandbox, monkeypatch) -> Iterator[Runbook]:
    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as runbook:
        yield runbook


def _read(rb: Runbook, concurrency: int = 8) -> Reconciliation:
    graph = rb.graph
    sp = require_app(graph, rb.app_name)
    job = require_job(graph, sp["id"])
    schema = graph.get(schema_path(sp["id"], job["id"]))
    return reconcile(graph, rb.scim, sp["id"], schema, concurrency=concurrency)


def _provisioned(rb: Runbook) -> None:
    results = setup_through_assign(rb)
    assert all(r.ok for r in results), "\n".join(str(r) for r in results)
    verify = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert verify.ok, verify


def _keys(findings: list[Finding]) -> list[tuple[str, str]]:
    return sorted((f.kind, f.object) for f in findings)


def _scim_id(sandbox, kind: str, name: str) -> str:
    if kind == "Users":
        found = [u for u in sandbox.scim_users() if u["userName"].lower() == name.lower()]
    else:
        found = [g for g in sandbox.scim_groups() if g["displayName"] == name]
    assert len(found) == 1, (kind, name)
    return str(found[0]["id"])


def _patch(scim, path: str, operations: list[dict[str, Any]]) -> None:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}
    response = scim.patch(path, json=body)
    assert response.status_code in (200, 204), response.text


def test_a_clean_tenant_has_no_findings(rb: Runbook) -> None:
    _provisioned(rb)
    result = _read(rb)
    assert result.findings == []
    assert len(result.expected.users) == 5 and len(result.expected.groups) == 2


def test_every_seeded_difference_is_reported_exactly_once(rb: Runbook, sandbox, sandbox_scim):
    _provisioned(rb)
    users = {u["userName"].lower() for u in sandbox.scim_users()}
    assert {"adele.vance@sandbox.example", "lee.gu@sandbox.example"} <= users
    # user_missing: deleted in Iru.
    gone = "alex.wilber@sandbox.example"
    assert sandbox_scim.delete(f"/Users/{_scim_id(sandbox, 'Users', gone)}").status_code == 204
    # user_external_id
    _patch(
        sandbox_scim,
        f"/Users/{_scim_id(sandbox, 'Users', 'adele.vance@sandbox.example')}",
        [{"op": "replace", "path": "externalId", "value": "wrong"}],
    )
    # user_active: an enabled user deactivated in Iru.
    _patch(
        sandbox_scim,
        f"/Users/{_scim_id(sandbox, 'Users', 'megan.bowen@sandbox.example')}",
        [{"op": "replace", "path": "active", "value": False}],
    )
    # user_active the other way: disabled in Entra, still active in Iru (no cycle yet).
    sandbox.disable_user("lee.gu@sandbox.example")
    # group_members: a user Entra does not put in Iru Pilot.
    pilot = _scim_id(sandbox, "Groups", "Iru Pilot")
    outsider = next(
        u
        for u in sandbox.scim_users()
        if u["id"]
        not in {
            m["value"]
            for g in sandbox.scim_groups()
            if g["displayName"] == "Iru Pilot"
            for m in g.get("members", [])
        }
        and u["userName"].lower() != gone
    )
    _patch(
        sandbox_scim,
        f"/Groups/{pilot}",
        [{"op": "add", "path": "members", "value": [{"value": outsider["id"]}]}],
    )
    # group_external_id
    _patch(
        sandbox_scim,
        f"/Groups/{pilot}",
        [{"op": "replace", "path": "externalId", "value": "stale"}],
    )
    # group_missing
    mac = _scim_id(sandbox, "Groups", "Iru Mac Users")
    assert sandbox_scim.delete(f"/Groups/{mac}").status_code == 204

    result = _read(rb)
    assert _keys(result.findings) == sorted(
        [
            ("user_missing", f"user {gone}"),
            ("user_external_id", "user adele.vance@sandbox.example"),
            ("user_active", "user megan.bowen@sandbox.example"),
            ("user_active", "user lee.gu@sandbox.example"),
            ("group_members", "group Iru Pilot"),
            ("group_external_id", "group Iru Pilot"),
            ("group_missing", "group Iru Mac Users"),
        ]
    ), "\n".join(f.line() for f in result.findings)
    assert all(f.category == "data" and f.fix for f in result.findings)
    members = next(f for f in result.findings if f.kind == "group_members")
    assert outsider["userName"].lower() in members.found
    lee = next(f for f in result.findings if f.object == "user lee.gu@sandbox.example")
    assert lee.expected == "active false" and lee.found == "active true"


def test_a_disabled_user_is_expected_absent_or_inactive(rb: Runbook, sandbox) -> None:
    results = setup_through_assign(rb)
    assert all(r.ok for r in results)
    # Disabled before Entra ever sent it: the cycle does not create it, and that is right.
    sandbox.disable_user("lee.gu@sandbox.example")
    first = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert first.ok, first
    assert "lee.gu@sandbox.example" not in {u["userName"].lower() for u in sandbox.scim_users()}
    assert _read(rb).findings == []
    # A second run has nothing to do: no restart, no write.
    again = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert again.ok and again.applied == [] and again.planned == [], again
    # Disabled after it arrived: the next cycle deactivates it, which is also expected.
    sandbox.disable_user("johanna.lorenz@sandbox.example")
    assert _keys(_read(rb).findings) == [("user_active", "user johanna.lorenz@sandbox.example")]
    fixed = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert fixed.ok, fixed
    johanna = [u for u in sandbox.scim_users() if u["userName"].lower().startswith("johanna")]
    assert johanna == [] or johanna[0]["active"] in (False, "False")
    assert _read(rb).findings == []


def _graph_reads(sandbox) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.requests("graph")]


def test_a_read_costs_what_the_data_costs(
    rb: Runbook, sandbox, sandbox_graph, sandbox_assign
) -> None:
    extra = [f"direct.user{i:02d}@sandbox.example" for i in range(25)]
    ids = [sandbox.add_user(upn, display_name=upn.split("@")[0])["id"] for upn in extra]
    results = setup_through_assign(rb)
    assert all(r.ok for r in results)
    graph = rb.graph
    sp = require_app(graph, rb.app_name)
    for object_id in ids:  # assigned directly (the fixture waits out replication)
        sandbox_assign(sandbox_graph, sp["id"], object_id)
    path = f"servicePrincipals/{sp['id']}/appRoleAssignedTo"
    deadline = time.monotonic() + 30
    while len(list(graph.get_all(path, top=999))) < len(USERS) + len(GROUPS) + len(ids):
        assert time.monotonic() < deadline, "the new assignments never became readable"
        time.sleep(0.1)
    schema = graph.get(schema_path(sp["id"], require_job(graph, sp["id"])["id"]))
    # One directly assigned user answers 404 inside the batch (deleted meanwhile), and one
    # is throttled once: it is sent again in a later batch.
    directory = {u["userPrincipalName"]: u["id"] for u in sandbox.users()}
    sandbox.inject(FaultRule(server="graph", path=f"/v1.0/users/{directory[extra[0]]}", status=404))
    sandbox.inject(
        FaultRule(
            server="graph",
            path=f"/v1.0/users/{directory[extra[1]]}",
            status=429,
            times=1,
            retry_after=0,
        )
    )
    sandbox.clear_requests()
    before = graph.request_count
    result = reconcile(graph, rb.scim, sp["id"], schema, concurrency=8)
    reads = _graph_reads(sandbox)
    assignments = [r for r in reads if r.endswith("/appRoleAssignedTo")]
    members = [r for r in reads if r.endswith("/members/microsoft.graph.user")]
    batches = [r for r in reads if r == "POST /v1.0/$batch"]
    direct = len(extra)  # adele and megan also come with a group: no batch entry for them
    assert len(assignments) == 1  # 29 assignments fit one page of 999
    assert members == []  # the groups' first members pages travel in $batch, 20 groups a batch
    member_batches = math.ceil(len(GROUPS) / 20)
    # + the throttled user, sent again in a batch of its own
    assert len(batches) == member_batches + math.ceil(direct / 20) + 1
    assert len(reads) == len(assignments) + len(batches)
    assert graph.request_count - before == len(reads) == result.expected.graph_requests
    scim_reads = sandbox.requests("iru")
    assert len(scim_reads) == 2  # users and groups, one page each at this size
    assert all("count=1000" in r.query for r in scim_reads)
    upns = {u.user_name for u in result.expected.users}
    assert extra[0] not in upns and extra[1] in upns
    assert len(upns) == 5 + direct - 1


def test_concurrency_does_not_change_the_findings(rb: Runbook, sandbox, sandbox_scim) -> None:
    _provisioned(rb)
    _patch(
        sandbox_scim,
        f"/Users/{_scim_id(sandbox, 'Users', 'adele.vance@sandbox.example')}",
        [{"op": "replace", "path": "externalId", "value": "wrong"}],
    )
    sandbox.disable_user("lee.gu@sandbox.example")
    one = _read(rb, concurrency=1)
    eight = _read(rb, concurrency=8)
    assert one.findings == eight.findings and len(one.findings) == 2
    assert sorted(one.expected.users, key=lambda u: u.object_id) == sorted(
        eight.expected.users, key=lambda u: u.object_id
    )


def test_the_setting_bounds_the_pool(monkeypatch, sandbox) -> None:
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RUNBOOK_GRAPH_CONCURRENCY", "1")
    assert load_settings().graph_concurrency == 1
    assert load_settings(graph_concurrency=32).graph_concurrency == 32
    from runbook_lib._exceptions import ConfigurationError

    monkeypatch.setenv("RUNBOOK_GRAPH_CONCURRENCY", "33")
    with pytest.raises(ConfigurationError):
        load_settings()


def test_plan_and_verify_share_one_read(rb: Runbook, sandbox) -> None:
    _provisioned(rb)
    sandbox.clear_requests()
    result = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert result.ok and result.applied == []
    reads = _graph_reads(sandbox)
    assert sum(r.endswith("/appRoleAssignedTo") for r in reads) == 1
    assert len([r for r in sandbox.requests("iru") if r.path.endswith("/Users")]) == 1
