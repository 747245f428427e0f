"""``POST /$batch``: up to 20 Graph requests in one JSON envelope.

Each sub-request goes through the same routing, authentication and error handling as
a direct request (it reuses the outer request's ``Authorization`` header), so a batch
answers exactly what the individual calls would. Sub-requests run in order; one whose
``dependsOn`` names a failed request gets 424, as Graph documents. The outer request
is what the request log records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from ._wire import GraphCall, GraphError, json_response, read_json

__all__ = ["MAX_BATCH_REQUESTS", "run_batch"]

MAX_BATCH_REQUESTS = 20
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_KEPT_HEADERS = ("content-type", "location", "retry-after")

Dispatch = Callable[[Request], Response]


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _validated(body: dict[str, Any]) -> list[dict[str, Any]]:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise _bad("Invalid batch payload format: 'requests' must be a non-empty list.")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise _bad(
            f"The batch contains {len(requests)} requests; the limit is {MAX_BATCH_REQUESTS}."
        )
    seen: set[str] = set()
    for entry in requests:
        if not isinstance(entry, dict):
            raise _bad("Invalid batch payload format: each request must be an object.")
        request_id, method, url = entry.get("id"), entry.get("method"), entry.get("url")
        if not isinstance(request_id, str) or not request_id or request_id in seen:
            raise _bad("Each batch request needs a unique string 'id'.")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise _bad(f"Batch request '{request_id}' has an invalid 'method'.")
        if not isinstance(url, str) or not url:
            raise _bad(f"Batch request '{request_id}' needs a relative 'url'.")
        headers = entry.get("headers") or {}
        if not isinstance(headers, dict):
            raise _bad(f"Batch request '{request_id}' has invalid 'headers'.")
        if "body" in entry and not any(k.lower() == "content-type" for k in headers):
            raise _bad(f"Batch request '{request_id}' has a body but no Content-Type header.")
        depends = entry.get("dependsOn") or []
        if not isinstance(depends, list) or any(d not in seen for d in depends):
            raise _bad(f"Batch request '{request_id}' depends on an unknown or later request.")
        seen.add(request_id)
    return requests


def _sub_request(outer: Request, entry: dict[str, Any]) -> Request | None:
    url = entry["url"]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    path = "/v1.0/" + parts.path.lstrip("/")
    headers = {str(k): str(v) for k, v in (entry.get("headers") or {}).items()}
    authorization = outer.headers.get("Authorization")
    if authorization:
        headers["Authorization"] = authorization
    data = json.dumps(entry["body"]).encode() if "body" in entry else None
    builder = EnvironBuilder(
        path=path,
        base_url=outer.host_url,
        query_string=parts.query,
        method=entry["method"].upper(),
        headers=list(headers.items()),
        data=data,
    )
    try:
        return Request(builder.get_environ())
    finally:
        builder.close()


def _sub_response(request_id: str, response: Response) -> dict[str, Any]:
    headers = {
        name: value for name, value in response.headers.items() if name.lower() in _KEPT_HEADERS
    }
    answer: dict[str, Any] = {"id": request_id, "status": response.status_code, "headers": headers}
    raw = response.get_data()
    if raw:
        text = raw.decode("utf-8", "replace")
        try:
            answer["body"] = json.loads(text)
        except json.JSONDecodeError:
            answer["body"] = text
    return answer


def run_batch(call: GraphCall, dispatch: Dispatch) -> Response:
    """Answer a JSON batch by dispatching each sub-request in order."""
    requests = _validated(read_json(call.request))
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []
    for entry in requests:
        request_id = entry["id"]
        failed = [d for d in entry.get("dependsOn") or [] if statuses.get(d, 500) >= 400]
        if failed:
            statuses[request_id] = 424
            responses.append(
                {
                    "id": request_id,
                    "status": 424,
                    "headers": {"Content-Type": "application/json"},
                    "body": {
                        "error": {
                            "code": "FailedDependency",
                            "message": f"Dependent request(s) {', '.join(failed)} failed.",
                        }
                    },
                }
            )
            continue
        sub = _sub_request(call.request, entry)
        if sub is None:
            statuses[request_id] = 400
            responses.append(
                {
                    "id": request_id,
                    "status": 400,
                    "headers": {"Content-Type": "application/json"},
                    "body": {
                        "error": {
                            "code": "BadRequest",
                            "message": "Batch request URLs must be relative, e.g. '/users'.",
                        }
                    },
                }
            )
            continue
        if sub.path.rstrip("/") == "/v1.0/$batch":
            raise _bad("A batch cannot contain another batch.")
        response = dispatch(sub)
        statuses[request_id] = response.status_code
        responses.append(_sub_response(request_id, response))
    return json_response(call, {"responses": responses})
