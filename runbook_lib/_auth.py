"""Sign-in with azure-identity: one credential for Graph, chosen from the settings.

``RUNBOOK_AUTH`` names the method; exactly that method is used, never a chain of fallbacks:

* ``client-secret``: app-only, :class:`~azure.identity.ClientSecretCredential`.
* ``certificate``: app-only, :class:`~azure.identity.CertificateCredential` (PEM or PKCS#12
  file with the private key).
* ``workload-identity``: app-only, :class:`~azure.identity.WorkloadIdentityCredential`; a
  pipeline's OIDC token (in a file) is exchanged for a token of the app registration.
* ``device-code``: delegated, :class:`~azure.identity.DeviceCodeCredential`. Without
  ``RUNBOOK_CLIENT_ID`` it signs in through Microsoft Graph Command Line Tools, the public
  client ``Connect-MgGraph`` uses, so an admin needs no app registration of their own. It asks
  for the runbook's permissions by name (:func:`runbook_lib._permissions.delegated_scopes`),
  so the consent prompt lists exactly those.
* ``azure-cli``: delegated, :class:`~azure.identity.AzureCliCredential` (``az login``); only
  when asked for, since its token carries Azure CLI's own permissions.
* ``auto`` (the default) resolves to the first configured of: client secret, certificate,
  federated token file; otherwise device code. :func:`auth_method` says which.

The same classes run against the sandbox's token endpoint; only the authority URL and the CA
bundle differ. msal's instance discovery only knows Microsoft's own login hosts, so it is
switched off for any other authority.

One sign-in per ``runbook run``: the runner signs in once (:class:`RunSignIn`; a device code is
shown on its console) and hands the access token to the pages' kernels through a private file
(mode 0600 in a 0700 directory of its own, named by :data:`RUN_SIGN_IN_ENV`, removed when the
run ends). A page uses that token only when its own settings would sign in the same way
(:func:`run_credential`); otherwise, or once the token is near expiry, it signs in itself. The
token never passes through papermill parameters, notebook outputs or logs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from ._exceptions import ConfigurationError, RunbookError, SignInError
from ._permissions import SignInKind, delegated_scopes
from ._redact import redact, register_secret
from ._settings import Settings, _from_keyring, load_settings, require_secret
from ._tls import ca_file_for_requests

__all__ = [
    "APP_ONLY_METHODS",
    "GRAPH_CLI_CLIENT_ID",
    "MICROSOFT_AUTHORITY_HOSTS",
    "RUN_SIGN_IN_ENV",
    "RunSignIn",
    "SignInMethod",
    "auth_method",
    "get_token",
    "graph_scopes",
    "make_credential",
    "run_credential",
    "sign_in_kind",
    "sign_in_problems",
]

SignInMethod = Literal[
    "client-secret", "certificate", "device-code", "azure-cli", "workload-identity"
]
"""A resolved sign-in method (``RUNBOOK_AUTH`` without ``auto``)."""

APP_ONLY_METHODS: frozenset[str] = frozenset({"client-secret", "certificate", "workload-identity"})
"""Methods that sign in as the app registration itself (application permissions)."""

GRAPH_CLI_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
"""Microsoft Graph Command Line Tools: Microsoft's public client, present in every tenant."""

MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
    }
)

_CONSENT_FIX = (
    "consent once as a Global Administrator or Privileged Role Administrator: run "
    "Connect-MgGraph -Scopes followed by the permissions in docs/settings.md (PowerShell), or "
    "grant admin consent under Enterprise apps > Microsoft Graph Command Line Tools > "
    "Permissions; then sign in again."
)
_FEDERATED_FIX = (
    "add a federated credential to the app registration (Certificates & secrets > Federated "
    "credentials) whose issuer and subject are exactly the ones in this message, with audience "
    "api://AzureADTokenExchange; matching is case-sensitive and a new credential can take a few "
    "minutes to apply."
)

