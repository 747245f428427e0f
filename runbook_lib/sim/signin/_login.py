"""The Entra ID sign-in stand-in (``login.microsoftonline.com``).

Just enough of the v2.0 endpoints for msal and azure-identity to sign in against it
unchanged: OpenID discovery, client credentials (app-only) and the device code flow
(an admin at a notebook). Errors carry Entra's JSON shape and its AADSTS codes,
because those codes are what admins search for.

App-only sign-in proves the app registration's identity in one of three ways, as in
Entra:

* a client secret;
* a certificate: a JWT client assertion (``iss`` = ``sub`` = client id, ``aud`` = the
  token endpoint) signed with the private key of a certificate registered on the app
  (:meth:`AppCredentials.add_certificate`), found by its ``x5t`` / ``x5t#S256``
  thumbprint and verified with ``cryptography``;
* a federated (workload identity) token: a JWT from an external issuer whose ``iss``,
  ``sub`` and ``aud`` match a federated identity credential on the app
  (:meth:`AppCredentials.add_federated_credential`). Entra also checks the external
  issuer's signature against its published keys; the sandbox cannot reach those, so it
  checks the claims and the expiry only.

The device code flow accepts the app registration (with public client flows allowed)
and Microsoft Graph Command Line Tools, Microsoft's public client that exists in every
tenant. It approves itself: the first token poll answers ``authorization_pending`` (so
the client's polling loop really runs), the next one succeeds as the sandbox admin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ..tenant._grants import DIRECTORY_ROLE_TEMPLATES, GRAPH_CLI_CLIENT_ID
from ..tenant._state import TenantState, utc_now
from ..tenant._tokens import ACCESS_TOKEN_LIFETIME, DEVICE_CODE_LIFETIME
from ..tenant._well_known import GRAPH_APP_ID, GRAPH_RESOURCE

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "FEDERATED_AUDIENCE",
    "JWT_BEARER",
    "AppCredentials",
    "FederatedCredential",
    "LoginApp",
]

_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_logger = logging.getLogger("runbook_lib.sim")

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
"""The ``client_assertion_type`` of certificate and federated sign-in."""
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
"""The audience Entra expects on a federated (workload identity) token."""
# Public clients that exist in every tenant without an app registration of the admin's.
_FIRST_PARTY_PUBLIC_CLIENTS = {GRAPH_CLI_CLIENT_ID: "Microsoft Graph Command Line Tools"}
# Clock skew Entra tolerates on assertion times.
_SKEW = 300
_FIC_HELP = (
    "Please check your federated identity credential Subject, Audience and Issuer against "
    "the presented assertion. https://learn.microsoft.com/entra/workload-id/"
    "workload-identity-federation"
)


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential on the app registration (workload identity).

    :param issuer: the external token issuer, e.g. ``https://token.actions.githubusercontent.com``.
    :param subject: the ``sub`` the pipeline's token carries (compared case-sensitively).
    :param audience: the ``aud`` the token must carry.
    :param name: a label, as the portal asks for one.
    """

    issuer: str
    subject: str
    audience: str = FEDERATED_AUDIENCE
    name: str = "sandbox-federated-credential"


def _thumbprints(cert: x509.Certificate) -> tuple[str, str]:
    """The certificate's ``x5t`` (SHA-1) and ``x5t#S256`` (SHA-256), base64url as in a JWT."""
    der = cert.public_bytes(Encoding.DER)
    return (
        _b64url(hashlib.sha1(der).digest()),  # noqa: S324 - a thumbprint, as Entra uses it
        _b64url(hashlib.sha256(der).digest()),
    )


