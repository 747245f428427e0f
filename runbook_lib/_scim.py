"""The Iru Endpoint SCIM client: a pre-flight that names the failure, and read-backs.

The pre-flight sends the same harmless request Entra's *Test connection* sends (a user filter
on a random GUID, expecting 200 and an empty ListResponse) and tells apart the mistakes admins
really make: an ``http://`` URL, a DNS name that does not resolve, a refused connection, a TLS
failure, the web-app host or a missing ``/api/v1/scim`` (404), a wrong or rotated token (401),
and a server that answers but does not speak SCIM. Each gets one sentence and a fix.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr, ValidationError
from scim2_models import Context, EnterpriseUser, Group, ListResponse, User

from ._exceptions import PreflightError, ScimError
from ._redact import redact

__all__ = ["LIST_RESPONSE_SCHEMA", "IruScimClient", "PreflightResult"]

LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_HINT = "01-connect"
_COPY_URL = (
    "In Iru Endpoint open Integrations, the SCIM integration's menu (...) > View Details, and "
    "copy the SCIM API URL (it looks like https://<subdomain>.api.kandji.io/api/v1/scim) into "
    "RUNBOOK_SCIM_URL."
)


@dataclass(frozen=True)
class PreflightResult:
    """What the pre-flight saw when it passed."""

    url: str
    user_probe_status: int
    group_probe_status: int
    users_reported: int


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _url_advice(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path.rstrip("/")
    if host.endswith(".kandji.io") and ".api." not in f".{host}" and not host.startswith("api."):
        return (
            f"'{host}' looks like the Iru web app host, not the API host (it needs '.api.'). "
            + _COPY_URL
        )
    if not path.endswith("/api/v1/scim"):
        return f"The path '{path or '/'}' does not end in /api/v1/scim. " + _COPY_URL
    return _COPY_URL


class IruScimClient:
    """Reads the Iru SCIM endpoint with the integration's bearer token.

    :param base_url: the SCIM API URL (``https://<sub>.api.kandji.io/api/v1/scim``).
    :param token: the SCIM bearer token.
    :param verify: TLS context.
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self._token = token
        self._http = httpx.Client(
            verify=verify,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/scim+json", "User-Agent": "runbook-lib/0.1"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IruScimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport with classified failures ---------------------------------------------------
    def _get(self, path: str, params: dict[str, str]) -> httpx.Response:
        url = f"{self.base_url}{path}"
        host = urlsplit(self.base_url).hostname or self.base_url
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            return self._http.get(url, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise PreflightError(
                "timeout",
                f"{host} did not answer within the time limit.",
                "Check the host in RUNBOOK_SCIM_URL and that a firewall or proxy is not "
                "holding the connection.",
                hint=_HINT,
            ) from exc
        except httpx.TransportError as exc:
            chain = _cause_chain(exc)
            if any(isinstance(e, ssl.SSLError) for e in chain) or "SSL" in str(exc):
                raise PreflightError(
                    "tls",
                    f"The TLS handshake with {host} failed: {redact(str(exc))}.",
                    "If a TLS-inspecting proxy sits between you and Iru, set RUNBOOK_CA_BUNDLE "
                    "to its CA certificate (PEM); otherwise check the URL's host.",
                    hint=_HINT,
                ) from exc
            if any(isinstance(e, socket.gaierror) for e in chain) or "Name or service" in str(exc):
                raise PreflightError(
                    "dns",
                    f"The host name {host} does not resolve (DNS lookup failed).",
                    _url_advice(self.base_url),
                    hint=_HINT,
                ) from exc
            raise PreflightError(
                "connection",
                f"Could not connect to {host}: {redact(str(exc)) or type(exc).__name__}.",
                "Check the host and port in RUNBOOK_SCIM_URL and your network or proxy.",
                hint=_HINT,
            ) from exc

    def _check_status(self, response: httpx.Response, what: str) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise PreflightError(
                "unauthorized",
                f"Iru refused the SCIM token (HTTP {status}) on {what}: the token is wrong, "
                "was rotated, or belongs to another integration.",
                "Copy the token again (or rotate it) in Iru Endpoint > Integrations > your SCIM "
                "integration, and set RUNBOOK_SCIM_TOKEN to it with no spaces around it.",
                hint=_HINT,
                status=status,
            )
        if status == 404:
            raise PreflightError(
                "not_found",
                f"The SCIM URL answered HTTP 404 on {what}: nothing serves SCIM at "
                f"{self.base_url}.",
                _url_advice(self.base_url),
                hint=_HINT,
                status=status,
            )
        if status >= 500:
            raise PreflightError(
                "server_error",
                f"Iru answered HTTP {status} on {what}.",
                "Iru may be having an outage: wait a few minutes and run the check again.",
                hint=_HINT,
                status=status,
            )
        ctype = response.headers.get("content-type", "")
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if (
            status != 200
            or not isinstance(body, dict)
            or LIST_RESPONSE_SCHEMA not in body.get("schemas", [])
        ):
            raise PreflightError(
                "not_scim",
                f"{self.base_url} answered {what} with HTTP {status} "
                f"({ctype or 'no content type'}) that is not a SCIM ListResponse.",
                _url_advice(self.base_url),
                hint=_HINT,
                status=status,
            )
        return body

    # -- public --------------------------------------------------------------------------------
    def preflight(self) -> PreflightResult:
        """Probe the endpoint the way Entra's Test connection does; raise on any failure."""
        parts = urlsplit(self.base_url)
        if parts.scheme == "http":
            raise PreflightError(
                "insecure_url",
                f"RUNBOOK_SCIM_URL uses http:// ({self.base_url}); Entra only provisions to "
                "https:// endpoints.",
                "Use the https:// SCIM API URL from Iru's View Details.",
                hint=_HINT,
            )
        if parts.scheme != "https" or not parts.hostname:
            raise PreflightError(
                "bad_url",
                f"RUNBOOK_SCIM_URL '{self.base_url or '(empty)'}' is not an https:// URL.",
                _COPY_URL,
                hint=_HINT,
            )
        probe = str(uuid.uuid4())
        users = self._get("/Users", {"filter": f'userName eq "{probe}"'})
        body = self._check_status(users, "a user lookup")
        if int(body.get("totalResults", 0)) != 0:
            raise PreflightError(
                "not_scim",
                "A lookup for a user that cannot exist returned results, so the filter is not "
                "honoured; Entra would match the wrong users.",
                "Check RUNBOOK_SCIM_URL points at Iru's SCIM API, not another service.",
                hint=_HINT,
            )
        groups = self._get(
            "/Groups", {"excludedAttributes": "members", "filter": f'displayName eq "{probe}"'}
        )
        self._check_status(groups, "a group lookup")
        return PreflightResult(self.base_url, users.status_code, groups.status_code, 0)

    def _list(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        response = self._get(path, params)
        if response.status_code != 200:
            raise ScimError(
                f"Iru answered HTTP {response.status_code} to GET {path}.",
                "Run the pre-flight in 01-connect to find out why.",
                hint=_HINT,
                status=response.status_code,
            )
        return response.json()  # type: ignore[no-any-return]

    def find_user(self, user_name: str) -> User[EnterpriseUser] | None:
        """The user whose userName equals ``user_name`` (case-insensitive), or None."""
        escaped = user_name.replace("\\", "\\\\").replace('"', '\\"')
        body = self._list("/Users", {"filter": f'userName eq "{escaped}"'})
        try:
            parsed = ListResponse[User[EnterpriseUser]].model_validate(
                body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE
            )
        except ValidationError as exc:
            raise ScimError("Iru returned a user list the SCIM models reject.", str(exc)) from exc
        return parsed.resources[0] if parsed.resources else None

    def list_users(self, page_size: int = 100) -> list[User[EnterpriseUser]]:
        """Every user, following SCIM's startIndex/count paging."""
        return self._paged("/Users", ListResponse[User[EnterpriseUser]], page_size)

    def list_groups(self, page_size: int = 100) -> list[Group]:
        """Every group, members included."""
        return self._paged("/Groups", ListResponse[Group], page_size)

    def _paged(self, path: str, model: Any, page_size: int) -> list[Any]:
        items: list[Any] = []
        start = 1
        while True:
            body = self._list(path, {"startIndex": str(start), "count": str(page_size)})
            page = model.model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            items.extend(page.resources or [])
            total = page.total_results or 0
            got = len(page.resources or [])
            if got == 0 or len(items) >= total:
                return items
            start += got