# AADSTS codes an admin is likely to meet, with the fix in one sentence. Looked up by the exact
# number, so 70021 never matches inside 700213.
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
    "client flows' on it, or unset RUNBOOK_CLIENT_ID to sign in through Microsoft Graph "
    "Command Line Tools.",
    "50076": "Conditional Access requires multi-factor authentication: complete the device "
    "code sign-in in a browser that satisfies the policy.",
    # Certificate sign-in.
    "700027": "Entra does not accept the certificate: upload its public part (.cer or .pem) to "
    "the app registration under Certificates & secrets > Certificates, and make sure "
    "RUNBOOK_CLIENT_CERTIFICATE is the file with the matching private key and has not expired.",
    "700021": "The client assertion names another app: RUNBOOK_CLIENT_ID must be the "
    "Application (client) ID of the app registration the certificate belongs to.",
    "700023": "The client assertion was made for another token endpoint: check "
    "RUNBOOK_TENANT_ID and RUNBOOK_AUTHORITY.",
    "700024": "The client assertion or federated token has expired or is not valid yet: check "
    "this machine's clock, and for workload identity that the pipeline refreshes the file in "
    "RUNBOOK_FEDERATED_TOKEN_FILE.",
    "50027": "The client assertion or federated token is not a well-formed JWT: check "
    "RUNBOOK_FEDERATED_TOKEN_FILE holds only the token, or that RUNBOOK_CLIENT_CERTIFICATE is "
    "the right file.",
    # Workload identity federation.
    "70021": f"No federated credential of the app matches the pipeline's token: {_FEDERATED_FIX}",
    "700211": f"No federated credential of the app trusts this token issuer: {_FEDERATED_FIX}",
    "700212": "No federated credential of the app accepts this token audience: have the "
    "pipeline request its OIDC token for api://AzureADTokenExchange, the audience the federated "
    "credential expects.",
    "700213": f"No federated credential of the app has this token subject: {_FEDERATED_FIX}",
    "700222": "Entra-issued tokens cannot be exchanged with workload identity federation: point "
    "RUNBOOK_FEDERATED_TOKEN_FILE at the external issuer's token (the pipeline's OIDC token).",
    # Delegated sign-in and consent.
    "65001": f"The permissions were not consented for this client: {_CONSENT_FIX}",
    "65004": "The consent prompt was declined: sign in again and accept it, or ask a Global "
    "Administrator to grant admin consent.",
    "90094": f"Only an administrator can consent to these permissions: {_CONSENT_FIX}",
    "50105": "Your account is not assigned to the app you sign in with: in Enterprise apps > "
    "Microsoft Graph Command Line Tools (or your own app) > Users and groups, assign yourself, "
    "or set 'Assignment required' to No.",
    "53003": "A Conditional Access policy blocked the sign-in: ask who manages Conditional Access "
    "to allow it (the sign-in log names the policy), or sign in app-only with "
    "RUNBOOK_AUTH=certificate or client-secret.",
    "53000": "Conditional Access requires a compliant device: finish the device code sign-in "
    "in a browser on a compliant device.",
    "50057": "The account is disabled: sign in with an enabled administrator account.",
    "70019": "The device code expired before sign-in finished: run the cell again and enter "
    "the new code within 15 minutes.",
    "70020": "The device code expired before sign-in finished: run the cell again and enter "
    "the new code within 15 minutes.",
}
_AADSTS = re.compile(r"AADSTS(\d+)")


def _is_microsoft(authority: str) -> bool:
    return (urlsplit(authority).hostname or "") in MICROSOFT_AUTHORITY_HOSTS


def _has_secret(settings: Settings, name: str) -> bool:
    value = getattr(settings, name)
    return value is not None and bool(value.get_secret_value())


def auth_method(settings: Settings) -> SignInMethod:
    """The method sign-in will use: ``RUNBOOK_AUTH``, or what ``auto`` resolves to.

    ``auto`` looks at the environment only (never the keyring), in this order: a client secret,
    a certificate file, a federated token file; otherwise device code.
    """
    if settings.auth != "auto":
        return settings.auth
    if _has_secret(settings, "client_secret"):
        return "client-secret"
    if settings.client_certificate is not None:
        return "certificate"
    if settings.federated_token_file is not None:
        return "workload-identity"
    return "device-code"


def sign_in_kind(settings: Settings) -> SignInKind:
    """``application`` for app-only methods, ``delegated`` for device code and Azure CLI."""
    return "application" if auth_method(settings) in APP_ONLY_METHODS else "delegated"


def graph_scopes(settings: Settings) -> tuple[str, ...]:
    """The scopes to ask Entra for: ``<graph>/.default``, or the named scopes for device code.

    App-only methods can only ask for ``.default`` (the application permissions granted to the
    app). Azure CLI's public client is pre-authorized by Microsoft and also gets ``.default``.
    Device code asks for each permission by name on the same Graph host, so the consent prompt
    shows exactly what the runbook uses.
    """
    if auth_method(settings) == "device-code":
        return delegated_scopes(settings.graph_scope.removesuffix("/.default"))
    return (settings.graph_scope,)