class AppCredentials:
    """The certificates and federated credentials registered on the sandbox's app.

    Thread-safe: tests register credentials while the servers answer requests.
    """

    def __init__(self) -> None:
        self._certificates: dict[str, x509.Certificate] = {}
        self._federated: list[FederatedCredential] = []
        self._lock = threading.Lock()

    def add_certificate(self, data: bytes) -> str:
        """Register the certificate(s) in ``data`` (PEM, or one DER certificate).

        Returns the SHA-1 thumbprint of the first one, in hex as the portal shows it.
        A private key in the same PEM is ignored: only the public part is uploaded.
        """
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
        with self._lock:
            for cert in certs:
                sha1, sha256 = _thumbprints(cert)
                self._certificates[sha1] = cert
                self._certificates[sha256] = cert
        der = certs[0].public_bytes(Encoding.DER)
        return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - a thumbprint

    def remove_certificates(self) -> None:
        """Forget every registered certificate."""
        with self._lock:
            self._certificates.clear()

    def certificate(self, *thumbprints: str | None) -> x509.Certificate | None:
        """The registered certificate with any of these base64url thumbprints."""
        with self._lock:
            for thumbprint in thumbprints:
                if thumbprint and thumbprint in self._certificates:
                    return self._certificates[thumbprint]
        return None

    def add_federated_credential(self, credential: FederatedCredential) -> None:
        """Trust tokens whose issuer, subject and audience match ``credential``."""
        with self._lock:
            self._federated.append(credential)

    def federated_credentials(self) -> list[FederatedCredential]:
        """The registered federated identity credentials."""
        with self._lock:
            return list(self._federated)


class _AadError(Exception):
    """An OAuth error as Entra formats it (status, error, AADSTS code, text)."""

    def __init__(self, status: int, error: str, aadsts: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.text = text


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parse_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, signing input and signature of a compact JWT (AADSTS50027 if not)."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError("not JSON objects")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _AadError(
            400, "invalid_request", 50027,
            "JWT token is invalid or malformed.",
        ) from None  # fmt: skip
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), signature


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%m/%d/%Y %H:%M:%S")


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body),
        status=status,
        content_type="application/json; charset=utf-8",
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


def _resource_of(scope: str) -> str | None:
    """The resource a scope belongs to: bare names are Graph's, as in Entra."""
    if scope in _OIDC_SCOPES:
        return None
    if "://" in scope or scope.startswith(GRAPH_APP_ID):
        resource, _, _ = scope.rpartition("/")
        return (
            GRAPH_RESOURCE if resource.rstrip("/") in (GRAPH_RESOURCE, GRAPH_APP_ID) else resource
        )
    return GRAPH_RESOURCE


