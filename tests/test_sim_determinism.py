"""Same seed + same calls => same ids; and the request log never holds a secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from runbook_lib.sim import RequestRecord, Sandbox, SandboxConfig

INSTANTIATE = "/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate"


def _scenario(seed: int, token: Callable[[Sandbox], str]) -> dict[str, Any]:
    """A fixed call sequence; returns every id the sandbox handed out."""
    with (
        Sandbox(SandboxConfig(seed=seed)) as sb,
        httpx.Client(
            base_url=sb.graph_url,
            verify=sb.client_ssl_context(),
            headers={"Authorization": f"Bearer {token(sb)}"},
        ) as graph,
        httpx.Client(
            base_url=sb.scim_url,
            verify=sb.client_ssl_context(),
            headers={"Authorization": f"Bearer {sb.scim_token}"},
        ) as scim,
    ):
        ids: dict[str, Any] = {"tenant": sb.tenant_id, "client": sb.client_id}
        created = graph.post(INSTANTIATE, json={"displayName": "A"}).json()
        ids["app"] = created["application"]["id"]
        ids["appId"] = created["application"]["appId"]
        ids["sp"] = created["servicePrincipal"]["id"]
        ids["request-ids"] = [
            graph.get(f"/servicePrincipals/{ids['sp']}").headers["request-id"] for _ in range(3)
        ]
        ids["job"] = graph.post(
            f"/servicePrincipals/{ids['sp']}/synchronization/jobs", json={"templateId": "scim"}
        ).json()["id"]
        user = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "a@contoso.com",
        }
        ids["scim-user"] = scim.post("/Users", json=user).json()["id"]
        ids["second-sp"] = graph.post(INSTANTIATE, json={"displayName": "B"}).json()[
            "servicePrincipal"
        ]["id"]
        return ids


def test_same_seed_same_ids(sandbox_app_token: Callable[[Sandbox], str]) -> None:
    first = _scenario(7, sandbox_app_token)
    second = _scenario(7, sandbox_app_token)
    assert first == second
    assert len({first["app"], first["appId"], first["sp"], first["second-sp"]}) == 4


def test_another_seed_other_ids(sandbox_app_token: Callable[[Sandbox], str]) -> None:
    first = _scenario(7, sandbox_app_token)
    other = _scenario(8, sandbox_app_token)
    assert first["tenant"] != other["tenant"] and first["sp"] != other["sp"]


def test_secrets_are_random_even_with_a_seed() -> None:
    one, two = Sandbox(SandboxConfig(seed=1)), Sandbox(SandboxConfig(seed=1))
    assert one.tenant_id == two.tenant_id
    assert one.client_secret != two.client_secret and one.scim_token != two.scim_token


def test_given_secrets_are_used() -> None:
    sb = Sandbox(SandboxConfig(scim_token="given-scim-token-123", client_secret="given-secret-456"))
    assert sb.scim_token == "given-scim-token-123" and sb.client_secret == "given-secret-456"
    assert "given" not in repr(sb.config)


def test_request_log_never_contains_a_secret() -> None:
    canary = "CANARY-scim-token-0123456789"
    with Sandbox(SandboxConfig(scim_token=canary)) as sb:
        token_form = {
            "grant_type": "client_credentials",
            "client_id": sb.client_id,
            "client_secret": sb.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        }
        verify = sb.client_ssl_context()
        token_url = f"{sb.authority}/{sb.tenant_id}/oauth2/v2.0/token"
        access = httpx.post(token_url, data=token_form, verify=verify).json()["access_token"]
        # A careless client putting secrets in query strings and paths.
        httpx.post(token_url + f"?client_secret={sb.client_secret}", data=token_form, verify=verify)
        httpx.get(f"{sb.scim_url}/Users?access_token={canary}", verify=verify)
        httpx.get(
            f"{sb.scim_url}/Users/{canary}",
            headers={"Authorization": f"Bearer {canary}"},
            verify=verify,
        )
        headers = {"Authorization": f"Bearer {access}"}
        graph = sb.graph_url
        sp = httpx.post(
            graph + INSTANTIATE, json={"displayName": "x"}, headers=headers, verify=verify
        ).json()
        sp_id = sp["servicePrincipal"]["id"]
        for _ in range(2):
            httpx.get(f"{graph}/servicePrincipals/{sp_id}", headers=headers, verify=verify)
        httpx.get(
            f"{graph}/servicePrincipals?$filter=displayName eq '{access}'",
            headers=headers,
            verify=verify,
        )
        credentials = [
            {"key": "BaseAddress", "value": sb.scim_url},
            {"key": "SecretToken", "value": canary},
        ]
        sync = f"{graph}/servicePrincipals/{sp_id}/synchronization"
        checked = httpx.post(
            f"{sync}/jobs/validateCredentials",
            json={"credentials": credentials},
            headers=headers,
            verify=verify,
        )
        assert checked.status_code == 204
        httpx.put(f"{sync}/secrets", json={"value": credentials}, headers=headers, verify=verify)
        records = sb.requests()
        assert {r.server for r in records} == {"login", "graph", "iru"}
        assert all(isinstance(r, RequestRecord) for r in records)
        dump = repr(records)
        for secret in (canary, sb.client_secret, access):
            assert secret not in dump
        assert "[REDACTED]" in dump
        sb.clear_requests()
        assert sb.requests() == []