def _file_problem(path: Path | None, var: str, what: str) -> tuple[str, str] | None:
    if path is None:
        return f"{var} is not set", f"Set {var} to the path of {what}."
    if not path.is_file():
        return (
            f"{var} points at '{path}', which is not a file",
            f"Set {var} to the path of {what}.",
        )
    return None


def sign_in_problems(settings: Settings, *, check_keyring: bool = True) -> list[tuple[str, str]]:
    """Every setting the resolved method lacks, as ``(problem, fix)`` pairs naming the variable.

    Empty when sign-in can be attempted. ``check_keyring`` lets a client secret stored with
    ``keyring set runbook client_secret`` count as present.
    """
    method = auth_method(settings)
    problems: list[tuple[str, str]] = []
    if not settings.tenant_id:
        problems.append(
            (
                "RUNBOOK_TENANT_ID is not set",
                "Set RUNBOOK_TENANT_ID to the Directory (tenant) ID shown on the Entra admin "
                "center overview.",
            )
        )
    if method in APP_ONLY_METHODS and not settings.client_id:
        problems.append(
            (
                f"RUNBOOK_CLIENT_ID is not set, and {method} sign-in is done as an app "
                "registration",
                "Set RUNBOOK_CLIENT_ID to the Application (client) ID of that app registration "
                "(or use RUNBOOK_AUTH=device-code, which needs none).",
            )
        )
    if method == "client-secret" and not _has_secret(settings, "client_secret"):
        if not (check_keyring and _from_keyring("client_secret")):
            problems.append(
                (
                    "RUNBOOK_CLIENT_SECRET is not set",
                    "Set RUNBOOK_CLIENT_SECRET to the secret's Value (or store it with "
                    "`keyring set runbook client_secret`).",
                )
            )
    if method == "certificate":
        found = _file_problem(
            settings.client_certificate,
            "RUNBOOK_CLIENT_CERTIFICATE",
            "a PEM or PKCS#12 (.pfx) file holding the certificate and its private key",
        )
        if found:
            problems.append(found)
    if method == "workload-identity":
        found = _file_problem(
            settings.federated_token_file,
            "RUNBOOK_FEDERATED_TOKEN_FILE",
            "the file your pipeline writes its OIDC token to (AKS sets "
            "AZURE_FEDERATED_TOKEN_FILE, which is used when this is unset)",
        )
        if found:
            problems.append(found)
    return problems


def _raise_problems(settings: Settings, problems: list[tuple[str, str]]) -> None:
    if not problems:
        return
    method = auth_method(settings)
    chosen = (
        f"RUNBOOK_AUTH={method}"
        if settings.auth != "auto"
        else f"{method} sign-in (chosen by RUNBOOK_AUTH=auto)"
    )
    if len(problems) == 1:
        message = f"{chosen} cannot start: {problems[0][0]}."
        fix = problems[0][1]
    else:
        message = (
            f"{chosen} cannot start: "
            + "; ".join(f"({i}) {problem}" for i, (problem, _) in enumerate(problems, 1))
            + "."
        )
        fix = " ".join(f"({i}) {fix}" for i, (_, fix) in enumerate(problems, 1))
    raise ConfigurationError(message, fix, hint="00-overview")


def _optional_secret(settings: Settings, name: str) -> str | None:
    """A secret from the environment or the keyring, without prompting; None when absent."""
    value = getattr(settings, name)
    if value is not None and value.get_secret_value():
        return str(value.get_secret_value())
    found = _from_keyring(name)
    if found:
        register_secret(found)
    return found or None


def _certificate_error(exc: Exception, had_password: bool) -> tuple[ConfigurationError, bool]:
    """The error to show for a certificate file azure-identity could not load, and whether a
    password (still unknown) would help."""
    text = f"{exc} {exc.__cause__ or ''}"
    cert = "RUNBOOK_CLIENT_CERTIFICATE"
    password = "RUNBOOK_CLIENT_CERTIFICATE_PASSWORD"
    needs_password = not had_password and any(
        hint in text for hint in ("not given", "encrypted", "Invalid password")
    )
    if needs_password:
        problem = f"the private key in {cert} is protected by a password, and {password} is unset"
        fix = (
            f"Set {password} in the environment or store it with `keyring set runbook "
            "client_certificate_password`."
        )
    elif had_password and ("decrypt" in text.lower() or "password" in text.lower()):
        problem = f"{password} does not open the private key in {cert}"
        fix = f"Set {password} to the password the certificate file was exported with."
    elif "RSA" in text:
        problem = f"the private key in {cert} is not an RSA key"
        fix = "Create an RSA certificate (2048 bits or more); Entra signs in with RS256."
    elif "private key" in text:
        problem = f"{cert} holds a certificate but not its private key"
        fix = (
            f"Point {cert} at a PEM file with both the certificate and its private key, or at "
            "the .pfx exported with its private key."
        )
    else:
        problem = f"{cert} could not be read as a PEM or PKCS#12 certificate ({redact(str(exc))})"
        fix = f"Point {cert} at a PEM file (certificate and private key) or a .pfx file."
    error = ConfigurationError(
        f"Certificate sign-in cannot start: {problem}.", fix, hint="00-overview"
    )
    return error, needs_password


