"""Every RUNBOOK_AUTH method against the sandbox's sign-in stand-in, ending in a real Graph call.

Certificates and federated tokens are made here, in the test, with ``cryptography``; the sandbox
only learns the public certificate or the federated credential (issuer, subject, audience), as
Entra would. Azure CLI is not installed here, so it is only checked that the runbook builds an
``AzureCliCredential`` and nothing else for it.
"""

from __future__ import annotations

import base64
import json
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import AzureCliCredential, WorkloadIdentityCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from runbook_lib import ConfigurationError, Runbook, SignInError, load_settings
from runbook_lib._auth import (
    GRAPH_CLI_CLIENT_ID,
    auth_method,
    get_token,
    graph_scopes,
    make_credential,
    sign_in_kind,
    sign_in_problems,
)
from runbook_lib._granted import token_claims
from runbook_lib._permissions import delegated_scopes
from runbook_lib._redact import redact
from runbook_lib.sim import Sandbox

ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:contoso/iru-runbook:environment:production"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
PASSWORD_CANARY = "canary-cert-password-5d1e8b"
SECRET_CANARY = "canary-client-secret-9c04aa~x"


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("RUNBOOK_") or key == "AZURE_FEDERATED_TOKEN_FILE":
            monkeypatch.delenv(key)
    # Nobody answers a keyring lookup or a prompt in these tests.
    monkeypatch.setattr("runbook_lib._settings._from_keyring", lambda name: None)
    monkeypatch.setattr("runbook_lib._auth._from_keyring", lambda name: None)
    monkeypatch.setattr("runbook_lib._settings._prompt", lambda label: None)


def _use(monkeypatch: pytest.MonkeyPatch, sb: Sandbox | None, **changes: str | None) -> None:
    """The sandbox's settings, then ``changes`` (RUNBOOK_ prefix added; None removes)."""
    env = sb.env() if sb is not None else {}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for name, value in changes.items():
        key = name if name.startswith("AZURE_") else f"RUNBOOK_{name.upper()}"
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)


def _graph_call(rb: Runbook) -> dict[str, Any]:
    return rb.graph.get("servicePrincipals", **{"$top": "1"})


def _certificate(name: str = "runbook-test") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _public_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_file(
    path: Path, key: rsa.RSAPrivateKey, cert: x509.Certificate, password: str | None
) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path.write_bytes(key_pem + _public_pem(cert))
    return path


def _pfx_file(path: Path, key: rsa.RSAPrivateKey, cert: x509.Certificate, password: str) -> Path:
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"runbook",
            key,
            cert,
            None,
            serialization.BestAvailableEncryption(password.encode()),
        )
    )
    return path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(claims: dict[str, Any], key: rsa.RSAPrivateKey, header: dict[str, Any]) -> str:
    head = _b64url(json.dumps({"typ": "JWT", "alg": "RS256", **header}).encode())
    body = _b64url(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64url(signature)}"


