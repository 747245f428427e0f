"""The Microsoft Graph stand-in: routing, authentication and the app endpoints.

Serves the subset of ``https://graph.microsoft.com/v1.0`` the runbook uses. Every
request must carry a bearer token the sandbox's sign-in server issued for Graph;
the routing table is a werkzeug :class:`~werkzeug.routing.Map`, so later endpoints
(app role assignments, schema, job control, provisioning logs) are one rule each.
"""

from __future__ import annotations

import logging
import ssl
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import _graph_sync as sync
from ._graph_wire import (
    GraphCall,
    GraphError,
    error_response,
    json_response,
    not_found,
    read_json,
)
from ._odata import apply_select, encode_skiptoken, parse_list_query, parse_select
from ._shapes import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    NON_GALLERY_TEMPLATE_ID,
    render_application,
    render_service_principal,
)
from ._state import ServicePrincipal, TenantState
from ._tokens import IssuedToken

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["GraphApp"]

_MAX_DISPLAY_NAME = 256
_logger = logging.getLogger("runbook_lib.sim")

Handler = Callable[..., Response]

_SERVICE_PRINCIPAL_PROPERTIES: set[str] = set(
    render_service_principal(ServicePrincipal("", "", "", "", "", datetime.now(UTC)), tenant_id="")
)


def instantiate(call: GraphCall, template_id: str) -> Response:
    """POST /applicationTemplates/{id}/instantiate: a new app + service principal."""
    if template_id.lower() != NON_GALLERY_TEMPLATE_ID:
        raise not_found(template_id)
    display_name = read_json(call.request).get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise GraphError(
            400,
            "Request_BadRequest",
            "Invalid value specified for property 'displayName' of resource 'Application'.",
        )
    if len(display_name) > _MAX_DISPLAY_NAME:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid value specified for property 'displayName' of resource 'Application': "
            f"longer than {_MAX_DISPLAY_NAME} characters.",
        )
    app, sp = call.state.instantiate(NON_GALLERY_TEMPLATE_ID, display_name)
    body = {
        "@odata.context": call.context("microsoft.graph.applicationServicePrincipal"),
        "application": render_application(app, call.state.tenant_domain),
        "servicePrincipal": render_service_principal(sp, call.state.tenant_id),
    }
    return json_response(call, body, status=201)


def _entity_set(name: str, select: tuple[str, ...]) -> str:
    return f"{name}({','.join(select)})" if select else name


def list_service_principals(call: GraphCall) -> Response:
    """GET /servicePrincipals with $filter, $select, $top and paging."""
    query = parse_list_query(call.request.args, _SERVICE_PRINCIPAL_PROPERTIES)
    tenant_id = call.state.tenant_id
    predicate = query.predicate

    def matches(sp: ServicePrincipal) -> bool:
        return predicate is None or predicate(render_service_principal(sp, tenant_id))

    found = call.state.list_service_principals(matches)
    page = found[query.offset : query.offset + query.top]
    body: dict[str, Any] = {
        "@odata.context": call.context(_entity_set("servicePrincipals", query.select)),
        "value": [
            apply_select(render_service_principal(sp, tenant_id), query.select) for sp in page
        ],
    }
    next_offset = query.offset + query.top
    if next_offset < len(found):
        args = [(k, v) for k, v in call.request.args.items(multi=True) if k != "$skiptoken"]
        args.append(("$skiptoken", encode_skiptoken(next_offset)))
        body["@odata.nextLink"] = f"{call.base_url}/servicePrincipals?" + urlencode(
            args, quote_via=quote, safe="$'(),"
        )
    return json_response(call, body)


def get_service_principal(call: GraphCall, sp_id: str) -> Response:
    """GET /servicePrincipals/{id} (404 until the new object has replicated)."""
    select = parse_select(call.request.args.get("$select"), _SERVICE_PRINCIPAL_PROPERTIES)
    sp = call.state.read_service_principal(sp_id)
    if sp is None:
        raise not_found(sp_id)
    body = {
        "@odata.context": call.context(_entity_set("servicePrincipals", select) + "/$entity"),
        **apply_select(render_service_principal(sp, call.state.tenant_id), select),
    }
    return json_response(call, body)