def _certificate_credential(settings: Settings, common: dict[str, Any]) -> TokenCredential:
    from azure.identity import CertificateCredential

    path = str(settings.client_certificate)
    password = _optional_secret(settings, "client_certificate_password")
    for attempt in (1, 2):
        try:
            return CertificateCredential(
                settings.tenant_id,
                settings.client_id,
                certificate_path=path,
                password=password,
                **common,
            )
        except (ValueError, TypeError) as exc:
            error, needs_password = _certificate_error(exc, password is not None)
            if attempt == 1 and needs_password:
                # The key is encrypted: ask at a notebook or terminal (raises when nobody can).
                try:
                    password = require_secret(
                        settings, "client_certificate_password"
                    ).get_secret_value()
                except ConfigurationError:
                    raise error from exc
                continue
            raise error from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _workload_identity_credential(settings: Settings, common: dict[str, Any]) -> TokenCredential:
    from azure.identity import WorkloadIdentityCredential

    class RedactingWorkloadIdentityCredential(WorkloadIdentityCredential):
        """Registers every federated token it reads, so no message can show one."""

        def _get_service_account_token(self) -> str:
            token = str(super()._get_service_account_token())
            register_secret(token.strip())
            return token

    return RedactingWorkloadIdentityCredential(
        tenant_id=settings.tenant_id,
        client_id=settings.client_id,
        token_file_path=str(settings.federated_token_file),
        **common,
    )


def make_credential(
    settings: Settings, *, prompt: Callable[[str], None] | None = None
) -> TokenCredential:
    """Build the credential for the method :func:`auth_method` resolves to.

    Raises :class:`ConfigurationError` naming every missing setting at once.

    :param prompt: shows the device code message to the admin (defaults to ``print``).
    """
    method = auth_method(settings)
    problems = sign_in_problems(settings)
    _raise_problems(settings, problems)

    from azure.identity import AzureCliCredential, ClientSecretCredential, DeviceCodeCredential

    if method == "azure-cli":
        # Azure CLI's own sign-in (az login); its own client, so RUNBOOK_CLIENT_ID plays no part.
        return AzureCliCredential(tenant_id=settings.tenant_id)

    common: dict[str, Any] = {
        "authority": settings.authority,
        "connection_verify": ca_file_for_requests(settings.ca_bundle),
    }
    if not _is_microsoft(settings.authority):
        common["disable_instance_discovery"] = True

    if method == "client-secret":
        secret = require_secret(settings, "client_secret").get_secret_value()
        return ClientSecretCredential(settings.tenant_id, settings.client_id, secret, **common)
    if method == "certificate":
        return _certificate_credential(settings, common)
    if method == "workload-identity":
        return _workload_identity_credential(settings, common)

    def _show(verification_uri: str, user_code: str, expires_on: datetime) -> None:
        text = (
            f"To sign in, open {verification_uri} and enter the code {user_code} "
            f"(valid until {expires_on:%H:%M} UTC)."
        )
        (prompt or print)(text)

    return DeviceCodeCredential(
        client_id=settings.client_id or GRAPH_CLI_CLIENT_ID,
        tenant_id=settings.tenant_id,
        prompt_callback=_show,
        **common,
    )


def _fix_for(raw: str) -> tuple[str, str]:
    """The first AADSTS code in ``raw`` that has a fix, and that fix."""
    for code in _AADSTS.findall(raw):
        if code in _AADSTS_FIXES:
            return code, _AADSTS_FIXES[code]
    codes = _AADSTS.findall(raw)
    return (codes[0] if codes else ""), ""


