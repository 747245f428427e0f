"""Shared pytest fixtures."""

from __future__ import annotations

# --- sandbox fixtures ---------------------------------------------------------------
# Fixtures for tests that run against the built-in sandbox (runbook_lib.sim): a
# started Sandbox per test (seed 1), its RUNBOOK_* settings, and ready-made HTTPS
# clients for its Graph and SCIM stand-ins (certificate checks on, sandbox CA).
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from runbook_lib.sim import Sandbox, SandboxConfig


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A started sandbox (seed 1, default settings), stopped after the test."""
    with Sandbox(SandboxConfig(seed=1)) as sb:
        yield sb


@pytest.fixture
def sandbox_env(sandbox: Sandbox) -> dict[str, str]:
    """The RUNBOOK_* settings pointing at :func:`sandbox`."""
    return sandbox.env()


def _app_token(sb: Sandbox) -> str:
    """An app-only Graph access token from the sandbox's token endpoint."""
    return sb.app_token()


@pytest.fixture
def sandbox_app_token() -> Callable[[Sandbox], str]:
    """A function returning an app-only Graph token for any started sandbox."""
    return _app_token


@pytest.fixture
def sandbox_graph(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client on the sandbox Graph URL, signed in as the sandbox app."""
    with httpx.Client(
        base_url=sandbox.graph_url,
        verify=sandbox.client_ssl_context(),
        headers={"Authorization": f"Bearer {_app_token(sandbox)}"},
        timeout=20,
    ) as client:
        yield client


@pytest.fixture
def sandbox_scim(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client on the sandbox Iru SCIM URL, with the SCIM bearer token."""
    with httpx.Client(
        base_url=sandbox.scim_url,
        verify=sandbox.client_ssl_context(),
        headers={
            "Authorization": f"Bearer {sandbox.scim_token}",
            "Content-Type": "application/scim+json",
        },
        timeout=20,
    ) as client:
        yield client


@pytest.fixture
def sandbox_new_app(sandbox_graph: httpx.Client) -> Callable[[str], dict[str, Any]]:
    """Create a non-gallery app and wait until Graph shows it; returns the SP JSON."""

    def create(display_name: str) -> dict[str, Any]:
        created = sandbox_graph.post(
            "/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate",
            json={"displayName": display_name},
        )
        assert created.status_code == 201, created.text
        sp_id = created.json()["servicePrincipal"]["id"]
        for _ in range(10):
            response = sandbox_graph.get(f"/servicePrincipals/{sp_id}")
            if response.status_code == 200:
                return dict(response.json())
        raise AssertionError("the new service principal never became visible")

    return create


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with a custom configuration (seed 1 unless given); all stop afterwards."""
    started: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        sb = Sandbox(SandboxConfig(**{"seed": 1, **options})).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox_graph_for() -> Iterator[Callable[[Sandbox], httpx.Client]]:
    """Open a signed-in Graph client on any started sandbox (closed after the test)."""
    clients: list[httpx.Client] = []

    def make(sb: Sandbox) -> httpx.Client:
        client = httpx.Client(
            base_url=sb.graph_url,
            verify=sb.client_ssl_context(),
            headers={"Authorization": f"Bearer {_app_token(sb)}"},
            timeout=30,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


USER_ROLE_ID = "18d14569-c3bd-439b-9a66-3a2aee01d14f"


def _wait_for(probe: Callable[[], httpx.Response], what: str) -> httpx.Response:
    for _ in range(20):
        response = probe()
        if response.status_code < 400:
            return response
    raise AssertionError(f"{what} never became visible: {response.text}")


@pytest.fixture
def sandbox_scim_app() -> Callable[..., dict[str, str]]:
    """Create an enterprise app with a scim job and saved credentials, with raw Graph calls.

    Returns ``{"sp": ..., "job": ..., "rule": ...}``. Options: ``base_address``,
    ``token`` (default: the sandbox's SCIM URL and token), ``sync_all`` ("false").
    """

    def setup(
        sb: Sandbox,
        graph: httpx.Client,
        *,
        base_address: str | None = None,
        token: str | None = None,
        sync_all: str = "false",
        name: str = "Iru Endpoint SCIM (sandbox)",
    ) -> dict[str, str]:
        created = graph.post(
            "/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate",
            json={"displayName": name},
        )
        assert created.status_code == 201, created.text
        sp_id = created.json()["servicePrincipal"]["id"]
        _wait_for(lambda: graph.get(f"/servicePrincipals/{sp_id}"), "the service principal")
        sync = f"/servicePrincipals/{sp_id}/synchronization"
        job = graph.post(f"{sync}/jobs", json={"templateId": "scim"})
        assert job.status_code == 201, job.text
        secrets = [
            {"key": "BaseAddress", "value": base_address or sb.scim_url},
            {"key": "SecretToken", "value": token if token is not None else sb.scim_token},
            {"key": "SyncAll", "value": sync_all},
            {
                "key": "SyncNotificationSettings",
                "value": '{"Enabled":false,"DeleteThresholdEnabled":false}',
            },
        ]
        saved = graph.put(f"{sync}/secrets", json={"value": secrets})
        assert saved.status_code == 204, saved.text
        job_id = job.json()["id"]
        schema = graph.get(f"{sync}/jobs/{job_id}/schema").json()
        return {"sp": sp_id, "job": job_id, "rule": schema["synchronizationRules"][0]["id"]}

    return setup


@pytest.fixture
def sandbox_assign() -> Callable[[httpx.Client, str, str], dict[str, Any]]:
    """Assign a principal to the app's User role (retrying while it replicates)."""

    def assign(graph: httpx.Client, sp_id: str, principal_id: str) -> dict[str, Any]:
        body = {"principalId": principal_id, "resourceId": sp_id, "appRoleId": USER_ROLE_ID}
        response = _wait_for(
            lambda: graph.post(f"/servicePrincipals/{sp_id}/appRoleAssignedTo", json=body),
            "the principal",
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    return assign


PROVISIONED_USERS = ["adele.vance@sandbox.example", "megan.bowen@sandbox.example"]
PROVISIONED_GROUPS = ["Iru Mac Users", "Iru Pilot"]


@pytest.fixture
def provisioned_runbook(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Runbook on :func:`sandbox` after pages 02-06 ran (device compliance on; two users and
    the two groups above assigned); no provisioning cycle has run yet."""
    from runbook_lib import Runbook, load_settings
    from runbook_lib.steps import (
        AssignUsersAndGroups,
        ConfigureProvisioning,
        CreateEnterpriseApp,
        EnableProvisioning,
        MappingsAndScope,
    )

    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as runbook:
        for step in (
            CreateEnterpriseApp(runbook),
            ConfigureProvisioning(runbook),
            MappingsAndScope(runbook, device_compliance=True),
            EnableProvisioning(runbook),
            AssignUsersAndGroups(runbook, users=PROVISIONED_USERS, groups=PROVISIONED_GROUPS),
        ):
            result = step.run()
            assert result.ok, result
        yield runbook


# --- end of sandbox fixtures ----------------------------------------------------------
