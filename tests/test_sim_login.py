"""The Entra sign-in stand-in, driven by azure-identity and msal as the runbook uses them."""

from __future__ import annotations

import time

import httpx
import msal
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, DeviceCodeCredential

from runbook_lib.sim import Sandbox

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


def _token_url(sb: Sandbox) -> str:
    return f"{sb.authority}/{sb.tenant_id}/oauth2/v2.0/token"


def _post_token(sb: Sandbox, **form: str) -> httpx.Response:
    return httpx.post(_token_url(sb), data=form, verify=sb.client_ssl_context())


def test_openid_metadata_points_back_at_the_sandbox(sandbox: Sandbox) -> None:
    url = f"{sandbox.authority}/{sandbox.tenant_id}/v2.0/.well-known/openid-configuration"
    meta = httpx.get(url, verify=sandbox.client_ssl_context()).json()
    base = f"{sandbox.authority}/{sandbox.tenant_id}"
    assert meta["issuer"] == f"{base}/v2.0"
    assert meta["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert meta["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert meta["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
    assert meta["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert httpx.get(meta["jwks_uri"], verify=sandbox.client_ssl_context()).json() == {"keys": []}


def test_unknown_tenant_is_aadsts90002(sandbox: Sandbox) -> None:
    url = f"{sandbox.authority}/contoso.example/v2.0/.well-known/openid-configuration"
    response = httpx.get(url, verify=sandbox.client_ssl_context())
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant 'contoso.example' not found.")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


def test_client_secret_credential_gets_a_graph_token(sandbox: Sandbox) -> None:
    credential = ClientSecretCredential(
        sandbox.tenant_id,
        sandbox.client_id,
        sandbox.client_secret,
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_path),
    )
    token = credential.get_token(GRAPH_DEFAULT)
    assert token.token and 3500 < token.expires_on - time.time() <= 3600
    response = httpx.get(
        f"{sandbox.graph_url}/servicePrincipals",
        headers={"Authorization": f"Bearer {token.token}"},
        verify=sandbox.client_ssl_context(),
    )
    assert response.status_code == 200


def test_client_credentials_response_shape(sandbox: Sandbox) -> None:
    response = _post_token(
        sandbox,
        grant_type="client_credentials",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        scope=GRAPH_DEFAULT,
    )
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["access_token"] != sandbox.client_secret


def test_wrong_secret_is_aadsts7000215_and_never_echoed(sandbox: Sandbox) -> None:
    wrong = "definitely-not-the-secret-8Q~canary"
    response = _post_token(
        sandbox,
        grant_type="client_credentials",
        client_id=sandbox.client_id,
        client_secret=wrong,
        scope=GRAPH_DEFAULT,
    )
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert "Invalid client secret provided" in body["error_description"]
    assert wrong not in response.text and sandbox.client_secret not in response.text


def test_wrong_secret_through_azure_identity_names_the_code(sandbox: Sandbox) -> None:
    credential = ClientSecretCredential(
        sandbox.tenant_id,
        sandbox.client_id,
        "wrong-secret-value",
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_path),
    )
    with pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token(GRAPH_DEFAULT)
    assert "AADSTS7000215" in str(caught.value)


def test_unknown_client_is_aadsts700016(sandbox: Sandbox) -> None:
    response = _post_token(
        sandbox,
        grant_type="client_credentials",
        client_id="11111111-2222-4333-8444-555555555555",
        client_secret=sandbox.client_secret,
        scope=GRAPH_DEFAULT,
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [700016]


@pytest.mark.parametrize("scope", ["Application.ReadWrite.All", "", "openid profile"])
def test_client_credentials_need_a_default_scope(sandbox: Sandbox, scope: str) -> None:
    response = _post_token(
        sandbox,
        grant_type="client_credentials",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        scope=scope,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_tokens_for_other_resources_are_refused(sandbox: Sandbox) -> None:
    response = _post_token(
        sandbox,
        grant_type="client_credentials",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        scope="https://management.azure.com/.default",
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [500011]


def test_public_client_cannot_use_client_credentials(sandbox: Sandbox) -> None:
    response = _post_token(
        sandbox, grant_type="client_credentials", client_id=sandbox.client_id, scope=GRAPH_DEFAULT
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_device_code_credential_signs_in(sandbox: Sandbox) -> None:
    prompts: list[tuple[str, str]] = []
    credential = DeviceCodeCredential(
        client_id=sandbox.client_id,
        tenant_id=sandbox.tenant_id,
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_path),
        prompt_callback=lambda uri, code, expires: prompts.append((uri, code)),
    )
    # A named scope: `.default` would only carry what this client was consented to before
    # (nothing yet), so Graph would refuse the call, as in Entra.
    token = credential.get_token("https://graph.microsoft.com/Application.ReadWrite.All")
    assert prompts and prompts[0][0] == f"{sandbox.authority}/devicelogin"
    polls = [r for r in sandbox.requests("login") if r.path.endswith("/oauth2/v2.0/token")]
    assert [r.status for r in polls] == [400, 200]  # authorization_pending, then the token
    response = httpx.get(
        f"{sandbox.graph_url}/servicePrincipals",
        headers={"Authorization": f"Bearer {token.token}"},
        verify=sandbox.client_ssl_context(),
    )
    assert response.status_code == 200


def test_msal_device_flow_with_delegated_scopes(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests (under msal) lets these variables override msal's own verify= setting.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    app = msal.PublicClientApplication(
        sandbox.client_id,
        authority=f"{sandbox.authority}/{sandbox.tenant_id}",
        instance_discovery=False,
        verify=str(sandbox.ca_path),
    )
    flow = app.initiate_device_flow(
        scopes=["Application.ReadWrite.All", "Synchronization.ReadWrite.All"]
    )
    assert "user_code" in flow and flow["interval"] == 1
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    assert result["id_token_claims"]["tid"] == sandbox.tenant_id
    assert result["id_token_claims"]["preferred_username"].startswith("admin@")
    # The cached account can renew silently with the refresh token.
    account = app.get_accounts()[0]
    again = app.acquire_token_silent(
        ["Application.ReadWrite.All"], account=account, force_refresh=True
    )
    assert again and again["access_token"] != result["access_token"]


def test_device_code_is_pending_once_then_single_use(sandbox: Sandbox) -> None:
    started = httpx.post(
        f"{sandbox.authority}/{sandbox.tenant_id}/oauth2/v2.0/devicecode",
        data={"client_id": sandbox.client_id, "scope": "Application.Read.All offline_access"},
        verify=sandbox.client_ssl_context(),
    ).json()
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": sandbox.client_id,
        "device_code": started["device_code"],
    }
    first = _post_token(sandbox, **form)
    assert first.status_code == 400 and first.json()["error"] == "authorization_pending"
    second = _post_token(sandbox, **form)
    assert second.status_code == 200 and second.json()["refresh_token"]
    third = _post_token(sandbox, **form)
    assert third.status_code == 400 and third.json()["error"] == "invalid_grant"


def test_unsupported_grant(sandbox: Sandbox) -> None:
    response = _post_token(sandbox, grant_type="password", client_id=sandbox.client_id)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