def get_token(credential: TokenCredential, *scopes: str) -> AccessToken:
    """Get a token for ``scopes``, turning azure-identity's errors into a :class:`SignInError`.

    The access token is registered with the redactor before it is returned.
    """
    resource = scopes[0].rpartition("/")[0] if scopes and "/" in scopes[0] else " ".join(scopes)
    try:
        token = credential.get_token(*scopes)
    except ServiceRequestError as exc:
        detail = redact(str(exc))
        if "CERTIFICATE_VERIFY_FAILED" in detail or "SSLError" in detail:
            fix = (
                "The sign-in authority's TLS certificate is not trusted: if a TLS-inspecting "
                "proxy or a private CA serves RUNBOOK_AUTHORITY, set RUNBOOK_CA_BUNDLE to its CA "
                "certificate (PEM)."
            )
        else:  # DNS, refused or dropped connection, timeout: nothing to do with certificates
            fix = (
                "Check RUNBOOK_AUTHORITY (https://login.microsoftonline.com for the public cloud) "
                "and that this machine can reach it (DNS, firewall, outbound proxy), then run "
                "again."
            )
        raise SignInError(
            f"Could not reach the sign-in authority: {detail.splitlines()[0]}",
            fix,
            hint="01-connect",
        ) from exc
    except ClientAuthenticationError as exc:
        raw = redact(str(getattr(exc, "message", "") or exc))
        first = raw.strip().splitlines()[0] if raw.strip() else "sign-in failed"
        code, fix = _fix_for(raw)
        if not fix and ("CERTIFICATE_VERIFY_FAILED" in raw or "SSLError" in raw):
            fix = (
                "The sign-in authority's TLS certificate is not trusted: if a TLS-inspecting "
                "proxy or a private CA serves RUNBOOK_AUTHORITY, set RUNBOOK_CA_BUNDLE to its CA "
                "certificate (PEM)."
            )
        elif not fix and "Unable to get authority configuration" in raw:
            # MSAL's words when the tenant's OpenID metadata cannot be read: Entra answers an
            # unknown tenant with AADSTS90002 there, but MSAL does not pass the code on.
            fix = (
                "Entra does not know the tenant in RUNBOOK_TENANT_ID, or RUNBOOK_AUTHORITY is not "
                "a sign-in authority: copy the Directory (tenant) ID from the Entra admin center "
                "overview, and leave RUNBOOK_AUTHORITY unset for the public cloud."
            )
        elif not fix and any(
            words in raw
            for words in (
                "Failed to resolve",
                "Name or service not known",
                "getaddrinfo failed",
                "Connection refused",
                "Max retries exceeded",
            )
        ):
            fix = (
                "This machine could not reach RUNBOOK_AUTHORITY (the host name did not resolve or "
                "the connection failed): check the value (https://login.microsoftonline.com for "
                "the public cloud), DNS, the firewall and any outbound proxy (HTTPS_PROXY)."
            )
        elif not fix and "Azure CLI not found" in raw:
            fix = (
                "RUNBOOK_AUTH=azure-cli needs the az command on PATH: install Azure CLI, or "
                "choose another RUNBOOK_AUTH method (device-code needs nothing installed)."
            )
        elif not fix and "az login" in raw:
            fix = (
                "Azure CLI is not signed in to this tenant: run `az login --tenant "
                "<RUNBOOK_TENANT_ID>`, or choose another RUNBOOK_AUTH method."
            )
        elif not fix:
            fix = (
                "Check RUNBOOK_AUTH, RUNBOOK_TENANT_ID, RUNBOOK_CLIENT_ID and the credential "
                "the method uses, and that RUNBOOK_AUTHORITY is reachable."
            )
        raise SignInError(
            f"Sign-in for {resource} failed: {first}", fix, hint="01-connect", aadsts=code
        ) from exc
    register_secret(token.token)
    return token


# -- one sign-in per run ---------------------------------------------------------------------

RUN_SIGN_IN_ENV = "RUNBOOK_RUN_SIGN_IN"
"""Set by ``runbook run`` for its kernels: the private file holding the run's one sign-in."""

_USABLE_FOR = 360.0
"""A shared token is used only while it has this many seconds left: the Graph client renews
5 minutes before expiry, and a page must not be handed a token it would renew at once."""

_RENEW_WITHIN = 600.0
"""The runner asks its credential again only when the shared token has less than this left
(Azure CLI, for one, runs ``az`` on every request and caches nothing)."""

log = logging.getLogger(__name__)


