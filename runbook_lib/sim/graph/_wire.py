"""Request context, JSON responses and errors in Microsoft Graph's format.

Every Graph answer carries ``request-id`` and ``client-request-id`` headers, and every
error uses the same body (``{"error": {"code", "message", "innerError": {...}}}``).
Client code keys its error handling off those, so the sandbox produces them in one
place instead of in each handler.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from ..provisioning.engine._engine import Engine
from ..tenant._state import TenantState, utc_now
from ..tenant._tokens import IssuedToken

__all__ = [
    "GRAPH_CONTENT_TYPE",
    "GraphCall",
    "GraphError",
    "error_response",
    "json_response",
    "no_content",
    "not_found",
    "read_json",
]

GRAPH_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)


class GraphError(Exception):
    """Raised by a handler to answer with a Graph error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(object_id: str) -> GraphError:
    """The 404 a directory lookup gives for an id it cannot see (yet)."""
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried "
        "reference-property objects are not present.",
    )


@dataclass(frozen=True, slots=True)
class GraphCall:
    """One authenticated Graph request, with what a handler needs to answer it.

    ``engine`` is the provisioning engine provisionOnDemand hands its subject to (None when
    the Graph stand-in runs without one, as in some tests).
    """

    request: Request
    state: TenantState
    token: IssuedToken
    request_id: str
    client_request_id: str
    probe_context: ssl.SSLContext
    engine: Engine | None = None

    @property
    def base_url(self) -> str:
        """``https://host:port/v1.0`` as the client addressed it."""
        return self.request.host_url.rstrip("/") + "/v1.0"

    def context(self, fragment: str) -> str:
        """An ``@odata.context`` URL for ``$metadata#<fragment>``."""
        return f"{self.base_url}/$metadata#{fragment}"


def _headers(request_id: str, client_request_id: str) -> dict[str, str]:
    return {
        "request-id": request_id,
        "client-request-id": client_request_id,
        "Cache-Control": "no-cache",
    }


def json_response(call: GraphCall, body: dict[str, Any], status: int = 200) -> Response:
    """Serialize ``body`` as a Graph JSON response."""
    return Response(
        json.dumps(body),
        status=status,
        content_type=GRAPH_CONTENT_TYPE,
        headers=_headers(call.request_id, call.client_request_id),
    )


def no_content(call: GraphCall) -> Response:
    """A 204 with the Graph correlation headers."""
    return Response(status=204, headers=_headers(call.request_id, call.client_request_id))


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    client_request_id: str,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    """A Graph error body, as documented in Graph's error-handling guide."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    headers = _headers(request_id, client_request_id)
    headers.update(extra_headers or {})
    return Response(
        json.dumps(body), status=status, content_type=GRAPH_CONTENT_TYPE, headers=headers
    )


def read_json(request: Request) -> dict[str, Any]:
    """Parse a JSON object request body, or raise the 400 Graph gives for bad JSON."""
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is "
            "set and payload is of valid JSON format.",
        )
    return body
