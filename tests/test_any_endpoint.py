"""RUNBOOK_AUTHORITY / RUNBOOK_GRAPH_URL / RUNBOOK_CA_BUNDLE work for any HTTPS endpoint.

A separate HTTPS server, with its own CA, host name and path prefixes, serves the token and
Graph contracts by relaying to the sandbox. The runbook is pointed at it through the settings
alone; nothing in the library knows it is not the sandbox.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from runbook_lib import Runbook, load_settings
from runbook_lib.steps import ConfigureProvisioning, Connect, CreateEnterpriseApp

HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


class Relay:
    """Maps /login/* to the sandbox's authority and /msgraph/* to its Graph host."""

    def __init__(self, sandbox, public_origin: str) -> None:
        graph_origin = sandbox.graph_url.rsplit("/v1.0", 1)[0]
        self.routes = {"/login": sandbox.authority, "/msgraph": graph_origin}
        self.public = public_origin
        self.client = httpx.Client(verify=sandbox.client_ssl_context(), timeout=30)

    def _rewrite(self, text: str) -> str:
        for prefix, upstream in self.routes.items():
            text = text.replace(upstream, self.public + prefix)
        return text

    def __call__(self, environ, start_response):
        request = Request(environ)
        for prefix, upstream in self.routes.items():
            if request.path.startswith(prefix + "/"):
                url = upstream + request.full_path[len(prefix) :].rstrip("?")
                break
        else:
            return Response("not here", status=404)(environ, start_response)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}
        }
        upstream_response = self.client.request(
            request.method, url, headers=headers, content=request.get_data()
        )
        body = self._rewrite(upstream_response.text)
        out_headers = [
            (k, v) for k, v in upstream_response.headers.items() if k.lower() not in HOP_BY_HOP
        ]
        return Response(body, status=upstream_response.status_code, headers=out_headers)(
            environ, start_response
        )


@pytest.fixture
def relay_env(sandbox, tmp_path: Path) -> Iterator[dict[str, str]]:
    ca = trustme.CA(organization_name="Another CA")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    server = make_server(
        "localhost", 0, lambda e, s: app(e, s), threaded=True, ssl_context=server_ctx
    )
    origin = f"https://localhost:{server.port}"
    app = Relay(sandbox, origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bundle = tmp_path / "trust.pem"
    # The relay's CA for sign-in and Graph; the sandbox's for the Iru SCIM pre-flight.
    bundle.write_bytes(ca.cert_pem.bytes() + Path(sandbox.ca_path).read_bytes())
    env = {
        **sandbox.env(),
        "RUNBOOK_AUTHORITY": f"{origin}/login",
        "RUNBOOK_GRAPH_URL": f"{origin}/msgraph/v1.0",
        "RUNBOOK_CA_BUNDLE": str(bundle),
    }
    try:
        yield env
    finally:
        server.shutdown()
        app.client.close()


def test_runbook_steps_work_through_another_https_endpoint(relay_env, sandbox, monkeypatch) -> None:
    for key, value in relay_env.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as rb:
        assert rb.settings.graph_url.startswith("https://localhost:")
        assert Connect(rb).run().ok
        assert CreateEnterpriseApp(rb).run().ok
        assert ConfigureProvisioning(rb).run().ok
    graph_paths = [r.path for r in sandbox.requests("graph")]
    assert any(p.endswith("/synchronization/secrets") for p in graph_paths)
    assert sandbox.secrets(sandbox.service_principals()[0]["id"])["BaseAddress"] == sandbox.scim_url


def test_the_sandbox_ca_alone_does_not_trust_the_other_endpoint(
    relay_env, sandbox, monkeypatch
) -> None:
    from runbook_lib import SignInError

    for key, value in {**relay_env, "RUNBOOK_CA_BUNDLE": str(sandbox.ca_path)}.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as rb, pytest.raises(SignInError) as info:
        rb.graph.get("servicePrincipals")
    assert "RUNBOOK_CA_BUNDLE" in info.value.remediation
