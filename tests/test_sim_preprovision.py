"""A sandbox started already provisioned, and drift seeded into it.

The key proof: Iru's storage after pre-provisioning equals what the engine's own first
cycle writes on an identical sandbox configured through Graph, and a cycle that follows
pre-provisioning sends no SCIM write.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runbook_lib.sim import Sandbox, SandboxConfig
from runbook_lib.sim._preprovision import DRIFT_KINDS, parse_drift
from runbook_lib.sim._sandbox import SANDBOX_APP_NAME

USER_ROLE_ID = "18d14569-c3bd-439b-9a66-3a2aee01d14f"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}
SIZE = {"users": 200, "groups": 20}


def _plain(resource: dict[str, Any]) -> dict[str, Any]:
    """A SCIM resource without server-made parts (id, meta); members by userName."""
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


def _by_key(sb: Sandbox) -> tuple[dict[str, Any], dict[str, Any]]:
    users = {u["id"]: u for u in sb.scim_users()}
    out_users = {u["userName"]: _plain(u) for u in users.values()}
    out_groups: dict[str, Any] = {}
    for group in sb.scim_groups():
        plain = _plain(group)
        plain["members"] = sorted(users[m["value"]]["userName"] for m in group.get("members") or [])
        out_groups[group["displayName"]] = plain
    return out_users, out_groups


def _configure_and_run(
    sb: Sandbox, graph: httpx.Client, principals: list[str], *, objectid: bool
) -> str:
    """Pages 02-06 by raw Graph calls (assignments before the start), then the first cycle."""
    created = graph.post(
        "/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate",
        json={"displayName": SANDBOX_APP_NAME},
    )
    assert created.status_code == 201, created.text
    sp_id = created.json()["servicePrincipal"]["id"]
    sync = f"/servicePrincipals/{sp_id}/synchronization"
    job = graph.post(f"{sync}/jobs", json={"templateId": "scim"})
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    secrets = [
        {"key": "BaseAddress", "value": sb.scim_url},
        {"key": "SecretToken", "value": sb.scim_token},
        {"key": "SyncAll", "value": "false"},
    ]
    assert graph.put(f"{sync}/secrets", json={"value": secrets}).status_code == 204
    if objectid:
        schema = graph.get(f"{sync}/jobs/{job_id}/schema").json()
        schema.pop("@odata.context", None)
        for mapping in schema["synchronizationRules"][0]["objectMappings"]:
            for attribute in mapping["attributeMappings"]:
                if attribute["targetAttributeName"] == "externalId":
                    attribute["source"] = {
                        "expression": "[objectId]",
                        "name": "objectId",
                        "parameters": [],
                        "type": "Attribute",
                    }
        saved = graph.put(f"{sync}/jobs/{job_id}/schema", json=schema)
        assert saved.status_code == 204, saved.text
    for principal in principals:
        body = {"principalId": principal, "resourceId": sp_id, "appRoleId": USER_ROLE_ID}
        response = graph.post(f"/servicePrincipals/{sp_id}/appRoleAssignedTo", json=body)
        assert response.status_code == 201, response.text
    assert graph.post(f"{sync}/jobs/{job_id}/start").status_code == 204
    assert sb.wait_idle(60)
    return sp_id


def _writes(sb: Sandbox) -> list[str]:
    return [f"{r.method} {r.path}" for r in sb.requests("iru") if r.method in WRITES]


@pytest.mark.parametrize("objectid", [False, True])
def test_preprovisioned_equals_a_real_first_cycle(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
    objectid: bool,
) -> None:
    pre = sandbox_factory(
        **SIZE,
        preprovisioned=True,
        preprovision_direct_users=3,
        device_compliance=objectid,
        consistency_reads=0,
        assignment_reads=0,
    )
    done = pre.preprovisioned
    assert done is not None and done.users_created > 0 and done.groups_created > 0
    assert not pre.requests("iru"), "pre-provisioning must not use HTTP"
    real = sandbox_factory(**SIZE, consistency_reads=0, assignment_reads=0)
    _configure_and_run(
        real,
        sandbox_graph_for(real),
        done.assigned_ids,
        objectid=objectid,
    )
    assert _writes(real), "the real cycle should have written to Iru"
    pre_users, pre_groups = _by_key(pre)
    real_users, real_groups = _by_key(real)
    assert pre_users == real_users
    assert pre_groups == real_groups
    # The same order of creation draws the same seeded SCIM ids.
    assert {u["id"] for u in pre.scim_users()} == {u["id"] for u in real.scim_users()}
    # The tenant side looks the same through the handle as well.
    real_sp = next(sp for sp in real.service_principals() if sp["displayName"] == SANDBOX_APP_NAME)
    pre_status, real_status = pre.job_status(done.sp_id), real.job_status(real_sp["id"])
    for key in ("code", "scheduleState", "synchronizedEntryCountByType"):
        assert pre_status[key] == real_status[key], key
    last = pre_status["lastExecution"]
    assert last["state"] == real_status["lastExecution"]["state"]
    assert last["countEntitled"] == real_status["lastExecution"]["countEntitled"]
    assert last["timeEnded"]


def test_disabled_users_are_not_created(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(**SIZE, preprovisioned=True)
    done = sb.preprovisioned
    assert done is not None and done.skipped > 0
    in_iru = {u["userName"] for u in sb.scim_users()}
    disabled = {u["userPrincipalName"] for u in sb.users() if not u["accountEnabled"]}
    assert disabled and not disabled & in_iru
    assert all(u["active"] is True for u in sb.scim_users())


def test_following_cycle_writes_nothing(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
) -> None:
    sb = sandbox_factory(**SIZE, preprovisioned=True, preprovision_direct_users=2)
    done = sb.preprovisioned
    assert done is not None
    before = _by_key(sb)
    reports = sb.run_cycle(done.sp_id)
    assert reports and reports[0].exported == 0 and not reports[0].full
    assert _writes(sb) == []
    assert _by_key(sb) == before
    # Later cycles through the schedule too, and Graph shows the configured app.
    sb.fast_forward(41 * 60)
    assert _writes(sb) == []
    graph = sandbox_graph_for(sb)
    found = graph.get(
        "/servicePrincipals", params={"$filter": f"displayName eq '{SANDBOX_APP_NAME}'"}
    ).json()["value"]
    assert [sp["id"] for sp in found] == [done.sp_id]
    sync = f"/servicePrincipals/{done.sp_id}/synchronization"
    job = graph.get(f"{sync}/jobs").json()["value"][0]
    assert job["schedule"]["state"] == "Active"
    assert job["status"]["code"] == "Active"
    assert job["status"]["lastExecution"]["state"] in ("Succeeded", "EntryLevelErrors")
    secrets = {s["key"]: s["value"] for s in graph.get(f"{sync}/secrets").json()["value"]}
    assert secrets["BaseAddress"] == sb.scim_url and secrets["SyncAll"] == "false"
    assigned = graph.get(f"/servicePrincipals/{done.sp_id}/appRoleAssignedTo?$top=999").json()
    assert len(assigned["value"]) == len(done.assigned_groups) + len(done.assigned_users)


def test_restart_repairs_nothing_when_clean(sandbox_factory: Callable[..., Sandbox]) -> None:
    """A full cycle (as after a restart) reads everything back and changes nothing."""
    sb = sandbox_factory(**SIZE, preprovisioned=True)
    done = sb.preprovisioned
    assert done is not None
    job = next(iter(sb.state.service_principals[done.sp_id].jobs.values()))
    with sb.state.lock:
        job.run.full_pending = True
    sb.run_cycle(done.sp_id)
    assert _writes(sb) == []


def _drifted(sandbox_factory: Callable[..., Sandbox], seed: int) -> Sandbox:
    return sandbox_factory(
        **SIZE,
        seed=seed,
        preprovisioned=True,
        drift=tuple(f"{kind}:2" for kind in DRIFT_KINDS),
    )


def test_each_drift_kind_is_applied_and_recorded(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    clean = sandbox_factory(**SIZE, preprovisioned=True)
    sb = _drifted(sandbox_factory, 1)
    seeded = sb.seeded_drift
    assert sorted(kind for kind, _ in seeded) == sorted(k for k in DRIFT_KINDS for _ in (1, 2))
    assert len({name for _, name in seeded}) == len(seeded), "one change per object"
    clean_users, clean_groups = _by_key(clean)
    users, groups = _by_key(sb)
    for kind, name in seeded:
        if kind == "missing_user":
            assert name in clean_users and name not in users
            assert all(name not in g["members"] for g in groups.values())
        elif kind == "wrong_external_id":
            assert users[name]["externalId"] != clean_users[name]["externalId"]
            assert {k: v for k, v in users[name].items() if k != "externalId"} == {
                k: v for k, v in clean_users[name].items() if k != "externalId"
            }
        elif kind == "inactive":
            assert clean_users[name]["active"] is True and users[name]["active"] is False
        elif kind == "missing_group":
            assert name in clean_groups and name not in groups
        else:
            extra = set(groups[name]["members"]) - set(clean_groups[name]["members"])
            assert sb.preprovisioned is not None
            assert extra == {sb.preprovisioned.extra_members[name]}
    # Nothing else differs.
    touched_users = {n for k, n in seeded if k in ("missing_user", "wrong_external_id", "inactive")}
    for name, user in clean_users.items():
        if name not in touched_users:
            assert users[name] == user
    removed = {n for k, n in seeded if k == "missing_user"}
    for name, group in clean_groups.items():
        if name in {n for _, n in seeded}:
            continue
        assert sorted(set(group["members"]) - removed) == groups[name]["members"]
    # The drift is in Iru only: the engine still believes it is in sync.
    sb.run_cycle()
    assert _writes(sb) == []


def test_drift_is_deterministic_under_the_seed(sandbox_factory: Callable[..., Sandbox]) -> None:
    first = _drifted(sandbox_factory, 7).seeded_drift
    assert _drifted(sandbox_factory, 7).seeded_drift == first
    assert _drifted(sandbox_factory, 8).seeded_drift != first


def test_drift_options_are_checked() -> None:
    assert parse_drift("missing-user:3") == ("missing_user", 3)
    with pytest.raises(ValueError, match="unknown drift kind"):
        parse_drift("gone:1")
    with pytest.raises(ValueError, match="needs a count"):
        parse_drift("inactive")
    with pytest.raises(ValueError, match="preprovisioned"):
        SandboxConfig(drift=("inactive:1",)).validate()
    with pytest.raises(ValueError, match="only"):
        Sandbox(SandboxConfig(preprovisioned=True, drift=("missing_user:1000",))).start()


def test_partial_assignment(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(**SIZE, preprovisioned=True, preprovision_groups=3)
    done = sb.preprovisioned
    assert done is not None and len(done.assigned_groups) == 3
    assert {g["displayName"] for g in sb.scim_groups()} <= set(done.assigned_groups)


def test_sim_cli_options() -> None:
    from runbook_lib.sim import add_sim_arguments
    from runbook_lib.sim._cli import _config_from_arguments

    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args([])
    config = _config_from_arguments(args)
    assert not config.preprovisioned and config.drift == ()
    args = parser.parse_args(
        [
            "--preprovisioned",
            "--preprovision-groups", "4",
            "--preprovision-direct-users", "2",
            "--device-compliance",
            "--drift", "missing-user:3",
            "--drift", "inactive:1",
        ]
    )  # fmt: skip
    config = _config_from_arguments(args)
    assert config.preprovisioned and config.device_compliance
    assert (config.preprovision_groups, config.preprovision_direct_users) == (4, 2)
    assert config.drift == ("missing_user:3", "inactive:1")
    with pytest.raises(SystemExit):
        parser.parse_args(["--drift", "nonsense:1"])


def test_sim_announces_what_was_preprovisioned(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    from runbook_lib.sim._cli import _announce

    sb = sandbox_factory(preprovisioned=True, drift=("inactive:1", "missing_group:1"))
    out = io.StringIO()
    _announce(sb, None, out)
    text = out.getvalue()
    assert "Already provisioned" in text and "inactive 1, missing_group 1" in text
    assert sb.scim_token not in text
