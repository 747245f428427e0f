"""The "Test connection" probe behind validateCredentials.

Entra tests a SCIM tenant URL by asking it for a user that cannot exist:
``GET {BaseAddress}/Users?filter=userName eq "<random GUID>"`` with the secret token
as a bearer token, and it expects ``200`` with an empty ListResponse. The sandbox
really sends that request, so a wrong URL, a wrong token, a certificate problem or an
endpoint that is not SCIM at all fails here exactly as it would in the portal.

Each failure maps to a :class:`ProbeFailure` with an Entra-style code and a message
that tells the admin what to check. The token never appears in a message: messages
are built from the URL and the status only, and pass through the redactor anyway.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx

from ...tenant._well_known import NON_GALLERY_TEMPLATE_ID

__all__ = [
    "CODE_CREDENTIALS_REJECTED",
    "CODE_INVALID_TENANT_URL",
    "CODE_TLS_FAILURE",
    "CODE_UNEXPECTED_RESPONSE",
    "CODE_UNEXPECTED_STATUS",
    "CODE_UNREACHABLE",
    "ProbeFailure",
    "entra_issued_token",
    "probe_scim_endpoint",
]

# Error codes in the family Entra uses for provisioning credential checks. The
# first two are the ones the portal shows; the others are the sandbox's own names
# for failures Entra reports with free text only.
CODE_CREDENTIALS_REJECTED = "SystemForCrossDomainIdentityManagementCredentialValidationFailure"
CODE_UNEXPECTED_STATUS = "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable"
CODE_INVALID_TENANT_URL = "SystemForCrossDomainIdentityManagementInvalidTenantUrl"
CODE_UNREACHABLE = "SystemForCrossDomainIdentityManagementServiceUnreachable"
CODE_TLS_FAILURE = "SystemForCrossDomainIdentityManagementCertificateValidationFailure"
CODE_UNEXPECTED_RESPONSE = "SystemForCrossDomainIdentityManagementUnexpectedResponse"

_LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_TIMEOUT = httpx.Timeout(8.0, connect=4.0)
_PREFIX = "Error validating credentials. "
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class ProbeFailure:
    """Why a tenant URL / secret token pair did not pass the test."""

    code: str
    message: str


def _status_sentence(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return (
        f"An HTTP/{status} {phrase} response was returned rather than the expected "
        "HTTP/200 OK response."
    )


def _check_url(base_address: str) -> ProbeFailure | None:
    parts = urlsplit(base_address)
    if parts.scheme.lower() == "http":
        return ProbeFailure(
            CODE_INVALID_TENANT_URL,
            _PREFIX + f"The tenant URL '{base_address}' uses http://. Provisioning only "
            "connects to SCIM endpoints over HTTPS; use the https:// URL of the endpoint.",
        )
    if parts.scheme.lower() != "https" or not parts.hostname:
        return ProbeFailure(
            CODE_INVALID_TENANT_URL,
            _PREFIX + f"The tenant URL '{base_address}' is not a valid absolute https:// "
            "URL. Copy the SCIM base URL from the application's admin console.",
        )
    if parts.fragment:
        # A query is fine (Entra feature flags such as ?aadOptscim062020 live there).
        return ProbeFailure(
            CODE_INVALID_TENANT_URL,
            _PREFIX + f"The tenant URL '{base_address}' must not contain a '#' fragment.",
        )
    return None


def _exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _transport_failure(base_address: str, error: httpx.HTTPError) -> ProbeFailure:
    host = urlsplit(base_address).hostname or base_address
    chain = _exception_chain(error)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or any(
        "CERTIFICATE_VERIFY_FAILED" in str(e) for e in chain
    ):
        return ProbeFailure(
            CODE_TLS_FAILURE,
            _PREFIX + f"The TLS certificate presented by '{host}' is not trusted (it is "
            "self-signed, expired, or issued for a different host name). The SCIM endpoint "
            "needs a certificate from a public certificate authority.",
        )
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return ProbeFailure(
            CODE_TLS_FAILURE,
            _PREFIX + f"The TLS handshake with '{host}' failed. Check that the tenant URL "
            "points at an HTTPS endpoint.",
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        return ProbeFailure(
            CODE_UNREACHABLE,
            _PREFIX + f"The host name '{host}' could not be resolved. Check the tenant URL "
            "for typos.",
        )
    if isinstance(error, httpx.TimeoutException):
        return ProbeFailure(
            CODE_UNREACHABLE,
            _PREFIX + f"The SCIM endpoint at '{host}' did not answer in time.",
        )
    if isinstance(error, httpx.ConnectError):
        return ProbeFailure(
            CODE_UNREACHABLE,
            _PREFIX + f"Could not connect to '{base_address}' (connection refused or "
            "unreachable). Check the host and port of the tenant URL.",
        )
    return ProbeFailure(
        CODE_UNEXPECTED_RESPONSE,
        _PREFIX + f"The endpoint at '{base_address}' did not give a valid HTTPS response "
        f"({type(error).__name__}).",
    )


def _judge_response(response: httpx.Response) -> ProbeFailure | None:
    status = response.status_code
    if status in (401, 403):
        return ProbeFailure(
            CODE_CREDENTIALS_REJECTED,
            _PREFIX
            + "You appear to have entered invalid credentials. "
            + _status_sentence(status)
            + " Check that the secret token is correct and has not been rotated or revoked.",
        )
    if status == 404:
        return ProbeFailure(
            CODE_UNEXPECTED_STATUS,
            _PREFIX
            + "We received this unexpected response from your application: "
            + _status_sentence(status)
            + " Check that the tenant URL is the SCIM base URL (the path that /Users is "
            "directly under).",
        )
    if status != 200:
        return ProbeFailure(
            CODE_UNEXPECTED_STATUS,
            _PREFIX
            + "We received this unexpected response from your application: "
            + _status_sentence(status),
        )
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or _LIST_RESPONSE not in (body.get("schemas") or []):
        return ProbeFailure(
            CODE_UNEXPECTED_RESPONSE,
            _PREFIX + "The endpoint answered HTTP/200 OK, but not with a SCIM ListResponse. "
            "The tenant URL probably points at a web page rather than at the SCIM API.",
        )
    if body.get("totalResults") != 0:
        return ProbeFailure(
            CODE_UNEXPECTED_RESPONSE,
            _PREFIX + "The endpoint returned users for a filter that matches no user, so "
            "it does not appear to support filtering on userName.",
        )
    return None


def probe_scim_endpoint(
    base_address: str,
    secret_token: str,
    *,
    probe_guid: str,
    verify: ssl.SSLContext,
) -> ProbeFailure | None:
    """Run the test-connection request; None means the endpoint passed."""
    failure = _check_url(base_address)
    if failure is not None:
        return failure
    parts = urlsplit(base_address)
    users_url = parts._replace(path=parts.path.rstrip("/") + "/Users", query="").geturl()
    params: dict[str, str] = {"filter": f'userName eq "{probe_guid}"'}
    headers = {
        "Authorization": f"Bearer {secret_token}",
        "Accept": "application/scim+json",
        "User-Agent": "runbook-sandbox-provisioning/1.0",
    }
    # A proxy from the environment must not swallow requests to the loopback stand-ins.
    trust_env = (parts.hostname or "").lower() not in _LOOPBACK
    try:
        with httpx.Client(
            verify=verify, timeout=_TIMEOUT, follow_redirects=False, trust_env=trust_env
        ) as client:
            response = client.get(users_url, params=params, headers=headers)
    except httpx.HTTPError as error:
        return _transport_failure(base_address, error)
    return _judge_response(response)


def entra_issued_token(tenant_id: str) -> str:
    """The bearer token Entra sends when no SecretToken is saved (testing only).

    It is a token for the non-gallery app's audience, which a SCIM endpoint that
    expects its own token rejects: the sandbox builds an unsigned look-alike.
    """

    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    now = int(time.time())
    claims = {
        "aud": NON_GALLERY_TEMPLATE_ID,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
