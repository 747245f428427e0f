"""The provisioning engine's SCIM client: Entra's requests, over real HTTPS.

It speaks to whatever ``BaseAddress`` the job has saved, with the saved
``SecretToken`` as the bearer token, trusting the system CAs plus the sandbox CA (so
the Iru stand-in works and a real endpoint would too). Every request is one of the
shapes Entra sends: filter lookups with double-quoted values (groups always with
``excludedAttributes=members``), POST, PATCH, DELETE and the member-existence query.

Answers are sorted into three outcomes the engine acts on:

* :class:`TargetUnavailable` - the endpoint as a whole refuses or is absent (401/403,
  a 404 on a collection, connection refused): the cycle stops and the job is
  quarantined;
* :class:`ObjectFailure` - this one object failed (429, 5xx, 409, a dropped
  connection...): it is escrowed and retried next cycle;
* a parsed JSON body (or None) otherwise.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from ._probe import CODE_CREDENTIALS_REJECTED, CODE_UNREACHABLE

__all__ = [
    "CODE_SERVICE_INCOMPATIBLE",
    "ObjectFailure",
    "ScimTarget",
    "TargetUnavailable",
    "split_base_address",
]

CODE_SERVICE_INCOMPATIBLE = "SystemForCrossDomainIdentityManagementServiceIncompatible"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_SCIM_JSON = "application/scim+json"
FLAG = "aadOptscim062020"


class TargetUnavailable(Exception):
    """The endpoint cannot be used at all; ``code`` is Entra's error code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class ObjectFailure(Exception):
    """One request for one object failed; the object is retried in a later cycle."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def split_base_address(base_address: str) -> tuple[str, bool]:
    """The base URL without its query, and whether ``aadOptscim062020`` was on it."""
    parts = urlsplit(base_address.strip())
    flags = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    flags |= {piece.lower() for piece in parts.query.split("&") if "=" not in piece}
    base = parts._replace(query="", fragment="").geturl().rstrip("/")
    return base, FLAG.lower() in flags


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _status_sentence(status: int) -> str:
    return (
        f"An HTTP/{status} {_phrase(status)} response was returned rather than the expected "
        "HTTP/200 OK response."
    )


def _object_code(status: int) -> str:
    if status == 429:
        return "TooManyRequests"
    if status == 409:
        return "EntryConflict"
    if status >= 500:
        return "InternalServerError" if status == 500 else "ServiceUnavailable"
    return CODE_SERVICE_INCOMPATIBLE


class ScimTarget:
    """One cycle's connection to a SCIM endpoint (call :meth:`close` when done)."""

    def __init__(self, base_address: str, token: str, verify: ssl.SSLContext) -> None:
        self.base, self.flagged = split_base_address(base_address)
        host = (urlsplit(self.base).hostname or "").lower()
        loopback = host in _LOOPBACK
        # On loopback (the Iru stand-in) skip proxies and set TCP_NODELAY: requests go
        # out as headers + body, and Nagle's algorithm would delay every other one.
        transport = (
            httpx.HTTPTransport(
                verify=verify, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            )
            if loopback
            else None
        )
        self.client = httpx.Client(
            base_url=self.base,
            verify=verify,
            transport=transport,
            timeout=httpx.Timeout(15.0, connect=5.0),
            trust_env=not loopback,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": _SCIM_JSON,
                "User-Agent": "runbook-sandbox-provisioning/1.0",
            },
        )
        self.requests = 0

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        collection: bool = False,
    ) -> dict[str, Any] | None:
        headers = {"Content-Type": _SCIM_JSON} if body is not None else None
        content = json.dumps(body).encode() if body is not None else None
        self.requests += 1
        try:
            response = self.client.request(
                method, path, params=params, content=content, headers=headers
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise TargetUnavailable(
                CODE_UNREACHABLE, f"Could not connect to '{self.base}': {type(error).__name__}."
            ) from None
        except httpx.TimeoutException:
            raise ObjectFailure("Timeout", f"The request {method} {path} timed out.") from None
        except httpx.TransportError as error:
            raise ObjectFailure(
                "WebExceptionProtocolError",
                f"The connection was closed during {method} {path} ({type(error).__name__}).",
            ) from None
        status = response.status_code
        if status in (401, 403):
            raise TargetUnavailable(
                CODE_CREDENTIALS_REJECTED,
                "Error validating credentials. You appear to have entered invalid credentials. "
                + _status_sentence(status),
                status,
            )
        if status == 404 and collection:
            raise TargetUnavailable(
                CODE_SERVICE_INCOMPATIBLE,
                "SCIM Compliance issue: " + _status_sentence(status),
                status,
            )
        if status == 404:
            return None
        if status >= 400:
            detail = ""
            try:
                payload = response.json()
                detail = str(payload.get("detail") or "") if isinstance(payload, dict) else ""
            except (json.JSONDecodeError, UnicodeDecodeError):
                detail = ""
            retry = response.headers.get("Retry-After")
            hint = f" Retry-After: {retry} s." if retry else ""
            raise ObjectFailure(
                _object_code(status),
                f"{method} {path} failed: {_status_sentence(status)} {detail}{hint}".strip(),
                status,
            )
        if status == 204 or not response.content:
            return {}
        try:
            parsed = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ObjectFailure(
                CODE_SERVICE_INCOMPATIBLE, f"{method} {path} did not answer with JSON."
            ) from None
        return parsed if isinstance(parsed, dict) else {}

    # -- the request shapes Entra uses ---------------------------------------------------

    def find(self, endpoint: str, attribute: str, value: str) -> list[dict[str, Any]]:
        """``GET /Users?filter=attr eq "value"`` (groups without their members)."""
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        params = {"filter": f'{attribute} eq "{escaped}"'}
        if endpoint == "Groups":
            params = {"excludedAttributes": "members", **params}
        body = self._send("GET", f"/{endpoint}", params=params, collection=True) or {}
        resources = body.get("Resources") or []
        return [r for r in resources if isinstance(r, dict)]

    def get(self, endpoint: str, resource_id: str) -> dict[str, Any] | None:
        """``GET /Users/{id}`` (groups with ``excludedAttributes=members``); None on 404."""
        params = {"excludedAttributes": "members"} if endpoint == "Groups" else None
        return self._send("GET", f"/{endpoint}/{resource_id}", params=params)

    def create(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /Users`` or ``/Groups``; returns the created resource (needs an ``id``)."""
        created = self._send("POST", f"/{endpoint}", body=body, collection=True) or {}
        if not isinstance(created.get("id"), str):
            raise ObjectFailure(
                CODE_SERVICE_INCOMPATIBLE, f"POST /{endpoint} answered without an 'id'."
            )
        return created

    def patch(self, endpoint: str, resource_id: str, operations: list[dict[str, Any]]) -> bool:
        """``PATCH /{endpoint}/{id}``; False when the object is gone (404)."""
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        }
        return self._send("PATCH", f"/{endpoint}/{resource_id}", body=body) is not None

    def delete(self, endpoint: str, resource_id: str) -> None:
        """``DELETE /{endpoint}/{id}`` (a 404 counts as already deleted)."""
        self._send("DELETE", f"/{endpoint}/{resource_id}")

    def is_member(self, group_id: str, user_id: str) -> bool:
        """``GET /Groups?filter=id eq "g" and members[value eq "u"]&excludedAttributes=members``."""
        params = {
            "excludedAttributes": "members",
            "filter": f'id eq "{group_id}" and members[value eq "{user_id}"]',
        }
        body = self._send("GET", "/Groups", params=params, collection=True) or {}
        return int(body.get("totalResults") or 0) > 0
