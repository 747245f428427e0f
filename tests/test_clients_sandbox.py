"""The Graph and SCIM clients and sign-in, against the sandbox over real HTTPS."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from pydantic import SecretStr
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from runbook_lib import (
    ConfigurationError,
    GraphAuthError,
    GraphNotFound,
    IruScimClient,
    PreflightError,
    Runbook,
    SignInError,
    load_settings,
)
from runbook_lib._tls import ssl_context

TEMPLATE = "applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate"


@pytest.fixture
def rb(sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runbook]:
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as runbook:
        yield runbook


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- sign-in ----------------------------------------------------------------------------------
def test_client_secret_sign_in_reaches_graph(rb: Runbook) -> None:
    body = rb.graph.get("servicePrincipals", **{"$top": "1"})
    # The first of the tenant's built-in service principals (no app has been created yet).
    assert [sp["displayName"] for sp in body["value"]] == ["Microsoft Graph"]
    assert "@odata.context" in body


def test_wrong_client_secret_is_a_sign_in_error_with_the_fix(sandbox, monkeypatch) -> None:
    env = sandbox.env()
    env["RUNBOOK_CLIENT_SECRET"] = "definitely-the-wrong-secret"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as rb, pytest.raises(SignInError) as info:
        rb.graph.get("servicePrincipals")
    assert info.value.aadsts == "7000215"
    assert "RUNBOOK_CLIENT_SECRET" in info.value.remediation
    assert "definitely-the-wrong-secret" not in str(info.value)


def test_missing_tenant_id_names_the_setting(sandbox, monkeypatch) -> None:
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RUNBOOK_TENANT_ID")
    with (
        Runbook(load_settings()) as rb,
        pytest.raises(ConfigurationError, match="RUNBOOK_TENANT_ID"),
    ):
        rb.graph.get("servicePrincipals")


# -- Graph ------------------------------------------------------------------------------------
def test_paging_follows_next_link(rb: Runbook) -> None:
    for i in range(5):
        rb.graph.post(TEMPLATE, {"displayName": f"Paged app {i}"})

    # Each new app hides from lists for a few reads (eventual consistency); wait it out.
    def all_listed() -> list[dict]:
        items = list(
            rb.graph.get_all(
                "servicePrincipals",
                params={"$top": "2", "$filter": "startswith(displayName,'Paged app')"},
            )
        )
        if len(items) < 5:
            raise GraphNotFound("not yet", status=404)
        return items

    items = rb.graph.wait_for(all_listed, what="five apps", interval=0.01)
    assert sorted(i["displayName"] for i in items) == [f"Paged app {i}" for i in range(5)]
    assert rb.graph.request_count >= 3 + 5  # several pages per attempt


def test_new_object_answers_404_until_replicated_and_wait_for_rides_it_out(rb: Runbook) -> None:
    created = rb.graph.post(TEMPLATE, {"displayName": "Replication test"})
    sp_id = created["servicePrincipal"]["id"]
    with pytest.raises(GraphNotFound) as info:
        rb.graph.get(f"servicePrincipals/{sp_id}")
    assert info.value.code == "Request_ResourceNotFound" and info.value.request_id
    progress: list[str] = []
    sp = rb.graph.wait_for(
        lambda: rb.graph.get(f"servicePrincipals/{sp_id}"),
        what="the app",
        interval=0.01,
        progress=progress.append,
    )
    assert sp["id"] == sp_id
    assert progress and "Waiting for the app" in progress[0]


def test_token_from_another_issuer_is_refused(sandbox) -> None:
    from runbook_lib import GraphClient

    class Bogus:
        def get_token(self, *scopes, **kw):
            from azure.core.credentials import AccessToken

            return AccessToken("not-issued-by-the-sandbox", 2_000_000_000)

    client = GraphClient(sandbox.graph_url, Bogus(), verify=ssl_context(Path(sandbox.ca_path)))
    with pytest.raises(GraphAuthError) as info:
        client.get("servicePrincipals")
    assert info.value.status == 401 and info.value.code == "InvalidAuthenticationToken"


# -- SCIM pre-flight -------------------------------------------------------------------------
def _scim(
    sandbox, url: str | None = None, token: str | None = None, ca: bool = True
) -> IruScimClient:
    env = sandbox.env()
    verify = ssl_context(Path(sandbox.ca_path)) if ca else True
    return IruScimClient(
        url or env["RUNBOOK_SCIM_URL"], SecretStr(token or env["RUNBOOK_SCIM_TOKEN"]), verify=verify
    )


def test_preflight_passes_with_the_right_url_and_token(sandbox) -> None:
    result = _scim(sandbox).preflight()
    assert result.user_probe_status == 200 and result.group_probe_status == 200


def test_preflight_wrong_token_is_401_with_token_fix(sandbox) -> None:
    with pytest.raises(PreflightError) as info:
        _scim(sandbox, token="wrong-token-123456").preflight()
    assert info.value.kind == "unauthorized" and info.value.status == 401
    assert "RUNBOOK_SCIM_TOKEN" in info.value.remediation
    assert "wrong-token-123456" not in str(info.value)


def test_preflight_missing_scim_path_is_404_with_url_fix(sandbox) -> None:
    root = sandbox.scim_url.rsplit("/api/v1/scim", 1)[0]
    with pytest.raises(PreflightError) as info:
        _scim(sandbox, url=root + "/api/v1").preflight()
    assert info.value.kind == "not_found" and info.value.status == 404
    assert "/api/v1/scim" in info.value.remediation


def test_preflight_refuses_http(sandbox) -> None:
    with pytest.raises(PreflightError) as info:
        _scim(sandbox, url=sandbox.scim_url.replace("https://", "http://")).preflight()
    assert info.value.kind == "insecure_url"


def test_preflight_connection_refused(sandbox) -> None:
    with pytest.raises(PreflightError) as info:
        _scim(sandbox, url=f"https://127.0.0.1:{_free_port()}/api/v1/scim").preflight()
    assert info.value.kind == "connection"


def test_preflight_unresolvable_host(sandbox) -> None:
    with pytest.raises(PreflightError) as info:
        _scim(sandbox, url="https://no-such-tenant.api.kandji.invalid/api/v1/scim").preflight()
    assert info.value.kind == "dns"


def test_preflight_untrusted_certificate_is_a_tls_failure(sandbox) -> None:
    with pytest.raises(PreflightError) as info:
        _scim(sandbox, ca=False).preflight()
    assert info.value.kind == "tls"
    assert "RUNBOOK_CA_BUNDLE" in info.value.remediation


def test_preflight_web_page_is_not_scim(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_ctx)

    def app(environ, start):  # a web page, such as a product sign-in page
        return Response("<html>Welcome</html>", mimetype="text/html")(environ, start)

    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=server_ctx)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pem = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(pem))
        client = IruScimClient(
            f"https://127.0.0.1:{server.port}/api/v1/scim",
            SecretStr("x" * 10),
            verify=ssl_context(pem),
        )
        with pytest.raises(PreflightError) as info:
            client.preflight()
        assert info.value.kind == "not_scim"
    finally:
        server.shutdown()


def test_preflight_flags_the_web_app_host() -> None:
    from runbook_lib._scim import _url_advice

    assert "web app host" in _url_advice("https://acme.kandji.io/api/v1/scim")
    assert "does not end in /api/v1/scim" in _url_advice("https://acme.api.kandji.io/")


def test_device_code_sign_in_shows_the_code_and_reaches_graph(sandbox, monkeypatch) -> None:
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RUNBOOK_CLIENT_SECRET")
    monkeypatch.setenv("RUNBOOK_AUTH", "device-code")
    shown: list[str] = []
    with Runbook(load_settings(), progress=shown.append) as rb:
        assert type(rb.credential).__name__ == "DeviceCodeCredential"
        found = rb.graph.get("servicePrincipals", **{"$top": "1"})["value"]
        assert [sp["displayName"] for sp in found] == ["Microsoft Graph"]  # built in
    assert len(shown) == 1 and "enter the code" in shown[0]
