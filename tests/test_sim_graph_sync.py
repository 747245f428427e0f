"""The Graph synchronization stand-in: templates, jobs, credential tests and secrets."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runbook_lib.sim import Sandbox
from runbook_lib.sim.plumbing._ca import SandboxCA
from runbook_lib.sim.plumbing._http import HttpsServer

NewApp = Callable[[str], dict[str, Any]]


@pytest.fixture
def sp(sandbox_new_app: NewApp) -> dict[str, Any]:
    return sandbox_new_app("Iru Endpoint SCIM (sandbox)")


def _sync(sp: dict[str, Any], tail: str = "") -> str:
    return f"/servicePrincipals/{sp['id']}/synchronization{tail}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _credentials(url: str, token: str) -> list[dict[str, str]]:
    return [{"key": "BaseAddress", "value": url}, {"key": "SecretToken", "value": token}]


def test_templates_offer_scim(sandbox_graph: httpx.Client, sp: dict[str, Any]) -> None:
    body = sandbox_graph.get(_sync(sp, "/templates")).json()
    assert body["@odata.context"].endswith(
        f"servicePrincipals('{sp['id']}')/synchronization/templates"
    )
    [template] = body["value"]
    assert template["id"] == "scim" and template["factoryTag"] == "scim"
    assert template["default"] is True and template["discoverable"] is True
    assert template["applicationId"] == sp["appId"]


def test_create_get_and_list_a_job(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    assert sandbox_graph.get(_sync(sp, "/jobs")).json()["value"] == []
    created = sandbox_graph.post(_sync(sp, "/jobs"), json={"templateId": "scim"})
    assert created.status_code == 201
    job = created.json()
    assert job["id"] == f"scim.{sandbox.tenant_id.replace('-', '')}.{sp['appId']}"
    assert job["templateId"] == "scim"
    assert job["schedule"] == {"expiration": None, "interval": "PT40M", "state": "Disabled"}
    status = job["status"]
    assert status["code"] == "NotConfigured"
    assert status["lastExecution"] is None and status["quarantine"] is None
    assert status["progress"] == [] and status["synchronizedEntryCountByType"] == []
    assert status["steadyStateFirstAchievedTime"] == "0001-01-01T00:00:00Z"
    assert job["@odata.context"].endswith("/synchronization/jobs/$entity")

    fetched = sandbox_graph.get(_sync(sp, f"/jobs/{job['id']}")).json()
    assert fetched["id"] == job["id"]
    listed = sandbox_graph.get(_sync(sp, "/jobs")).json()["value"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert sandbox.jobs(sp["id"])[0]["id"] == job["id"]


def test_a_second_job_from_the_same_template_is_409(
    sandbox_graph: httpx.Client, sp: dict[str, Any]
) -> None:
    assert sandbox_graph.post(_sync(sp, "/jobs"), json={"templateId": "scim"}).status_code == 201
    again = sandbox_graph.post(_sync(sp, "/jobs"), json={"templateId": "scim"})
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "Conflict" and "already exists" in error["message"]


@pytest.mark.parametrize("body", [{"templateId": "customappsso2"}, {}, {"templateId": 3}])
def test_job_needs_a_known_template(
    sandbox_graph: httpx.Client, sp: dict[str, Any], body: dict[str, Any]
) -> None:
    response = sandbox_graph.post(_sync(sp, "/jobs"), json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"


def test_unknown_job_is_404(sandbox_graph: httpx.Client, sp: dict[str, Any]) -> None:
    response = sandbox_graph.get(_sync(sp, "/jobs/scim.nope"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"


def test_secrets_are_replaced_and_masked(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    secrets = [
        {"key": "BaseAddress", "value": sandbox.scim_url},
        {"key": "SecretToken", "value": sandbox.scim_token},
        {
            "key": "SyncNotificationSettings",
            "value": '{"Enabled":false,"DeleteThresholdEnabled":false}',
        },
        {"key": "SyncAll", "value": "false"},
    ]
    response = sandbox_graph.put(_sync(sp, "/secrets"), json={"value": secrets})
    assert response.status_code == 204 and response.content == b""
    read = sandbox_graph.get(_sync(sp, "/secrets"))
    assert sandbox.scim_token not in read.text
    values = {item["key"]: item["value"] for item in read.json()["value"]}
    assert values == {
        "BaseAddress": sandbox.scim_url,
        "SecretToken": "*",
        "SyncNotificationSettings": '{"Enabled":false,"DeleteThresholdEnabled":false}',
        "SyncAll": "false",
    }
    assert sandbox.secrets(sp["id"])["SecretToken"] == sandbox.scim_token

    # A PUT replaces the whole set; a key sent empty disappears.
    replaced = [
        {"key": "BaseAddress", "value": sandbox.scim_url},
        {"key": "SecretToken", "value": ""},
    ]
    assert sandbox_graph.put(_sync(sp, "/secrets"), json={"value": replaced}).status_code == 204
    assert sandbox.secrets(sp["id"]) == {"BaseAddress": sandbox.scim_url}


def test_saving_a_base_address_configures_the_job(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    job = sandbox_graph.post(_sync(sp, "/jobs"), json={"templateId": "scim"}).json()
    secrets = _credentials(sandbox.scim_url, sandbox.scim_token)
    sandbox_graph.put(_sync(sp, "/secrets"), json={"value": secrets})
    fetched = sandbox_graph.get(_sync(sp, f"/jobs/{job['id']}")).json()
    assert fetched["status"]["code"] == "Paused"
    assert fetched["schedule"]["state"] == "Disabled"


@pytest.mark.parametrize(
    "value",
    [[{"key": "secrettoken", "value": "x"}], [{"key": "Nope", "value": "x"}], "BaseAddress"],
)
def test_secrets_reject_unknown_keys_and_bad_shapes(
    sandbox_graph: httpx.Client, sp: dict[str, Any], value: Any
) -> None:
    response = sandbox_graph.put(_sync(sp, "/secrets"), json={"value": value})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"


def _validate(
    client: httpx.Client, sp: dict[str, Any], body: dict[str, Any], job: str | None = None
) -> httpx.Response:
    path = f"/jobs/{job}/validateCredentials" if job else "/jobs/validateCredentials"
    return client.post(_sync(sp, path), json=body)


def test_validate_credentials_really_probes_the_scim_endpoint(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    job = sandbox_graph.post(_sync(sp, "/jobs"), json={"templateId": "scim"}).json()["id"]
    sandbox.clear_requests()
    body = {
        "useSavedCredentials": False,
        "credentials": _credentials(sandbox.scim_url, sandbox.scim_token),
    }
    response = _validate(sandbox_graph, sp, body, job)
    assert response.status_code == 204, response.text
    [probe] = sandbox.requests("iru")
    assert probe.method == "GET" and probe.path == "/api/v1/scim/Users"
    assert probe.query.startswith("filter=userName") and probe.status == 200


def test_validate_credentials_without_a_job(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    body = {
        "useSavedCredentials": False,
        "templateId": "scim",
        "credentials": _credentials(sandbox.scim_url, sandbox.scim_token),
    }
    assert _validate(sandbox_graph, sp, body).status_code == 204
    body["templateId"] = "nope"
    assert _validate(sandbox_graph, sp, body).status_code == 400


def test_validate_with_saved_credentials(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    none_saved = _validate(sandbox_graph, sp, {"useSavedCredentials": True})
    assert none_saved.status_code == 400
    sandbox_graph.put(
        _sync(sp, "/secrets"), json={"value": _credentials(sandbox.scim_url, sandbox.scim_token)}
    )
    # Credentials in the body are ignored when the saved ones are asked for.
    body = {
        "useSavedCredentials": True,
        "credentials": _credentials(sandbox.scim_url, "wrong-token-value"),
    }
    assert _validate(sandbox_graph, sp, body).status_code == 204


def _failure(client: httpx.Client, sp: dict[str, Any], url: str, token: str) -> dict[str, Any]:
    response = _validate(
        client, sp, {"useSavedCredentials": False, "credentials": _credentials(url, token)}
    )
    assert response.status_code == 400, response.text
    assert token not in response.text
    return dict(response.json()["error"])


def test_wrong_token_is_a_credential_failure(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    error = _failure(sandbox_graph, sp, sandbox.scim_url, "wrong-token-canary-1234")
    assert error["code"] == "SystemForCrossDomainIdentityManagementCredentialValidationFailure"
    assert "HTTP/401 Unauthorized" in error["message"]
    assert "secret token" in error["message"]


def test_wrong_path_is_a_404_failure(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    url = sandbox.scim_url.removesuffix("/scim")
    error = _failure(sandbox_graph, sp, url, sandbox.scim_token)
    assert (
        "An HTTP/404 Not Found response was returned rather than the expected HTTP/200 OK response"
        in error["message"]
    )
    assert sandbox.scim_token not in str(sandbox.requests())


def test_http_url_is_refused_without_a_request(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    sandbox.clear_requests()
    error = _failure(
        sandbox_graph, sp, sandbox.scim_url.replace("https://", "http://"), sandbox.scim_token
    )
    assert error["code"] == "SystemForCrossDomainIdentityManagementInvalidTenantUrl"
    assert "HTTPS" in error["message"]
    assert sandbox.requests("iru") == []


def test_unreachable_port_is_its_own_failure(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    error = _failure(
        sandbox_graph, sp, f"https://127.0.0.1:{_free_port()}/api/v1/scim", sandbox.scim_token
    )
    assert error["code"] == "SystemForCrossDomainIdentityManagementServiceUnreachable"
    assert "Could not connect" in error["message"]


def test_unresolvable_host(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    error = _failure(
        sandbox_graph, sp, "https://no-such-host.invalid/api/v1/scim", sandbox.scim_token
    )
    assert error["code"] == "SystemForCrossDomainIdentityManagementServiceUnreachable"


def test_other_http_statuses_are_reported_with_the_status(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    # Graph's own URL answers /Users with a JSON 401: reported as a credential failure.
    error = _failure(sandbox_graph, sp, sandbox.graph_url, sandbox.scim_token)
    assert error["code"] == "SystemForCrossDomainIdentityManagementCredentialValidationFailure"
    # The sign-in host has no /Users at all: an HTML 404.
    error = _failure(sandbox_graph, sp, sandbox.authority, sandbox.scim_token)
    assert "HTTP/404 Not Found" in error["message"]


def _serve(sandbox: Sandbox, app: Any, ca: SandboxCA | None = None) -> HttpsServer:
    assert sandbox.ca is not None
    server = HttpsServer("other", app, (ca or sandbox.ca).server_context(), sandbox.redactor)
    server.start()
    return server


def _html_everywhere(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<!doctype html><title>Sign in</title>"]


def test_a_web_page_instead_of_scim_is_its_own_failure(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    server = _serve(sandbox, _html_everywhere)
    try:
        error = _failure(sandbox_graph, sp, server.origin + "/portal", sandbox.scim_token)
    finally:
        server.stop()
    assert error["code"] == "SystemForCrossDomainIdentityManagementUnexpectedResponse"
    assert "not with a SCIM ListResponse" in error["message"]


def test_an_untrusted_certificate_is_a_tls_failure(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    server = _serve(sandbox, _html_everywhere, ca=SandboxCA())
    try:
        error = _failure(sandbox_graph, sp, server.origin + "/scim", sandbox.scim_token)
    finally:
        server.stop()
    assert error["code"] == "SystemForCrossDomainIdentityManagementCertificateValidationFailure"
    assert "not trusted" in error["message"]


def test_an_endpoint_that_ignores_the_filter_fails(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any], sandbox_scim: httpx.Client
) -> None:
    def users_everywhere(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/scim+json")])
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1,
            "Resources": [{"id": "1", "userName": "someone"}],
        }
        return [json.dumps(body).encode()]

    server = _serve(sandbox, users_everywhere)
    try:
        error = _failure(sandbox_graph, sp, server.origin + "/scim", sandbox.scim_token)
    finally:
        server.stop()
    assert "filter" in error["message"]


def test_missing_base_address(sandbox_graph: httpx.Client, sp: dict[str, Any]) -> None:
    response = _validate(
        sandbox_graph, sp, {"credentials": [{"key": "SecretToken", "value": "abcdefgh"}]}
    )
    assert response.status_code == 400
    assert "BaseAddress" in response.json()["error"]["message"]


def test_validate_on_unknown_job_is_404(
    sandbox_graph: httpx.Client, sandbox: Sandbox, sp: dict[str, Any]
) -> None:
    body = {"credentials": _credentials(sandbox.scim_url, sandbox.scim_token)}
    assert _validate(sandbox_graph, sp, body, job="scim.missing").status_code == 404