def _run_key(settings: Settings) -> dict[str, Any]:
    """What makes two sign-ins interchangeable: the method, where, as whom, for which scopes."""
    return {
        "method": auth_method(settings),
        "authority": settings.authority.rstrip("/"),
        "tenant_id": settings.tenant_id,
        "client_id": settings.client_id,
        "certificate": str(settings.client_certificate or ""),
        "scopes": list(graph_scopes(settings)),
    }


def _read_private(path: Path) -> dict[str, Any] | None:
    """The JSON in ``path`` if it is a regular file of this user that only they can read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        private = stat.S_ISREG(info.st_mode) and (
            os.name != "posix" or (info.st_uid == os.getuid() and not info.st_mode & 0o077)
        )
        if not private:
            log.warning("Ignoring %s: not a private file of this user.", path)
            return None
        try:
            data = json.loads(handle.read())
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` in one step, readable by this user only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


class RunSignIn:
    """The runner's side of the run's one sign-in.

    :meth:`ensure` signs in on its first call and, on later calls (one before each page),
    renews the token in the file once it is near expiry. A sign-in that cannot
    start (a missing setting) shares nothing, so each page reports it in its own words; a
    sign-in that fails is shared as the error, so it is not retried (nor a device code asked
    for again) on every page.

    :param path: the file to write, in a directory only this user can enter.
    :param prompt: shows the device code message (the runner's console).
    """

    def __init__(self, path: Path, *, prompt: Callable[[str], None]) -> None:
        self.path = path
        self._prompt = prompt
        self._started = False
        self._credential: TokenCredential | None = None
        self._key: dict[str, Any] = {}
        self._scopes: tuple[str, ...] = ()
        self._token = ""
        self._expires_on = 0

    def ensure(self) -> None:
        """Sign in (first call) or refresh the shared token; never raises a sign-in error."""
        if not self._started:
            self._started = True
            try:
                settings = load_settings()
                self._key = _run_key(settings)
                self._scopes = graph_scopes(settings)
                self._credential = make_credential(settings, prompt=self._prompt)
            except RunbookError:
                return
        if self._credential is None or self._expires_on - time.time() > _RENEW_WITHIN:
            return
        try:
            token = get_token(self._credential, *self._scopes)
        except SignInError as exc:
            self._credential = None
            error = {
                "message": exc.message,
                "remediation": exc.remediation,
                "hint": exc.hint,
                "aadsts": exc.aadsts,
            }
            _write_private(self.path, {"key": self._key, "error": error})
            return
        self._expires_on = token.expires_on
        if token.token != self._token:
            self._token = token.token
            record = {"key": self._key, "token": token.token, "expires_on": token.expires_on}
            _write_private(self.path, record)


class _RunCredential:
    """A page's credential under ``runbook run``: the run's token while it lasts, then the
    page's own sign-in (built only if needed)."""

    def __init__(self, path: Path, key: dict[str, Any], fallback: Callable[[], TokenCredential]):
        self._path = path
        self._key = key
        self._fallback = fallback
        self._own: TokenCredential | None = None

    def shared(self) -> AccessToken | None:
        """The run's token, if it is for this page's sign-in and still has time left."""
        data = _read_private(self._path)
        if data is None or data.get("key") != self._key:
            return None
        error = data.get("error")
        if isinstance(error, dict):
            raise SignInError(
                str(error.get("message", "")),
                str(error.get("remediation", "")),
                hint=str(error.get("hint", "")),
                aadsts=str(error.get("aadsts", "")),
            )
        token, expires_on = data.get("token"), data.get("expires_on")
        if not isinstance(token, str) or not isinstance(expires_on, int):
            return None
        register_secret(token)
        if expires_on - time.time() < _USABLE_FOR:
            return None
        return AccessToken(token, expires_on)

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        if list(scopes) == self._key["scopes"] and not claims and not tenant_id:
            found = self.shared()
            if found is not None:
                return found
        if self._own is None:
            self._own = self._fallback()
        return self._own.get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )


def run_credential(
    settings: Settings, *, prompt: Callable[[str], None] | None = None
) -> TokenCredential | None:
    """The run's shared sign-in for a page, or None outside ``runbook run`` or when the run's
    sign-in does not fit these settings (the page then signs in itself, as before)."""
    location = os.environ.get(RUN_SIGN_IN_ENV)
    if not location:
        return None
    try:
        key = _run_key(settings)
    except RunbookError:
        return None
    credential = _RunCredential(
        Path(location), key, lambda: make_credential(settings, prompt=prompt)
    )
    data = _read_private(Path(location))
    if data is None or data.get("key") != key:
        return None
    return credential