_SP = "/v1.0/servicePrincipals/<sp_id>"
_SYNC = _SP + "/synchronization"


def _rules() -> list[Rule]:
    routes: list[tuple[str, str, Handler]] = [
        ("/v1.0/applicationTemplates/<template_id>/instantiate", "POST", instantiate),
        ("/v1.0/servicePrincipals", "GET", list_service_principals),
        (_SP, "GET", get_service_principal),
        (_SYNC + "/templates", "GET", sync.list_templates),
        (_SYNC + "/jobs", "GET", sync.list_jobs),
        (_SYNC + "/jobs", "POST", sync.create_job),
        (_SYNC + "/jobs/validateCredentials", "POST", sync.validate_credentials),
        (_SYNC + "/jobs/<job_id>", "GET", sync.get_job),
        (_SYNC + "/jobs/<job_id>/validateCredentials", "POST", sync.validate_job_credentials),
        (_SYNC + "/secrets", "GET", sync.get_secrets),
        (_SYNC + "/secrets", "PUT", sync.put_secrets),
    ]
    return [Rule(path, methods=[method], endpoint=handler) for path, method, handler in routes]


class GraphApp:
    """WSGI app answering like Microsoft Graph v1.0 for the tenant in ``state``."""

    def __init__(
        self, state: TenantState, *, authority: str, probe_context: ssl.SSLContext
    ) -> None:
        self.state = state
        self.authority = authority.rstrip("/")
        self.probe_context = probe_context
        self.url_map = Map(_rules(), strict_slashes=False, merge_slashes=False)

    def _authenticate(self, request: Request) -> IssuedToken:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        verdict, issued = self.state.tokens.check(token or None, GRAPH_RESOURCE)
        if verdict == "ok" and issued is not None:
            return issued
        message = {
            "missing": "Access token is empty.",
            "unknown": "Access token validation failure. The token was not issued by this "
            "tenant's sign-in service.",
            "expired": "Lifetime validation failed, the token is expired.",
            "audience": "Access token validation failure. Invalid audience.",
        }[verdict]
        challenge = (
            f'Bearer realm="", authorization_uri="{self.authority}/common/oauth2/authorize", '
            f'client_id="{GRAPH_APP_ID}"'
        )
        raise GraphError(
            401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge}
        )

    def _respond(self, request: Request) -> Response:
        request_id = self.state.ids.uuid("graph-requests")
        client_request_id = request.headers.get("client-request-id") or request_id
        try:
            issued = self._authenticate(request)
            adapter = self.url_map.bind_to_environ(request.environ)
            handler, args = adapter.match()
            call = GraphCall(
                request, self.state, issued, request_id, client_request_id, self.probe_context
            )
            return handler(call, **args)  # type: ignore[no-any-return]
        except GraphError as error:
            return error_response(
                error.status,
                error.code,
                error.message,
                request_id,
                client_request_id,
                error.headers,
            )
        except MethodNotAllowed:
            return error_response(
                405,
                "Request_BadRequest",
                f"The HTTP method '{request.method}' is not allowed for the request target.",
                request_id,
                client_request_id,
            )
        except NotFound:
            return error_response(
                404,
                "UnknownError",
                f"No HTTP resource was found that matches the request URI '{request.path}'.",
                request_id,
                client_request_id,
            )
        except HTTPException as error:
            return error_response(
                error.code or 400,
                "Request_BadRequest",
                error.description or "Bad request.",
                request_id,
                client_request_id,
            )
        except Exception:
            # A bug in the stand-in: answer like Graph's 500 and log the (redacted) trace.
            _logger.error(
                "Graph stand-in failed:\n%s", self.state.redactor.redact(traceback.format_exc())
            )
            return error_response(
                500,
                "UnknownError",
                "The sandbox's Graph stand-in failed; see the runbook_lib.sim log.",
                request_id,
                client_request_id,
            )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)
