"""The runbook steps against the sandbox: plan, apply, verify, idempotence, dry run, bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runbook_lib import AmbiguousAppError, GraphNotFound, Runbook, StepError, load_settings
from runbook_lib._tenant import find_apps
from runbook_lib.steps import ConfigureProvisioning, Connect, CreateEnterpriseApp, Prerequisites

TEMPLATE = "applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate"
READ_ONLY_POSTS = ("validateCredentials",)


def graph_writes(sandbox) -> list[str]:
    """Requests that change the tenant (validateCredentials only probes, so it is not one)."""
    return [
        f"{r.method} {r.path}"
        for r in sandbox.requests("graph")
        if r.method in {"POST", "PUT", "PATCH", "DELETE"} and not r.path.endswith(READ_ONLY_POSTS)
    ]


@pytest.fixture
def rb(sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runbook]:
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RUNBOOK_POLL_INTERVAL", "0.05")
    with Runbook(load_settings()) as runbook:
        yield runbook


def test_prerequisites_and_connect_pass_on_the_sandbox(rb: Runbook, sandbox) -> None:
    assert Prerequisites(rb).run().ok
    result = Connect(rb).run()
    assert result.ok
    assert [c.title for c in result.checks] == [
        "Signed in to Entra ID",
        "Microsoft Graph answers",
        "Microsoft Graph permissions",
        "Iru SCIM endpoint answers like Entra expects",
    ]
    assert graph_writes(sandbox) == []


def test_create_then_configure_then_nothing_to_do(rb: Runbook, sandbox) -> None:
    first = CreateEnterpriseApp(rb).run()
    assert [c.action for c in first.planned] == ["create"]
    assert first.ok, first
    sps = sandbox.service_principals()
    assert [sp["displayName"] for sp in sps] == [rb.app_name]

    configured = ConfigureProvisioning(rb).run()
    assert configured.ok, configured
    assert {c.target for c in configured.planned} == {
        "provisioning job",
        "connection to Iru SCIM",
        "Tenant URL (BaseAddress)",
        "Secret token (SecretToken)",
    }
    sp_id = sps[0]["id"]
    secrets = sandbox.secrets(sp_id)
    assert secrets["BaseAddress"] == rb.settings.scim_url
    assert secrets["SecretToken"] == rb.settings.scim_token.get_secret_value()
    assert [j["templateId"] for j in sandbox.jobs(sp_id)] == ["scim"]

    sandbox.clear_requests()
    again_app = CreateEnterpriseApp(rb).run()
    again_prov = ConfigureProvisioning(rb).run()
    assert again_app.planned == [] and again_app.applied == [] and again_app.ok
    assert again_prov.planned == [] and again_prov.applied == [] and again_prov.ok
    assert graph_writes(sandbox) == []


def test_dry_run_on_a_fresh_tenant_plans_and_writes_nothing(rb: Runbook, sandbox) -> None:
    result = CreateEnterpriseApp(rb).run(dry_run=True)
    assert [c.action for c in result.planned] == ["create"] and result.applied == []
    assert graph_writes(sandbox) == [] and sandbox.service_principals() == []


def test_two_apps_with_the_name_stop_with_a_list(rb: Runbook, sandbox) -> None:
    for _ in range(2):
        rb.graph.post(TEMPLATE, {"displayName": rb.app_name})
    ids = sorted(sp["id"] for sp in sandbox.service_principals())

    def both_listed() -> None:
        if len(find_apps(rb.graph, rb.app_name)) < 2:  # eventual consistency
            raise GraphNotFound("not listed yet", status=404)

    rb.graph.wait_for(both_listed, what="both apps", interval=0.01)
    with pytest.raises(AmbiguousAppError) as info:
        CreateEnterpriseApp(rb).run()
    assert all(i in str(info.value) for i in ids)
    assert "unique name" in info.value.remediation
    assert len(sandbox.service_principals()) == 2  # nothing more was created


def test_configure_before_create_points_at_step_02(rb: Runbook) -> None:
    with pytest.raises(StepError) as info:
        ConfigureProvisioning(rb).run()
    assert info.value.hint == "02-create-enterprise-app"


def test_wrong_token_fails_test_connection_and_saves_nothing(
    rb: Runbook, sandbox, monkeypatch
) -> None:
    CreateEnterpriseApp(rb).run()
    monkeypatch.setenv("RUNBOOK_SCIM_TOKEN", "a-wrong-token-for-test")
    with Runbook(load_settings()) as bad:
        with pytest.raises(StepError) as info:
            ConfigureProvisioning(bad).run()
    assert "were not saved" in info.value.message
    assert "RUNBOOK_SCIM_TOKEN" in info.value.remediation
    assert "a-wrong-token-for-test" not in str(info.value)
    # Microsoft's order: the job exists (Test connection runs on it), nothing is saved in it.
    sp_id = sandbox.service_principals()[0]["id"]
    assert [j["templateId"] for j in sandbox.jobs(sp_id)] == ["scim"]
    assert sandbox.secrets(sp_id) == {}


def test_a_changed_scim_url_is_planned_and_applied(rb: Runbook, sandbox, monkeypatch) -> None:
    CreateEnterpriseApp(rb).run()
    ConfigureProvisioning(rb).run()
    moved = rb.settings.scim_url.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("RUNBOOK_SCIM_URL", moved)
    with Runbook(load_settings()) as rb2:
        result = ConfigureProvisioning(rb2).run()
    assert result.ok, result
    assert any(c.target.startswith("Tenant URL") for c in result.applied)
    assert sandbox.secrets(sandbox.service_principals()[0]["id"])["BaseAddress"] == moved


def test_force_token_update_resaves_and_keeps_other_secrets(rb: Runbook, sandbox) -> None:
    CreateEnterpriseApp(rb).run()
    ConfigureProvisioning(rb).run()
    sp_id = sandbox.service_principals()[0]["id"]
    current = sandbox.secrets(sp_id)
    rb.graph.put(
        f"servicePrincipals/{sp_id}/synchronization/secrets",
        {"value": [{"key": k, "value": v} for k, v in {**current, "SyncAll": "false"}.items()]},
    )
    result = ConfigureProvisioning(rb, force_token_update=True).run()
    assert [c.target for c in result.applied if c.action == "set"] == ["Secret token (SecretToken)"]
    assert sandbox.secrets(sp_id)["SyncAll"] == "false"