def _federated_token(subject: str = SUBJECT, **overrides: Any) -> str:
    """A pipeline's OIDC token, signed by a key of its own issuer (the sandbox does not fetch
    the issuer's keys, so any key will do)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": EXCHANGE_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        **overrides,
    }
    return _jwt(claims, key, {"kid": "pipeline-key"})


def _token_url(sb: Sandbox) -> str:
    return f"{sb.authority}/{sb.tenant_id}/oauth2/v2.0/token"


def _post_assertion(sb: Sandbox, assertion: str) -> httpx.Response:
    return httpx.post(
        _token_url(sb),
        data={
            "grant_type": "client_credentials",
            "client_id": sb.client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=sb.client_ssl_context(),
    )


def _full_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


# -- client secret ------------------------------------------------------------------------------


def test_client_secret_sign_in_reaches_graph(sandbox: Sandbox, monkeypatch) -> None:
    _use(monkeypatch, sandbox)
    settings = load_settings()
    assert settings.auth == "client-secret"
    assert auth_method(settings) == "client-secret" and sign_in_kind(settings) == "application"
    assert graph_scopes(settings) == ("https://graph.microsoft.com/.default",)
    with Runbook(settings) as rb:
        assert type(rb.credential).__name__ == "ClientSecretCredential"
        assert isinstance(_graph_call(rb)["value"], list)
        access = rb.graph.access_token()
        claims = token_claims(access)
    assert redact(f"Bearer {access}") == "Bearer ***"  # registered the moment it arrived
    last = sandbox.sign_ins()[-1]
    assert (last.grant, last.credential) == ("client_credentials", "client_secret")
    assert claims["tid"] == sandbox.tenant_id and claims["appid"] == sandbox.client_id
    assert set(claims["roles"]) == set(last.granted) and "scp" not in claims


def test_wrong_client_secret_never_shows_the_secret(sandbox: Sandbox, monkeypatch) -> None:
    _use(monkeypatch, sandbox, client_secret=SECRET_CANARY)
    with Runbook(load_settings()) as rb, pytest.raises(SignInError) as info:
        _graph_call(rb)
    assert info.value.aadsts == "7000215"
    for text in (str(info.value), info.value.remediation, _full_traceback(info.value)):
        assert SECRET_CANARY not in text


# -- certificate --------------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["pem", "pfx"])
def test_certificate_sign_in_reaches_graph(
    sandbox: Sandbox, monkeypatch, tmp_path: Path, container: str
) -> None:
    key, cert = _certificate()
    thumbprint = sandbox.register_certificate(_public_pem(cert))
    assert thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    make = _pem_file if container == "pem" else _pfx_file
    path = make(tmp_path / f"runbook.{container}", key, cert, PASSWORD_CANARY)
    _use(
        monkeypatch,
        sandbox,
        auth="auto",
        client_secret=None,
        client_certificate=str(path),
        client_certificate_password=PASSWORD_CANARY,
    )
    settings = load_settings()
    assert auth_method(settings) == "certificate" and sign_in_kind(settings) == "application"
    assert redact(PASSWORD_CANARY) == "***"
    with Runbook(settings) as rb:
        assert type(rb.credential).__name__ == "CertificateCredential"
        assert isinstance(_graph_call(rb)["value"], list)
        claims = token_claims(rb.graph.access_token())
    last = sandbox.sign_ins()[-1]
    assert (last.grant, last.credential) == ("client_credentials", "certificate")
    assert last.requested == ("https://graph.microsoft.com/.default",)
    assert claims["appidacr"] == "2" and set(claims["roles"]) == set(last.granted)


def test_certificate_from_the_sandbox_config(sandbox_factory, monkeypatch, tmp_path) -> None:
    key, cert = _certificate()
    sb = sandbox_factory(client_certificate_pem=_public_pem(cert))
    path = _pem_file(tmp_path / "runbook.pem", key, cert, None)
    _use(monkeypatch, sb, auth="certificate", client_secret=None, client_certificate=str(path))
    with Runbook(load_settings()) as rb:
        assert isinstance(_graph_call(rb)["value"], list)


def test_unregistered_certificate_is_refused_with_the_fix(
    sandbox: Sandbox, monkeypatch, tmp_path: Path
) -> None:
    _, registered = _certificate("registered")
    sandbox.register_certificate(_public_pem(registered))
    key, other = _certificate("not-uploaded")
    path = _pem_file(tmp_path / "other.pem", key, other, PASSWORD_CANARY)
    _use(
        monkeypatch,
        sandbox,
        auth="certificate",
        client_certificate=str(path),
        client_certificate_password=PASSWORD_CANARY,
    )
    with Runbook(load_settings()) as rb, pytest.raises(SignInError) as info:
        _graph_call(rb)
    assert info.value.aadsts == "700027"
    assert "not registered" in info.value.message
    assert "Certificates & secrets" in info.value.remediation
    assert "RUNBOOK_CLIENT_CERTIFICATE" in info.value.remediation
    for text in (str(info.value), info.value.remediation, _full_traceback(info.value)):
        assert PASSWORD_CANARY not in text


def test_a_certificate_signed_by_another_key_fails_signature_validation(sandbox: Sandbox) -> None:
    _, cert = _certificate()
    sandbox.register_certificate(_public_pem(cert))
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": sandbox.client_id,
        "sub": sandbox.client_id,
        "aud": _token_url(sandbox),
        "exp": now + 600,
        "nbf": now,
        "jti": "1",
    }
    header = {"x5t": _b64url(cert.fingerprint(hashes.SHA1()))}
    response = _post_assertion(sandbox, _jwt(claims, impostor, header))
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [700027]
    assert "signature validation" in body["error_description"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"aud": "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"}, 700023),
        ({"iss": "11111111-2222-4333-8444-555555555555"}, 700021),
        ({"exp": 1_600_000_000}, 700024),
    ],
)
def test_certificate_assertion_claims_are_checked(
    sandbox: Sandbox, change: dict[str, Any], code: int
) -> None:
    key, cert = _certificate()
    sandbox.register_certificate(_public_pem(cert))
    now = int(time.time())
    claims = {
        "iss": sandbox.client_id,
        "sub": sandbox.client_id,
        "aud": _token_url(sandbox),
        "exp": now + 600,
        "nbf": now,
        **change,
    }
    if "iss" in change:
        claims["sub"] = change["iss"]
        # A foreign issuer is treated as a federated token; keep it a self-issued one.
        claims["iss"] = sandbox.client_id
    header = {"x5t#S256": _b64url(cert.fingerprint(hashes.SHA256()))}
    response = _post_assertion(sandbox, _jwt(claims, key, header))
    assert response.json()["error_codes"] == [code], response.text


def test_encrypted_key_without_password_names_the_variable(
    sandbox: Sandbox, monkeypatch, tmp_path: Path
) -> None:
    key, cert = _certificate()
    path = _pem_file(tmp_path / "locked.pem", key, cert, PASSWORD_CANARY)
    _use(monkeypatch, sandbox, auth="certificate", client_certificate=str(path))
    with pytest.raises(ConfigurationError) as info:
        make_credential(load_settings())
    assert "RUNBOOK_CLIENT_CERTIFICATE_PASSWORD" in info.value.message
    assert "keyring set runbook client_certificate_password" in info.value.remediation


def test_wrong_certificate_password_is_named_and_never_shown(
    sandbox: Sandbox, monkeypatch, tmp_path: Path
) -> None:
    key, cert = _certificate()
    path = _pfx_file(tmp_path / "locked.pfx", key, cert, "the-real-password-123")
    _use(
        monkeypatch,
        sandbox,
        auth="certificate",
        client_certificate=str(path),
        client_certificate_password=PASSWORD_CANARY,
    )
    with pytest.raises(ConfigurationError) as info:
        make_credential(load_settings())
    assert "RUNBOOK_CLIENT_CERTIFICATE_PASSWORD" in info.value.message
    for text in (str(info.value), info.value.remediation, _full_traceback(info.value)):
        assert PASSWORD_CANARY not in text


def test_certificate_password_is_refused_as_a_parameter() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(client_certificate_password=PASSWORD_CANARY)
    assert "RUNBOOK_CLIENT_CERTIFICATE_PASSWORD" in str(info.value)
    assert PASSWORD_CANARY not in str(info.value)


# -- workload identity --------------------------------------------------------------------------


def test_workload_identity_sign_in_reaches_graph(
    sandbox: Sandbox, monkeypatch, tmp_path: Path
) -> None:
    sandbox.add_federated_credential(ISSUER, SUBJECT)
    token = _federated_token()
    token_file = tmp_path / "federated-token"
    token_file.write_text(token)
    _use(
        monkeypatch,
        sandbox,
        auth="auto",
        client_secret=None,
        federated_token_file=str(token_file),
    )
    settings = load_settings()
    assert auth_method(settings) == "workload-identity"
    assert sign_in_kind(settings) == "application"
    with Runbook(settings) as rb:
        assert isinstance(rb.credential, WorkloadIdentityCredential)
        assert isinstance(_graph_call(rb)["value"], list)
    last = sandbox.sign_ins()[-1]
    assert (last.grant, last.credential) == ("client_credentials", "federated")
    # The federated token is a credential: it is masked wherever the library prints.
    assert redact(f"read {token}") == "read ***"


def test_azure_federated_token_file_is_the_fallback(monkeypatch, tmp_path: Path) -> None:
    token_file = tmp_path / "azure-token"
    token_file.write_text(_federated_token())
    _use(monkeypatch, None, AZURE_FEDERATED_TOKEN_FILE=str(token_file))
    settings = load_settings()
    assert settings.federated_token_file == token_file
    assert auth_method(settings) == "workload-identity"
    own = tmp_path / "runbook-token"
    own.write_text("x")
    _use(monkeypatch, None, federated_token_file=str(own))
    assert load_settings().federated_token_file == own


def test_wrong_subject_is_refused_with_the_fix(
    sandbox: Sandbox, monkeypatch, tmp_path: Path
) -> None:
    sandbox.add_federated_credential(ISSUER, SUBJECT)
    token_file = tmp_path / "federated-token"
    token_file.write_text(_federated_token(subject="repo:contoso/iru-runbook:ref:refs/heads/dev"))
    _use(
        monkeypatch,
        sandbox,
        auth="workload-identity",
        federated_token_file=str(token_file),
    )
    with Runbook(load_settings()) as rb, pytest.raises(SignInError) as info:
        _graph_call(rb)
    assert info.value.aadsts == "700213"
    assert "refs/heads/dev" in info.value.message  # Entra names the subject it was given
    assert "federated credential" in info.value.remediation
    assert "api://AzureADTokenExchange" in info.value.remediation


@pytest.mark.parametrize(
    ("registered", "claims", "code"),
    [
        (False, {}, 70021),
        (True, {"iss": "https://gitlab.example.com"}, 700211),
        (True, {"aud": "api://SomethingElse"}, 700212),
        (True, {"exp": 1_600_000_000, "nbf": 1_599_999_000}, 700024),
    ],
)
def test_federated_tokens_are_matched_like_entra(
    sandbox: Sandbox, registered: bool, claims: dict[str, Any], code: int
) -> None:
    if registered:
        sandbox.add_federated_credential(ISSUER, SUBJECT)
    response = _post_assertion(sandbox, _federated_token(**claims))
    assert response.status_code in (400, 401)
    assert response.json()["error_codes"] == [code], response.text


def test_a_malformed_assertion_is_aadsts50027(sandbox: Sandbox) -> None:
    response = _post_assertion(sandbox, "not-a-jwt")
    assert response.json()["error_codes"] == [50027]


# -- device code --------------------------------------------------------------------------------


def test_device_code_through_graph_cli_asks_for_named_scopes(sandbox: Sandbox, monkeypatch) -> None:
    _use(monkeypatch, sandbox, auth=None, client_id=None, client_secret=None)
    settings = load_settings()
    assert auth_method(settings) == "device-code" and sign_in_kind(settings) == "delegated"
    wanted = delegated_scopes("https://graph.microsoft.com")
    assert graph_scopes(settings) == wanted
    shown: list[str] = []
    with Runbook(settings, progress=shown.append) as rb:
        assert type(rb.credential).__name__ == "DeviceCodeCredential"
        assert isinstance(_graph_call(rb)["value"], list)
        claims = token_claims(rb.graph.access_token())
    assert len(shown) == 1 and "enter the code" in shown[0]
    last = sandbox.sign_ins()[-1]
    assert last.client_id == GRAPH_CLI_CLIENT_ID and last.grant == "device_code"
    resource_scopes = [s for s in last.requested if "://" in s]
    assert set(resource_scopes) == set(wanted)
    assert not any(s.endswith("/.default") for s in last.requested)
    names = {s.rsplit("/", 1)[1] for s in wanted}
    # Consented on first sign-in, recorded for Microsoft Graph Command Line Tools.
    assert names <= set(sandbox.state.grants.delegated_scopes(GRAPH_CLI_CLIENT_ID))
    assert names <= set(last.granted)
    assert names <= set(claims["scp"].split())
    assert claims["appid"] == GRAPH_CLI_CLIENT_ID and claims["oid"]
    assert any(r.path.endswith("/oauth2/v2.0/devicecode") for r in sandbox.requests("login"))


def test_device_code_uses_runbook_client_id_when_set(monkeypatch) -> None:
    captured: dict[str, Any] = {}

    class Recorder:
        def __init__(self, **kwargs: Any) -> None:
            captured.update(kwargs)

    monkeypatch.setattr("azure.identity.DeviceCodeCredential", Recorder)
    client = "3f1c2b4a-1111-4222-8333-444455556666"
    _use(monkeypatch, None, tenant_id="contoso.onmicrosoft.com", auth="device-code")
    make_credential(load_settings())
    assert captured["client_id"] == GRAPH_CLI_CLIENT_ID
    _use(monkeypatch, None, client_id=client)
    messages: list[str] = []
    make_credential(load_settings(), prompt=messages.append)
    assert captured["client_id"] == client
    assert "disable_instance_discovery" not in captured  # a Microsoft authority
    captured["prompt_callback"]("https://microsoft.com/devicelogin", "ABCD1234", datetime.now(UTC))
    assert "ABCD1234" in messages[0]


def test_device_code_on_a_national_cloud_names_its_graph_host(monkeypatch) -> None:
    _use(
        monkeypatch,
        None,
        tenant_id="contoso.onmicrosoft.us",
        auth="device-code",
        graph_url="https://graph.microsoft.us/v1.0",
    )
    scopes = graph_scopes(load_settings())
    assert scopes and all(s.startswith("https://graph.microsoft.us/") for s in scopes)
    _use(monkeypatch, None, auth="client-secret")
    assert graph_scopes(load_settings()) == ("https://graph.microsoft.us/.default",)


# -- Azure CLI ----------------------------------------------------------------------------------


def test_azure_cli_is_azure_cli_alone(monkeypatch) -> None:
    _use(
        monkeypatch,
        None,
        tenant_id="contoso.onmicrosoft.com",
        auth="azure-cli",
        client_id="3f1c2b4a-1111-4222-8333-444455556666",
        client_secret=SECRET_CANARY,
    )
    settings = load_settings()
    credential = make_credential(settings)
    assert type(credential) is AzureCliCredential  # no chain, nothing else tried
    assert auth_method(settings) == "azure-cli" and sign_in_kind(settings) == "delegated"
    assert graph_scopes(settings) == ("https://graph.microsoft.com/.default",)


# -- resolution and validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"secret", "certificate", "token"}, "client-secret"),
        ({"certificate", "token"}, "certificate"),
        ({"token"}, "workload-identity"),
        ({"azure-token"}, "workload-identity"),
        (set(), "device-code"),
    ],
)
def test_auto_resolution_order(
    monkeypatch, tmp_path: Path, present: set[str], expected: str
) -> None:
    cert = tmp_path / "cert.pem"
    token = tmp_path / "token"
    cert.write_text("x")
    token.write_text("x")
    _use(
        monkeypatch,
        None,
        auth="auto",
        client_secret=SECRET_CANARY if "secret" in present else None,
        client_certificate=str(cert) if "certificate" in present else None,
        federated_token_file=str(token) if "token" in present else None,
        AZURE_FEDERATED_TOKEN_FILE=str(token) if "azure-token" in present else None,
    )
    assert auth_method(load_settings()) == expected


def test_an_explicit_method_wins_over_what_is_configured(monkeypatch) -> None:
    _use(monkeypatch, None, auth="Device_Code", client_secret=SECRET_CANARY)
    settings = load_settings()
    assert settings.auth == "device-code" and auth_method(settings) == "device-code"


def test_an_unknown_method_is_named_with_the_others(monkeypatch) -> None:
    _use(monkeypatch, None, auth="password", tenant_id="not a tenant!")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    text = str(info.value)
    assert "RUNBOOK_AUTH" in text and "workload-identity" in text and "'password'" in text
    assert "RUNBOOK_TENANT_ID" in text  # every problem at once


@pytest.mark.parametrize(
    ("method", "variables"),
    [
        (
            "certificate",
            ["RUNBOOK_TENANT_ID", "RUNBOOK_CLIENT_ID", "RUNBOOK_CLIENT_CERTIFICATE"],
        ),
        (
            "client-secret",
            ["RUNBOOK_TENANT_ID", "RUNBOOK_CLIENT_ID", "RUNBOOK_CLIENT_SECRET"],
        ),
        (
            "workload-identity",
            ["RUNBOOK_TENANT_ID", "RUNBOOK_CLIENT_ID", "RUNBOOK_FEDERATED_TOKEN_FILE"],
        ),
    ],
)
def test_every_missing_setting_is_named_at_once(
    monkeypatch, method: str, variables: list[str]
) -> None:
    _use(monkeypatch, None, auth=method)
    settings = load_settings()
    assert len(sign_in_problems(settings)) == len(variables)
    with pytest.raises(ConfigurationError) as info:
        make_credential(settings)
    for variable in variables:
        assert variable in info.value.message
        assert variable in info.value.remediation
    assert f"RUNBOOK_AUTH={method}" in info.value.message


def test_a_missing_certificate_file_is_named(monkeypatch, tmp_path: Path) -> None:
    _use(
        monkeypatch,
        None,
        tenant_id="contoso.onmicrosoft.com",
        client_id="3f1c2b4a-1111-4222-8333-444455556666",
        client_certificate=str(tmp_path / "missing.pem"),
    )
    settings = load_settings()
    assert auth_method(settings) == "certificate"
    with pytest.raises(ConfigurationError, match="missing.pem"):
        make_credential(settings)


def test_device_code_needs_only_the_tenant(monkeypatch) -> None:
    _use(monkeypatch, None, auth="device-code")
    problems = sign_in_problems(load_settings())
    assert [p for p, _ in problems] == ["RUNBOOK_TENANT_ID is not set"]


# -- error mapping ------------------------------------------------------------------------------


class _Failing:
    def __init__(self, message: str) -> None:
        self.message = message

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise ClientAuthenticationError(message=self.message)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("AADSTS700213: No matching federated identity record found", "700213"),
        ("AADSTS70021: No matching federated identity record found", "70021"),
        ("AADSTS7000215: Invalid client secret provided.", "7000215"),
        ("AADSTS700027: The certificate with identifier used ...", "700027"),
        ("AADSTS65001: The user or administrator has not consented", "65001"),
        ("AADSTS53003: Access has been blocked by Conditional Access policies.", "53003"),
        ("AADSTS50105: The signed in user is not assigned to a role", "50105"),
    ],
)
def test_aadsts_codes_map_to_their_own_fix(text: str, code: str) -> None:
    with pytest.raises(SignInError) as info:
        get_token(_Failing(text), "https://graph.microsoft.com/.default")  # type: ignore[arg-type]
    assert info.value.aadsts == code
    assert info.value.remediation and info.value.remediation.count(".") >= 1
    assert "https://graph.microsoft.com" in info.value.message


def test_the_docs_consent_one_liner_lists_the_scopes_device_code_asks_for() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "settings.md").read_text()
    section = docs.split("## Sign-in", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in section.splitlines() if "Connect-MgGraph -Scopes" in x)
    listed = set(line.split("-Scopes", 1)[1].strip(" `.").split(","))
    assert listed == {s.rsplit("/", 1)[1] for s in delegated_scopes()}
