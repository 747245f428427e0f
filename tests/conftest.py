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
    response = httpx.post(
        f"{sb.authority}/{sb.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sb.client_id,
            "client_secret": sb.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=sb.client_ssl_context(),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


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


# --- end of sandbox fixtures ----------------------------------------------------------
