"""The Graph calls as Microsoft documents them, each proven against the sandbox.

* Test connection runs on the job, after it exists and before the secrets are saved;
* the undocumented secrets read may fail or come back masked without failing pages 03/04;
* guests (``#EXT#``) and ``$`` names are looked up safely;
* provision on demand picks the rule by its mappings and handles groups;
* quarantine is ``status.code``, ``EntryLevelErrors`` is reported, logs are newest first;
* ``start``/``pause`` carry no body.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runbook_lib import Runbook, Status, load_settings
from runbook_lib._diagnose import entry_level_errors, explain_job_status
from runbook_lib._graph import GraphClient, user_key
from runbook_lib._schema import rule_for
from runbook_lib.sim import FaultRule
from runbook_lib.steps import (
    AssignUsersAndGroups,
    ConfigureProvisioning,
    CreateEnterpriseApp,
    EnableProvisioning,
    MappingsAndScope,
    VerifyProvisioning,
)

GUEST = "jane.guest_fabrikam.com#EXT#@sandbox.onmicrosoft.com"
DOLLAR = "$svc.mac@sandbox.example"


@pytest.fixture
def rb(sandbox, monkeypatch) -> Iterator[Runbook]:
    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as runbook:
        yield runbook


def _graph_paths(sb, method: str | None = None) -> list[str]:
    return [r.path for r in sb.requests("graph") if method is None or r.method == method]


def test_test_connection_runs_on_the_job_before_the_secrets_are_saved(rb, sandbox) -> None:
    assert CreateEnterpriseApp(rb).run().ok
    sandbox.clear_requests()
    result = ConfigureProvisioning(rb).run()
    assert result.ok, result
    posts = [(r.method, r.path) for r in sandbox.requests("graph") if r.method in ("POST", "PUT")]
    kinds = [
        "job" if p.endswith("/synchronization/jobs") else p.rsplit("/", 1)[-1] for _m, p in posts
    ]
    assert kinds[:3] == ["job", "validateCredentials", "secrets"], posts
    assert not any(p.endswith("/synchronization/jobs/validateCredentials") for _m, p in posts)


def test_a_wrong_token_saves_nothing_and_the_next_run_completes(
    sandbox_factory, monkeypatch
) -> None:
    sb = sandbox_factory()
    env = {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05", "RUNBOOK_SCIM_TOKEN": "wrong-token-x"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as rb:
        CreateEnterpriseApp(rb).run()
        with pytest.raises(Exception) as caught:
            ConfigureProvisioning(rb).run()
        assert "not saved" in str(caught.value)
    assert not any(p.endswith("/secrets") for p in _graph_paths(sb, "PUT"))
    monkeypatch.setenv("RUNBOOK_SCIM_TOKEN", sb.scim_token)
    with Runbook(load_settings()) as rb:
        again = ConfigureProvisioning(rb).run()
    assert again.ok, again


@pytest.mark.parametrize("status", [400, 403, 405])
def test_pages_03_and_04_survive_an_unreadable_secrets_read(rb, sandbox, status) -> None:
    assert CreateEnterpriseApp(rb).run().ok
    sandbox.inject(
        FaultRule(
            server="graph",
            path="/v1.0/servicePrincipals/*/synchronization/secrets",
            methods=("GET",),
            status=status,
        )
    )
    first = [ConfigureProvisioning(rb).run(), MappingsAndScope(rb).run()]
    assert all(r.ok for r in first), "\n".join(map(str, first))
    url_check = next(c for c in first[0].checks if c.title == "Tenant URL saved")
    assert url_check.status is Status.WARN
    tested = next(c for c in first[0].checks if c.title.startswith("Test connection"))
    assert tested.status is Status.PASS
    # What was saved is complete, even though nothing could be read back.
    sp_id = sandbox.service_principals()[0]["id"]
    saved = sandbox.state.get_service_principal(sp_id).secrets
    assert saved["BaseAddress"] == rb.settings.scim_url and saved["SyncAll"] == "false"
    assert saved["SecretToken"] == rb.settings.scim_token.get_secret_value()
    # A second page 03 writes nothing: Test connection with the saved values decides.
    sandbox.clear_requests()
    again = ConfigureProvisioning(rb).run()
    assert again.ok and again.applied == [] and any("force_token_update" in n for n in again.notes)
    assert _graph_paths(sandbox, "PUT") == []


def test_guest_and_dollar_users_are_assigned_and_verified_in_iru(rb, sandbox) -> None:
    setup = [
        CreateEnterpriseApp(rb).run(),
        ConfigureProvisioning(rb).run(),
        MappingsAndScope(rb, device_compliance=True).run(),
        EnableProvisioning(rb).run(),
        AssignUsersAndGroups(rb, users=[GUEST, DOLLAR, "adele.vance@sandbox.example"]).run(),
    ]
    assert all(r.ok for r in setup), "\n".join(map(str, setup))
    assert len(setup[-1].applied) == 3
    verify = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert verify.ok, verify
    in_iru = {u["userName"].lower() for u in sandbox.scim_users()}
    assert GUEST.lower() in in_iru and DOLLAR.lower() in in_iru
    # Nothing was addressed by a raw name in a path.
    assert not any("#" in p or "/users/$" in p for p in _graph_paths(sandbox))


def test_a_guest_is_found_by_the_address_they_were_invited_with(rb) -> None:
    from runbook_lib._tenant import find_user

    found = find_user(rb.graph, "jane.guest@fabrikam.com", "id,userPrincipalName")
    assert found is not None and found["userPrincipalName"] == GUEST


def test_user_key_encodes_as_the_user_get_page_asks() -> None:
    assert user_key(GUEST) == "users/jane.guest_fabrikam.com%23EXT%23@sandbox.onmicrosoft.com"
    assert user_key(DOLLAR) == "users('$svc.mac@sandbox.example')"
    assert user_key("1b2c3d4e-0000-4000-8000-000000000001").endswith("000000000001")


def test_on_demand_provisions_a_group_with_its_own_subject(rb, sandbox, sandbox_scim) -> None:
    setup = [
        CreateEnterpriseApp(rb).run(),
        ConfigureProvisioning(rb).run(),
        MappingsAndScope(rb).run(),
        EnableProvisioning(rb).run(),
        AssignUsersAndGroups(rb, groups=["Iru Pilot"]).run(),
        VerifyProvisioning(rb, timeout_minutes=1).run(),
    ]
    assert all(r.ok for r in setup), "\n".join(map(str, setup))
    group = next(g for g in sandbox.scim_groups() if g["displayName"] == "Iru Pilot")
    assert sandbox_scim.delete(f"/Groups/{group['id']}").status_code == 204
    result = VerifyProvisioning(rb, trigger="on_demand", timeout_minutes=1).run()
    assert [c.target for c in result.applied] == ["group Iru Pilot"], result
    assert result.ok, result
    assert "Iru Pilot" in {g["displayName"] for g in sandbox.scim_groups()}


def test_the_rule_is_chosen_by_its_mappings_not_its_position() -> None:
    schema = {
        "synchronizationRules": [
            {"id": "r-other", "objectMappings": [{"sourceObjectName": "Device"}]},
            {
                "id": "r-main",
                "objectMappings": [
                    {"sourceObjectName": "User", "enabled": True},
                    {"sourceObjectName": "Group", "enabled": True},
                ],
            },
        ]
    }
    assert rule_for(schema, "User") == "r-main" and rule_for(schema, "Group") == "r-main"


def test_a_paused_job_with_an_old_quarantine_block_is_not_quarantined() -> None:
    paused = {
        "status": {"code": "Paused", "quarantine": {"reason": "EncounteredQuarantineException"}}
    }
    assert explain_job_status(paused) is None
    quarantined = {"status": {"code": "Quarantine", "quarantine": {"reason": "Escrow"}}}
    assert explain_job_status(quarantined) is not None


def test_entry_level_errors_are_reported_with_counts() -> None:
    job = {
        "status": {
            "code": "Active",
            "lastExecution": {
                "state": "EntryLevelErrors",
                "countEntitled": 120,
                "countExported": 117,
                "countEscrowed": 3,
            },
        }
    }
    sentence = entry_level_errors(job)
    assert sentence is not None and "in scope 120" in sentence and "held for retry 3" in sentence
    assert entry_level_errors({"status": {"lastExecution": {"state": "Succeeded"}}}) is None


def test_provisioning_logs_are_read_newest_first(rb, sandbox) -> None:
    setup = [
        CreateEnterpriseApp(rb).run(),
        ConfigureProvisioning(rb).run(),
        MappingsAndScope(rb).run(),
        EnableProvisioning(rb).run(),
        AssignUsersAndGroups(rb, users=["adele.vance@sandbox.example"]).run(),
    ]
    assert all(r.ok for r in setup)
    sandbox.clear_requests()
    assert VerifyProvisioning(rb, timeout_minutes=1).run().ok
    queries = [r.query for r in sandbox.requests("graph") if r.path.endswith("/provisioning")]
    assert queries and all("activityDateTime" in q and "desc" in q for q in queries)


def test_start_and_pause_send_no_body() -> None:
    seen: list[tuple[bytes, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.content, request.headers.get("content-type")))
        return httpx.Response(204)

    class _Token:
        token = "t"
        expires_on = 4_102_444_800

    class _Credential:
        def get_token(self, *scopes: str, **kwargs: object) -> _Token:
            return _Token()

    client = GraphClient(
        "https://graph.example/v1.0", _Credential(), transport=httpx.MockTransport(handler)
    )
    client.post("servicePrincipals/x/synchronization/jobs/y/start")
    client.post("servicePrincipals/x/synchronization/jobs/y/restart", {"criteria": {}})
    assert seen[0] == (b"", None)
    assert seen[1][0] and seen[1][1] == "application/json"
