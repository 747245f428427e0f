"""The Iru Enterprise API's user list (``GET /api/v1/users``), read from the SCIM store.

After a provisioning cycle the runbook can cross-check what Iru itself shows: the
Enterprise API lists users with ``active``, ``archived``, ``email``, ``name``,
``department``, ``job_title`` and the directory ``integration`` they came from. It is
served on the same host as SCIM but with its **own** bearer token (Enterprise API
tokens are separate from the SCIM integration's token), and pages with cursor
``next``/``previous`` URLs, at most 300 users per page.

Filters: ``email`` (substring, case-insensitive), ``id``, ``integration_id`` and
``archived`` (``true``/``false``).

Sandbox assumption (not confirmed by Iru's documentation): SCIM ``active: false`` shows
here as ``active: false`` with ``archived: false``, a SCIM DELETE removes the user from
the list, and every SCIM-provisioned user belongs to one integration of type "scim".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from scim2_server.memory import InMemoryStorage

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["IRU_API_PAGE_SIZE", "IRU_API_USERS_PATH", "IruApiView", "iru_user"]

IRU_API_USERS_PATH = "/api/v1/users"
IRU_API_PAGE_SIZE = 300
_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
INTEGRATION_ID = 1
INTEGRATION_NAME = "Microsoft Entra ID (SCIM)"


def _email(user: dict[str, Any]) -> str:
    emails = user.get("emails") or []
    chosen = next((e for e in emails if e.get("primary")), None) or next(
        (e for e in emails if e.get("type") == "work"), None
    )
    if chosen and chosen.get("value"):
        return str(chosen["value"])
    return str(user.get("userName") or "")


def _timestamp(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else value.isoformat()
    return text.replace("+00:00", "Z")


def iru_user(user: dict[str, Any], integration_uuid: str) -> dict[str, Any]:
    """One SCIM user (``model_dump`` JSON) as the Enterprise API shows it."""
    meta = user.get("meta") or {}
    enterprise = user.get(_ENTERPRISE) or {}
    name = user.get("displayName") or (user.get("name") or {}).get("formatted")
    return {
        "active": user.get("active") is not False,
        "archived": False,
        "created_at": _timestamp(meta.get("created")),
        "department": enterprise.get("department"),
        "deprecated_user_id": None,
        "device_count": 0,
        "email": _email(user),
        "id": user.get("id"),
        "integration": {
            "id": INTEGRATION_ID,
            "name": INTEGRATION_NAME,
            "type": "scim",
            "uuid": integration_uuid,
        },
        "job_title": user.get("title"),
        "name": name or user.get("userName"),
        "updated_at": _timestamp(meta.get("lastModified")),
    }


def _json(status: str, body: Any, start_response: StartResponse) -> list[bytes]:
    raw = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))]
    )
    return [raw]


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o={offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    key, _, number = text.partition("=")
    return int(number) if key == "o" and number.isdigit() else None


class IruApiView:
    """WSGI app for ``/api/v1/users`` and ``/api/v1/users/{id}`` over a SCIM storage."""

    def __init__(
        self,
        storage: InMemoryStorage,
        token: str,
        integration_uuid: str,
        page_size: int = IRU_API_PAGE_SIZE,
    ) -> None:
        self.storage = storage
        self.token = token
        self.integration_uuid = integration_uuid
        self.page_size = page_size

    def users(self) -> list[dict[str, Any]]:
        """Every SCIM-provisioned user as the API shows it, oldest first."""
        with self.storage.lock:
            stored = [
                r.model_dump()
                for r in self.storage.resources
                if r.meta is not None and r.meta.resource_type == "User"
            ]
        found = [iru_user(user, self.integration_uuid) for user in stored]
        found.sort(key=lambda u: (u["created_at"] or "", u["id"] or ""))
        return found

    def _authorized(self, environ: WSGIEnvironment) -> str | None:
        header = str(environ.get("HTTP_AUTHORIZATION") or "")
        scheme, _, token = header.partition(" ")
        if not header:
            return "Authentication credentials were not provided."
        if scheme.lower() != "bearer" or token.strip() != self.token:
            return "Invalid token."
        return None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        problem = self._authorized(environ)
        if problem is not None:
            return _json("401 Unauthorized", {"detail": problem}, start_response)
        if environ.get("REQUEST_METHOD") != "GET":
            return _json(
                "405 Method Not Allowed",
                {"detail": f'Method "{environ.get("REQUEST_METHOD")}" not allowed.'},
                start_response,
            )
        path = str(environ.get("PATH_INFO", "")).rstrip("/")
        if path == IRU_API_USERS_PATH:
            return self._list(environ, start_response)
        user_id = path.removeprefix(IRU_API_USERS_PATH + "/")
        for user in self.users():
            if user["id"] == user_id:
                return _json("200 OK", user, start_response)
        return _json("404 Not Found", {"detail": "Not found."}, start_response)

    def _list(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        from urllib.parse import parse_qs

        query = {k: v[-1] for k, v in parse_qs(str(environ.get("QUERY_STRING", ""))).items()}
        checks: list[Callable[[dict[str, Any]], bool]] = []
        if "email" in query:
            needle = query["email"].casefold()
            checks.append(lambda u: needle in (u["email"] or "").casefold())
        if "id" in query:
            checks.append(lambda u: u["id"] == query["id"])
        if "integration_id" in query:
            checks.append(lambda u: str(u["integration"]["id"]) == query["integration_id"])
        if "archived" in query:
            wanted = query["archived"].lower()
            if wanted not in ("true", "false"):
                return _json(
                    "400 Bad Request",
                    {"archived": ["Must be a valid boolean."]},
                    start_response,
                )
            checks.append(lambda u: u["archived"] is (wanted == "true"))
        found = [u for u in self.users() if all(check(u) for check in checks)]
        offset = 0
        if "cursor" in query:
            decoded = _decode_cursor(query["cursor"])
            if decoded is None:
                return _json("404 Not Found", {"detail": "Invalid cursor"}, start_response)
            offset = decoded
        page = found[offset : offset + self.page_size]
        base = (
            f"{environ.get('wsgi.url_scheme', 'https')}://{environ.get('HTTP_HOST', '')}"
            f"{IRU_API_USERS_PATH}"
        )
        kept = {k: v for k, v in query.items() if k != "cursor"}

        def link(position: int) -> str:
            return base + "?" + urlencode({**kept, "cursor": _encode_cursor(position)})

        body = {
            "next": link(offset + self.page_size) if offset + self.page_size < len(found) else None,
            "previous": link(max(0, offset - self.page_size)) if offset > 0 else None,
            "results": page,
        }
        return _json("200 OK", body, start_response)