class LoginApp:
    """WSGI app answering like the Entra ID v2.0 endpoints for one tenant.

    ``origin`` (``https://127.0.0.1:<port>``) must be set once the server is bound,
    since the discovery document points clients back at it.
    """

    def __init__(self, state: TenantState, credentials: AppCredentials | None = None) -> None:
        self.state = state
        self.credentials = credentials or AppCredentials()
        self.origin = ""
        self.graph_host = "graph.microsoft.com"
        self.url_map = Map(
            [
                Rule(
                    "/<tenant>/v2.0/.well-known/openid-configuration",
                    methods=["GET"],
                    endpoint=self.openid_configuration,
                ),
                Rule("/<tenant>/oauth2/v2.0/token", methods=["POST"], endpoint=self.token),
                Rule(
                    "/<tenant>/oauth2/v2.0/devicecode", methods=["POST"], endpoint=self.device_code
                ),
                Rule("/<tenant>/discovery/v2.0/keys", methods=["GET"], endpoint=self.keys),
                Rule("/<tenant>/oauth2/v2.0/authorize", methods=["GET"], endpoint=self.authorize),
                Rule("/devicelogin", methods=["GET"], endpoint=self.device_login_page),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )

    # -- helpers --------------------------------------------------------------------

    def _error(self, error: _AadError) -> Response:
        trace_id = self.state.ids.uuid("login-requests")
        correlation_id = self.state.ids.uuid("login-requests")
        timestamp = utc_now().strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{error.aadsts}: {error.text} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {timestamp}"
        )
        body = {
            "error": error.error,
            "error_description": self.state.redactor.redact(description),
            "error_codes": [error.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.origin}/error?code={error.aadsts}",
        }
        return _json(body, status=error.status)

    def _check_tenant(self, tenant: str) -> None:
        if tenant.lower() not in (self.state.tenant_id, self.state.tenant_domain):
            raise _AadError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant.",
            )

    def _check_client(self, client_id: str, *, public: bool = False) -> None:
        """Refuse unknown clients; ``public`` also admits Microsoft's first-party public ones."""
        if not client_id:
            raise _AadError(
                400, "invalid_request", 900144,
                "The request body must contain the following parameter: 'client_id'.",
            )  # fmt: skip
        if public and client_id.lower() in _FIRST_PARTY_PUBLIC_CLIENTS:
            return
        if client_id.lower() != self.state.client_id:
            raise _AadError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.state.tenant_domain}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.",
            )

    def _client_credentials_from(self, request: Request) -> tuple[str, str | None]:
        """client_id / client_secret from the form or from HTTP Basic auth."""
        client_id = request.form.get("client_id", "")
        secret = request.form.get("client_secret")
        scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _AadError(
                    401, "invalid_client", 7000216, "The client credentials are malformed."
                ) from None
            basic_id, _, basic_secret = decoded.partition(":")
            client_id = client_id or basic_id
            secret = secret if secret is not None else basic_secret
        return client_id, secret

    def _scopes(self, raw: str) -> tuple[str, ...]:
        scopes = tuple(raw.split())
        for scope in scopes:
            resource = _resource_of(scope)
            if resource is not None and resource != GRAPH_RESOURCE:
                raise _AadError(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {resource} was not found in the tenant "
                    f"named {self.state.tenant_domain}. This can happen if the application "
                    "has not been installed by the administrator of the tenant.",
                )
        return scopes

    def _id_token(self, client_id: str) -> str:
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": f"{self.origin}/{self.state.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_LIFETIME,
            "name": "Sandbox Admin",
            "oid": self.state.admin_object_id,
            "preferred_username": self.state.admin_upn,
            "sub": _b64url(self.state.admin_object_id.encode())[:43],
            "tid": self.state.tenant_id,
            "ver": "2.0",
        }
        header = {"alg": "none", "typ": "JWT"}
        return (
            ".".join(
                _b64url(json.dumps(part, separators=(",", ":")).encode())
                for part in (header, claims)
            )
            + "."
        )

    def _user_tokens(
        self, client_id: str, scopes: tuple[str, ...], grant_type: str = "device_code"
    ) -> Response:
        resource_scopes = tuple(s for s in scopes if s not in _OIDC_SCOPES)
        # Named scopes are consented on first use (the admin consents once); `.default`
        # asks for whatever the client already holds, as in Entra.
        named = tuple(
            s.rpartition("/")[2] if "://" in s else s
            for s in resource_scopes
            if not s.endswith("/.default")
        )
        granted = self.state.grants.consent(client_id, named)
        roles = self.state.grants.admin_roles
        access = self.state.tokens.issue_access_token(
            kind="user",
            client_id=client_id,
            audience=GRAPH_RESOURCE,
            scopes=granted,
            subject=self.state.admin_object_id,
            claims={
                "iss": f"https://sts.windows.net/{self.state.tenant_id}/",
                "tid": self.state.tenant_id,
                "oid": self.state.admin_object_id,
                "upn": self.state.admin_upn,
                "name": "Sandbox Admin",
                "app_displayname": _FIRST_PARTY_PUBLIC_CLIENTS.get(
                    client_id, "Runbook app registration"
                ),
                "appidacr": "0",
                "wids": [
                    DIRECTORY_ROLE_TEMPLATES[r] for r in roles if r in DIRECTORY_ROLE_TEMPLATES
                ],
            },
        )
        self.state.tokens.record_sign_in(grant_type, client_id, "public_client", scopes, granted)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(resource_scopes),
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME,
            "access_token": access,
            "refresh_token": self.state.tokens.issue_refresh_token(
                client_id, scopes, self.state.admin_object_id
            ),
            "id_token": self._id_token(client_id),
            "client_info": _b64url(
                json.dumps(
                    {"uid": self.state.admin_object_id, "utid": self.state.tenant_id}
                ).encode()
            ),
        }
        return _json(body)

    # -- client assertions (certificate and workload identity) ---------------------------

    def _check_assertion_times(self, claims: dict[str, Any]) -> None:
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if (
            not isinstance(exp, int | float)
            or exp + _SKEW <= now
            or (isinstance(nbf, int | float) and nbf - _SKEW > now)
        ):
            expiry = _when(exp) if isinstance(exp, int | float) else "(none)"
            raise _AadError(
                401,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: "
                f"{_when(now)}, expiry time of assertion {expiry}.",
            )

    def _certificate_assertion(
        self, client_id: str, tenant: str, header: dict[str, Any], claims: dict[str, Any],
        signing_input: bytes, signature: bytes,
    ) -> None:  # fmt: skip
        """Check a client's own signed assertion against the app's registered certificates."""
        if claims.get("sub") != claims.get("iss") or str(claims.get("iss")).lower() != client_id:
            raise _AadError(
                401, "invalid_client", 700021,
                "Client assertion application identifier doesn't match 'client_id' parameter. "
                "Review the documentation at https://learn.microsoft.com/entra/"
                "identity-platform/certificate-credentials.",
            )  # fmt: skip
        audiences = claims.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        # The path must name this tenant's token endpoint. The host is not compared, so a
        # relay in front of the sandbox (tests of other endpoints) still works.
        wanted = {
            f"/{t}/oauth2/{v}token"
            for t in (self.state.tenant_id, self.state.tenant_domain, tenant.lower())
            for v in ("v2.0/", "")
        }
        paths = [urlsplit(a).path.rstrip("/").lower() for a in audiences if isinstance(a, str)]
        if not any(path.endswith(end) for path in paths for end in wanted):
            raise _AadError(
                401, "invalid_client", 700023,
                "Client assertion audience claim does not match Realm issuer. Review the "
                "documentation at https://learn.microsoft.com/entra/identity-platform/"
                "certificate-credentials.",
            )  # fmt: skip
        self._check_assertion_times(claims)
        # Some clients (msal among them) keep the base64 padding on the thumbprints.
        x5t, x5t256 = (
            str(value).rstrip("=") if value else None
            for value in (header.get("x5t"), header.get("x5t#S256"))
        )
        cert = self.credentials.certificate(x5t, x5t256)
        if cert is None:
            shown = ""
            for value, _ in ((x5t256, "sha256"), (x5t, "sha1")):
                if isinstance(value, str) and value:
                    try:
                        shown = _b64url_decode(value).hex().upper()
                    except (ValueError, binascii.Error):
                        shown = value
                    break
            raise _AadError(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                "registered on application. [Reason - The key was not found., Thumbprint of "
                f"key used by client: '{shown or '(none)'}', Please visit the Azure Portal, "
                "Graph Explorer or directly use MS Graph to see configured keys for app Id "
                f"'{client_id}'.]",
            )
        if cert.not_valid_after_utc.timestamp() < time.time():
            raise _AadError(
                401, "invalid_client", 700027,
                "Client assertion contains an invalid signature. [Reason - The key used is "
                f"expired., Thumbprint of key used by client: '{cert.fingerprint(hashes.SHA1()).hex().upper()}']",
            )  # fmt: skip
        key = cert.public_key()
        alg = header.get("alg")
        try:
            if not isinstance(key, rsa.RSAPublicKey) or alg not in ("RS256", "PS256"):
                raise InvalidSignature
            if alg == "RS256":
                key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            else:
                key.verify(
                    signature,
                    signing_input,
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                    hashes.SHA256(),
                )
        except InvalidSignature:
            raise _AadError(
                401, "invalid_client", 700027,
                "Client assertion failed signature validation. [Reason - The provided "
                f"signature value did not match the expected signature value., Thumbprint of "
                f"key used by client: '{cert.fingerprint(hashes.SHA1()).hex().upper()}']",
            ) from None  # fmt: skip

    def _federated_assertion(self, claims: dict[str, Any]) -> None:
        """Check an external token against the app's federated identity credentials."""
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        audiences = claims.get("aud")
        audiences = [str(a) for a in audiences] if isinstance(audiences, list) else [str(audiences)]
        if issuer.startswith(f"{self.origin}/") or issuer.startswith("https://sts.windows.net/"):
            raise _AadError(
                400, "invalid_request", 700222,
                "AAD-issued tokens may not be used for federated identity flows.",
            )  # fmt: skip
        records = self.credentials.federated_credentials()
        if not records:
            raise _AadError(
                400,
                "invalid_request",
                70021,
                "No matching federated identity record found for presented assertion. "
                f"Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion "
                f"Audience: '{','.join(audiences)}'. {_FIC_HELP}",
            )
        by_issuer = [r for r in records if r.issuer == issuer]
        if not by_issuer:
            raise _AadError(
                401, "invalid_client", 700211,
                f"No matching federated identity record found for presented assertion issuer "
                f"'{issuer}'. {_FIC_HELP}",
            )  # fmt: skip
        by_subject = [r for r in by_issuer if r.subject == subject]
        if not by_subject:
            raise _AadError(
                401, "invalid_client", 700213,
                f"No matching federated identity record found for presented assertion subject "
                f"'{subject}'. {_FIC_HELP}",
            )  # fmt: skip
        if not any(r.audience in audiences for r in by_subject):
            raise _AadError(
                401, "invalid_client", 700212,
                f"No matching federated identity record found for presented assertion audience "
                f"'{','.join(audiences)}'. {_FIC_HELP}",
            )  # fmt: skip
        self._check_assertion_times(claims)

    def _client_assertion(self, request: Request, client_id: str, tenant: str) -> str:
        """Verify ``client_assertion``; return ``certificate`` or ``federated``."""
        assertion_type = request.form.get("client_assertion_type", "")
        assertion = request.form.get("client_assertion", "")
        self.state.redactor.add(assertion)
        if assertion_type != JWT_BEARER:
            raise _AadError(
                400, "invalid_request", 90023,
                f"The client_assertion_type must be '{JWT_BEARER}'.",
            )  # fmt: skip
        if not assertion:
            raise _AadError(
                400, "invalid_request", 900144,
                "The request body must contain the following parameter: 'client_assertion'.",
            )  # fmt: skip
        header, claims, signing_input, signature = _parse_jwt(assertion)
        # A client's own assertion is issued by the client itself; anything else is a token
        # from an external issuer, to be matched against the federated credentials.
        if str(claims.get("iss", "")).lower() == client_id:
            self._certificate_assertion(client_id, tenant, header, claims, signing_input, signature)
            return "certificate"
        self._federated_assertion(claims)
        return "federated"

    # -- endpoints ------------------------------------------------------------------

    def openid_configuration(self, request: Request, tenant: str) -> Response:
        """GET /{tenant}/v2.0/.well-known/openid-configuration."""
        self._check_tenant(tenant)
        base = f"{self.origin}/{self.state.tenant_id}"
        return _json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "claims_supported": [
                    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name",
                    "preferred_username", "oid", "tid", "ver",
                ],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "sandbox",
                "cloud_graph_host_name": self.graph_host,
                "msgraph_host": self.graph_host,
            }
        )  # fmt: skip

    def keys(self, request: Request, tenant: str) -> Response:
        """GET /{tenant}/discovery/v2.0/keys: access tokens are not really signed, so no keys."""
        self._check_tenant(tenant)
        return _json({"keys": []})

    def authorize(self, request: Request, tenant: str) -> Response:
        """The browser sign-in page is out of scope: say so instead of a bare 404."""
        self._check_tenant(tenant)
        return Response(
            "<!doctype html><title>Sandbox sign-in</title><p>The sandbox does not offer "
            "browser sign-in. Use a client secret, a certificate, a federated token or the "
            "device code flow.</p>",
            status=400,
            content_type="text/html; charset=utf-8",
        )

    def device_login_page(self, request: Request) -> Response:
        """The verification page device-code users are sent to."""
        return Response(
            "<!doctype html><title>Sandbox device login</title><p>The sandbox approves "
            "device codes by itself; there is nothing to enter here.</p>",
            content_type="text/html; charset=utf-8",
        )

    def device_code(self, request: Request, tenant: str) -> Response:
        """POST /{tenant}/oauth2/v2.0/devicecode: start a device code sign-in."""
        self._check_tenant(tenant)
        client_id = request.form.get("client_id", "")
        self._check_client(client_id, public=True)
        scopes = self._scopes(request.form.get("scope", ""))
        user_code = self.state.ids.choice("device", _USER_CODE_ALPHABET, 9)
        code = self.state.tokens.start_device_flow(client_id.lower(), scopes, user_code)
        verification_uri = f"{self.origin}/devicelogin"
        return _json(
            {
                "user_code": code.user_code,
                "device_code": code.device_code,
                "verification_uri": verification_uri,
                "expires_in": DEVICE_CODE_LIFETIME,
                "interval": 1,
                "message": (
                    f"To sign in, use a web browser to open the page {verification_uri} and "
                    f"enter the code {code.user_code} to authenticate. (The sandbox approves "
                    "it automatically.)"
                ),
            }
        )

    def token(self, request: Request, tenant: str) -> Response:
        """POST /{tenant}/oauth2/v2.0/token: every grant the sandbox supports."""
        self._check_tenant(tenant)
        grant = request.form.get("grant_type", "")
        if grant == "client_credentials":
            return self._client_credentials(request, tenant)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_code_grant(request)
        if grant == "refresh_token":
            return self._refresh_grant(request)
        if not grant:
            raise _AadError(
                400, "invalid_request", 900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )  # fmt: skip
        raise _AadError(
            400, "unsupported_grant_type", 70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )  # fmt: skip

    def _client_credentials(self, request: Request, tenant: str) -> Response:
        client_id, secret = self._client_credentials_from(request)
        self._check_client(client_id)
        if request.form.get("client_assertion") or request.form.get("client_assertion_type"):
            credential = self._client_assertion(request, client_id.lower(), tenant)
        elif not secret:
            raise _AadError(
                401, "invalid_client", 7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )  # fmt: skip
        elif not hmac.compare_digest(secret.encode(), self.state.client_secret.encode()):
            raise _AadError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{self.state.client_id}'.",
            )
        else:
            credential = "client_secret"
        raw_scope = request.form.get("scope", "")
        scopes = raw_scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise _AadError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {raw_scope or '(empty)'} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        self._scopes(raw_scope)
        roles = self.state.grants.granted_app_roles()
        token = self.state.tokens.issue_access_token(
            kind="app",
            client_id=self.state.client_id,
            audience=GRAPH_RESOURCE,
            scopes=tuple(scopes),
            subject=self.state.client_id,
            roles=roles,
            claims={
                "iss": f"https://sts.windows.net/{self.state.tenant_id}/",
                "tid": self.state.tenant_id,
                "app_displayname": "Runbook app registration",
                # 1: client secret, 2: certificate or federated assertion (as in Entra).
                "appidacr": "1" if credential == "client_secret" else "2",
            },
        )
        self.state.tokens.record_sign_in(
            "client_credentials", self.state.client_id, credential, tuple(scopes), roles
        )
        return _json(
            {
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_LIFETIME,
                "ext_expires_in": ACCESS_TOKEN_LIFETIME,
                "access_token": token,
            }
        )

    def _device_code_grant(self, request: Request) -> Response:
        client_id = request.form.get("client_id", "")
        self._check_client(client_id, public=True)
        code = self.state.tokens.poll_device_code(request.form.get("device_code", ""))
        if code is None or code.client_id != client_id.lower() or code.redeemed:
            raise _AadError(
                400, "invalid_grant", 70000,
                "The provided device code is not valid, or has already been used.",
            )  # fmt: skip
        if code.expires_at <= time.time():
            raise _AadError(400, "expired_token", 70020, "The device code has expired.")
        if code.polls == 1:
            raise _AadError(
                400, "authorization_pending", 70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )  # fmt: skip
        if not self.state.tokens.mark_redeemed(code.device_code):
            raise _AadError(
                400, "invalid_grant", 70000, "The provided device code has already been used."
            )
        return self._user_tokens(client_id.lower(), code.scopes)

    def _refresh_grant(self, request: Request) -> Response:
        client_id = request.form.get("client_id", "")
        self._check_client(client_id, public=True)
        grant = self.state.tokens.redeem_refresh_token(
            request.form.get("refresh_token", ""), client_id.lower()
        )
        if grant is None:
            raise _AadError(
                400, "invalid_grant", 9002313,
                "Invalid request. The refresh token is malformed or not valid.",
            )  # fmt: skip
        requested = request.form.get("scope")
        scopes = self._scopes(requested) if requested else grant.scopes
        return self._user_tokens(client_id.lower(), scopes, "refresh_token")

    # -- WSGI -----------------------------------------------------------------------

    def _respond(self, request: Request) -> Response:
        try:
            adapter = self.url_map.bind_to_environ(request.environ)
            endpoint, args = adapter.match()
            return endpoint(request, **args)  # type: ignore[no-any-return]
        except _AadError as error:
            return self._error(error)
        except MethodNotAllowed:
            return self._error(
                _AadError(
                    405,
                    "invalid_request",
                    900561,
                    f"This endpoint does not accept {request.method} requests.",
                )
            )
        except NotFound:
            return Response(
                "<!doctype html><title>Not found</title><p>No sign-in endpoint here.</p>",
                status=404,
                content_type="text/html; charset=utf-8",
            )
        except HTTPException as error:
            return self._error(_AadError(error.code or 400, "invalid_request", 900144, str(error)))
        except Exception:
            # A bug in the stand-in: log the (redacted) trace, answer like Entra's 500.
            _logger.error(
                "sign-in stand-in failed:\n%s", self.state.redactor.redact(traceback.format_exc())
            )
            return self._error(
                _AadError(500, "server_error", 90033, "The sandbox's sign-in stand-in failed.")
            )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)
