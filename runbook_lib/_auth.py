"""Sign-in with azure-identity: one credential for Graph, chosen from the settings.

* ``RUNBOOK_CLIENT_SECRET`` set: app-only sign-in with :class:`ClientSecretCredential` (pipelines).
* otherwise, for an admin at a notebook: Azure CLI credentials when ``az`` is signed in to the
  tenant, then device code (the admin opens the verification page and types a code).

The same classes run against the sandbox's token endpoint; only the authority URL and the CA
bundle differ. msal's instance discovery only knows Microsoft's own login hosts, so it is
switched off for any other authority.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from ._exceptions import ConfigurationError, SignInError
from ._redact import redact
from ._settings import Settings, require_secret
from ._tls import ca_file_for_requests

__all__ = ["MICROSOFT_AUTHORITY_HOSTS", "get_token", "make_credential"]

MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
    }
)

# AADSTS codes an admin is likely to meet, with the fix in one sentence.
_AADSTS_FIXES = {
    "7000215": "The client secret is wrong or expired: create a new secret under the app "
    "registration's Certificates & secrets and set RUNBOOK_CLIENT_SECRET to its Value "
    "(not its Secret ID).",
    "7000222": "The client secret has expired: create a new one and set RUNBOOK_CLIENT_SECRET.",
    "700016": "No app with this client ID exists in the tenant: check RUNBOOK_CLIENT_ID and "
    "RUNBOOK_TENANT_ID, or grant admin consent for the app in this tenant.",
    "90002": "The tenant was not found: check RUNBOOK_TENANT_ID (directory ID or "
    "primary domain) and RUNBOOK_AUTHORITY (national clouds have their own).",
    "900023": "The tenant ID is malformed: copy the Directory (tenant) ID from Entra admin center.",
    "7000218": "The app registration does not allow public client flows: enable 'Allow public "
    "client flows' on it, or set RUNBOOK_CLIENT_SECRET for app-only sign-in.",
    "50076": "Conditional Access requires multi-factor authentication: complete the device "
    "code sign-in in a browser that satisfies the policy.",
}


def _is_microsoft(authority: str) -> bool:
    return (urlsplit(authority).hostname or "") in MICROSOFT_AUTHORITY_HOSTS


def make_credential(
    settings: Settings, *, prompt: Callable[[str], None] | None = None
) -> TokenCredential:
    """Build the credential the settings call for.

    :param prompt: shows the device code message to the admin (defaults to ``print``).
    """
    if not settings.tenant_id:
        raise ConfigurationError(
            "RUNBOOK_TENANT_ID is not set.",
            "Set it to the Directory (tenant) ID shown on the Entra admin center overview.",
            hint="00-overview",
        )
    common: dict[str, Any] = {
        "authority": settings.authority,
        "connection_verify": ca_file_for_requests(settings.ca_bundle),
    }
    if not _is_microsoft(settings.authority):
        common["disable_instance_discovery"] = True

    from azure.identity import (
        AzureCliCredential,
        ChainedTokenCredential,
        ClientSecretCredential,
        DeviceCodeCredential,
    )

    if settings.client_secret is not None and settings.client_secret.get_secret_value():
        if not settings.client_id:
            raise ConfigurationError(
                "RUNBOOK_CLIENT_SECRET is set but RUNBOOK_CLIENT_ID is not.",
                "Set RUNBOOK_CLIENT_ID to the Application (client) ID the secret belongs to.",
                hint="00-overview",
            )
        secret = require_secret(settings, "client_secret").get_secret_value()
        return ClientSecretCredential(settings.tenant_id, settings.client_id, secret, **common)

    if not settings.client_id:
        raise ConfigurationError(
            "RUNBOOK_CLIENT_ID is not set, so device code sign-in has no app to sign in with.",
            "Set RUNBOOK_CLIENT_ID to a public-client app registration (or also set "
            "RUNBOOK_CLIENT_SECRET for app-only sign-in).",
            hint="00-overview",
        )

    def _show(verification_uri: str, user_code: str, expires_on: datetime) -> None:
        text = (
            f"To sign in, open {verification_uri} and enter the code {user_code} "
            f"(valid until {expires_on:%H:%M} UTC)."
        )
        (prompt or print)(text)

    device = DeviceCodeCredential(
        client_id=settings.client_id,
        tenant_id=settings.tenant_id,
        prompt_callback=_show,
        **common,
    )
    if _is_microsoft(settings.authority) and shutil.which("az"):
        return ChainedTokenCredential(AzureCliCredential(tenant_id=settings.tenant_id), device)
    return device


def get_token(credential: TokenCredential, *scopes: str) -> AccessToken:
    """Get a token for ``scopes``, turning azure-identity's errors into a :class:`SignInError`."""
    scope = " ".join(scopes)
    try:
        return credential.get_token(*scopes)
    except ServiceRequestError as exc:
        raise SignInError(
            f"Could not reach the sign-in authority: {redact(str(exc)).splitlines()[0]}",
            "Check RUNBOOK_AUTHORITY and your network; if a TLS proxy inspects traffic, set "
            "RUNBOOK_CA_BUNDLE to its CA certificate (PEM).",
            hint="01-connect",
        ) from exc
    except ClientAuthenticationError as exc:
        raw = redact(str(getattr(exc, "message", "") or exc))
        first = raw.strip().splitlines()[0] if raw.strip() else "sign-in failed"
        code = ""
        for candidate in _AADSTS_FIXES:
            if f"AADSTS{candidate}" in raw:
                code = candidate
                break
        if not code and ("CERTIFICATE_VERIFY_FAILED" in raw or "SSLError" in raw):
            fix = (
                "The sign-in authority's TLS certificate is not trusted: if a TLS-inspecting "
                "proxy or a private CA serves RUNBOOK_AUTHORITY, set RUNBOOK_CA_BUNDLE to its CA "
                "certificate (PEM)."
            )
        else:
            fix = _AADSTS_FIXES.get(
                code,
                "Check RUNBOOK_TENANT_ID, RUNBOOK_CLIENT_ID and the secret, and that "
                "RUNBOOK_AUTHORITY is reachable.",
            )
        raise SignInError(
            f"Sign-in to {scope} failed: {first}", fix, hint="01-connect", aadsts=code
        ) from exc
