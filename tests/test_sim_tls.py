"""The sandbox serves real HTTPS that only its own CA vouches for."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from runbook_lib.sim import Sandbox, SandboxConfig


def test_urls_and_settings_point_at_three_https_servers(sandbox: Sandbox) -> None:
    env = sandbox.env()
    assert set(env) == {
        "RUNBOOK_TENANT_ID",
        "RUNBOOK_CLIENT_ID",
        "RUNBOOK_CLIENT_SECRET",
        "RUNBOOK_AUTHORITY",
        "RUNBOOK_GRAPH_URL",
        "RUNBOOK_SCIM_URL",
        "RUNBOOK_SCIM_TOKEN",
        "RUNBOOK_CA_BUNDLE",
        "RUNBOOK_AUTH",
        "RUNBOOK_APP_NAME",
        "RUNBOOK_POLL_INTERVAL",
    }
    assert env["RUNBOOK_AUTHORITY"] == sandbox.authority
    assert sandbox.authority.startswith("https://127.0.0.1:")
    assert sandbox.graph_url.startswith("https://127.0.0.1:") and sandbox.graph_url.endswith(
        "/v1.0"
    )
    assert sandbox.scim_url.endswith("/api/v1/scim")
    assert env["RUNBOOK_APP_NAME"] == "Iru Endpoint SCIM (sandbox)"
    assert Path(env["RUNBOOK_CA_BUNDLE"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    ports = {
        url.rsplit(":", 1)[1].split("/")[0]
        for url in (sandbox.authority, sandbox.graph_url, sandbox.scim_url)
    }
    assert len(ports) == 3


def test_clients_trusting_the_sandbox_ca_connect(sandbox: Sandbox) -> None:
    response = httpx.get(
        sandbox.scim_url.rsplit("/api/", 1)[0] + "/", verify=sandbox.client_ssl_context()
    )
    assert response.status_code == 200


def test_the_certificate_also_covers_localhost(sandbox: Sandbox) -> None:
    url = sandbox.scim_url.replace("127.0.0.1", "localhost").rsplit("/api/", 1)[0] + "/"
    assert httpx.get(url, verify=sandbox.client_ssl_context()).status_code == 200


@pytest.mark.parametrize("which", ["authority", "graph_url", "scim_url"])
def test_clients_with_only_the_system_cas_are_refused(sandbox: Sandbox, which: str) -> None:
    with pytest.raises(httpx.ConnectError) as caught:
        httpx.get(getattr(sandbox, which), verify=True)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


def test_a_refused_handshake_does_not_block_other_clients(sandbox: Sandbox) -> None:
    for _ in range(3):
        with pytest.raises(httpx.ConnectError):
            httpx.get(sandbox.scim_url, verify=ssl.create_default_context())
    assert httpx.get(sandbox.scim_url, verify=sandbox.client_ssl_context()).status_code == 401


def test_stop_closes_the_ports_and_removes_the_private_directory() -> None:
    sb = Sandbox(SandboxConfig(seed=3)).start()
    ca_path, url = sb.ca_path, sb.scim_url
    assert sb.running
    sb.stop()
    assert not sb.running
    assert not ca_path.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, verify=False, timeout=2)
    sb.stop()  # idempotent


def test_a_given_state_dir_receives_the_ca_and_is_kept(tmp_path: Path) -> None:
    with Sandbox(SandboxConfig(state_dir=tmp_path / "state")) as sb:
        assert sb.ca_path == tmp_path / "state" / "ca.pem"
    assert (tmp_path / "state" / "ca.pem").exists()


def test_a_sandbox_is_single_use() -> None:
    sb = Sandbox()
    with sb:
        pass
    with pytest.raises(RuntimeError):
        sb.start()


def test_addresses_need_a_running_sandbox() -> None:
    with pytest.raises(RuntimeError):
        _ = Sandbox().graph_url


def test_a_taken_port_is_an_os_error_not_an_exit(sandbox: Sandbox) -> None:
    taken = int(sandbox.graph_url.split(":")[2].split("/")[0])
    with pytest.raises(OSError):
        Sandbox(SandboxConfig(graph_port=taken)).start()
