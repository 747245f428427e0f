"""The Microsoft Graph stand-in's front door: routing, authentication and permissions.

Serves the subset of ``https://graph.microsoft.com/v1.0`` the runbook uses. Every
request must carry a bearer token the sandbox's sign-in server issued for Graph, and,
as in Graph, the token must hold the permissions the route's reference page documents
(and a delegated caller the directory roles it names): :mod:`._permissions` has one
entry per route and the check runs before the handler, for direct requests and for each
``$batch`` sub-request alike. The routing table is a werkzeug
:class:`~werkzeug.routing.Map`, so later endpoints are one rule (and one entry) each.
"""

from __future__ import annotations

import logging
import ssl
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ..plumbing._faults import FaultInjector, error_body
from ..provisioning.engine._engine import Engine
from ..tenant._state import TenantState
from ..tenant._tokens import IssuedToken
from ..tenant._well_known import GRAPH_APP_ID, GRAPH_RESOURCE
from . import _applications as applications
from . import _assignments as assignments
from . import _audit as audit
from . import _directory as directory
from . import _directory_writes as writes
from . import _grant_reads as grants
from . import _job_control as jobs
from . import _permissions as permissions
from . import _synchronization as sync
from ._batch import run_batch
from ._on_demand import provision_on_demand
from ._wire import (
    GraphCall,
    GraphError,
    error_response,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["GraphApp"]

_logger = logging.getLogger("runbook_lib.sim")

Handler = Callable[..., Response]


_SP = "/v1.0/servicePrincipals/<sp_id>"
_SYNC = _SP + "/synchronization"


def _rules(batch: Handler) -> list[Rule]:
    routes: list[tuple[str, str, Handler]] = [
        ("/v1.0/$batch", "POST", batch),
        ("/v1.0/users", "GET", directory.list_users),
        ("/v1.0/users/$count", "GET", directory.count_users),
        ("/v1.0/users", "POST", writes.create_user),
        ("/v1.0/users/<user_key>", "GET", directory.get_user),
        # user-get.md: a userPrincipalName starting with "$" goes in the key form users('...').
        ("/v1.0/users(<user_key>)", "GET", directory.get_user),
        ("/v1.0/users/<user_key>", "PATCH", writes.update_user),
        ("/v1.0/users/<user_key>", "DELETE", writes.delete_user),
        ("/v1.0/groups", "GET", directory.list_groups),
        ("/v1.0/groups/$count", "GET", directory.count_groups),
        ("/v1.0/groups", "POST", writes.create_group),
        ("/v1.0/groups/<group_id>", "GET", directory.get_group),
        ("/v1.0/groups/<group_id>", "DELETE", writes.delete_group),
        ("/v1.0/groups/<group_id>/members/$ref", "POST", writes.add_group_member),
        (
            "/v1.0/groups/<group_id>/members/<member_id>/$ref",
            "DELETE",
            writes.remove_group_member,
        ),
        ("/v1.0/groups/<group_id>/members", "GET", directory.list_group_members),
        # group-list-members.md: the cast segment keeps only the user members.
        (
            "/v1.0/groups/<group_id>/members/microsoft.graph.user",
            "GET",
            directory.list_group_user_members,
        ),
        ("/v1.0/groups/<group_id>/transitiveMembers", "GET", directory.list_transitive_members),
        (
            "/v1.0/directory/deletedItems/microsoft.graph.user",
            "GET",
            directory.list_deleted_users,
        ),
        ("/v1.0/directory/deletedItems/<item_id>", "GET", writes.get_deleted_item),
        ("/v1.0/directory/deletedItems/<item_id>", "DELETE", writes.purge_deleted_item),
        (
            "/v1.0/directory/deletedItems/<item_id>/restore",
            "POST",
            writes.restore_deleted_item,
        ),
        ("/v1.0/applicationTemplates/<template_id>/instantiate", "POST", applications.instantiate),
        ("/v1.0/servicePrincipals", "GET", applications.list_service_principals),
        (_SP, "GET", applications.get_service_principal),
        (_SP, "DELETE", applications.delete_service_principal),
        ("/v1.0/applications", "GET", applications.list_applications),
        ("/v1.0/applications/<app_id>", "DELETE", applications.delete_application),
        (_SYNC + "/templates", "GET", sync.list_templates),
        (_SYNC + "/jobs", "GET", sync.list_jobs),
        (_SYNC + "/jobs", "POST", sync.create_job),
        (_SYNC + "/jobs/validateCredentials", "POST", sync.validate_credentials),
        (_SYNC + "/jobs/<job_id>", "GET", sync.get_job),
        (_SYNC + "/jobs/<job_id>/validateCredentials", "POST", sync.validate_job_credentials),
        (_SYNC + "/jobs/<job_id>", "DELETE", jobs.delete_job),
        (_SYNC + "/jobs/<job_id>/start", "POST", jobs.start_job),
        (_SYNC + "/jobs/<job_id>/pause", "POST", jobs.pause_job),
        (_SYNC + "/jobs/<job_id>/restart", "POST", jobs.restart_job),
        (_SYNC + "/jobs/<job_id>/schema", "GET", jobs.get_schema),
        (_SYNC + "/jobs/<job_id>/schema", "PUT", jobs.put_schema),
        (_SYNC + "/jobs/<job_id>/schema", "DELETE", jobs.reset_schema),
        (_SYNC + "/jobs/<job_id>/schema/parseExpression", "POST", jobs.parse_schema_expression),
        (_SYNC + "/jobs/<job_id>/provisionOnDemand", "POST", provision_on_demand),
        ("/v1.0/auditLogs/provisioning", "GET", audit.list_provisioning),
        ("/v1.0/auditLogs/provisioning/<entry_id>", "GET", audit.get_provisioning_entry),
        (_SP + "/appRoleAssignedTo", "GET", assignments.list_assignments),
        (_SP + "/appRoleAssignedTo", "POST", assignments.create_assignment),
        (_SP + "/appRoleAssignedTo/<assignment_id>", "GET", assignments.get_assignment),
        (_SP + "/appRoleAssignedTo/<assignment_id>", "DELETE", assignments.delete_assignment),
        (
            "/v1.0/users/<principal_id>/appRoleAssignments",
            "GET",
            assignments.list_principal_assignments,
        ),
        (
            "/v1.0/groups/<principal_id>/appRoleAssignments",
            "GET",
            assignments.list_principal_assignments,
        ),
        ("/v1.0/subscribedSkus", "GET", applications.subscribed_skus),
        (_SYNC + "/secrets", "GET", sync.get_secrets),
        (_SYNC + "/secrets", "PUT", sync.put_secrets),
        (_SP + "/appRoleAssignments", "GET", grants.list_app_role_assignments),
        ("/v1.0/oauth2PermissionGrants", "GET", grants.list_oauth2_permission_grants),
        ("/v1.0/me", "GET", grants.get_me),
        ("/v1.0/me/memberOf", "GET", grants.list_my_memberships),
        (
            "/v1.0/me/memberOf/microsoft.graph.directoryRole",
            "GET",
            grants.list_my_directory_roles,
        ),
    ]
    return [Rule(path, methods=[method], endpoint=handler) for path, method, handler in routes]


def _route_key(rule: Rule) -> tuple[str, str]:
    """``(method, path)`` of a rule, as :data:`._permissions.ROUTE_PERMISSIONS` keys it."""
    methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    return methods[0], rule.rule


class GraphApp:
    """WSGI app answering like Microsoft Graph v1.0 for the tenant in ``state``."""

    def __init__(
        self,
        state: TenantState,
        *,
        authority: str,
        probe_context: ssl.SSLContext,
        faults: FaultInjector | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.state = state
        self.authority = authority.rstrip("/")
        self.probe_context = probe_context
        self.faults = faults
        self.engine = engine
        rules = _rules(self._batch)
        missing = permissions.missing_routes(_route_key(rule) for rule in rules)
        if missing:
            raise RuntimeError(f"Graph routes without a permission entry: {missing}")
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)

    def _batch(self, call: GraphCall) -> Response:
        return run_batch(call, self._dispatch_sub_request)

    def _dispatch_sub_request(self, request: Request) -> Response:
        """A batch sub-request: status faults apply to it as to a direct request."""
        if self.faults is not None:
            decision = self.faults.decide("graph", request.method, request.path)
            if decision.action == "status":
                body, content_type = error_body("graph", request.path, decision.status)
                response = Response(body, status=decision.status, content_type=content_type)
                if decision.retry_after is not None:
                    response.headers["Retry-After"] = str(decision.retry_after)
                return response
        return self.dispatch(request)

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

    def dispatch(self, request: Request) -> Response:
        """Answer one Graph request (also used for the sub-requests of a ``$batch``)."""
        request_id = self.state.ids.uuid("graph-requests")
        client_request_id = request.headers.get("client-request-id") or request_id
        try:
            issued = self._authenticate(request)
            adapter = self.url_map.bind_to_environ(request.environ)
            rule, args = adapter.match(return_rule=True)
            # Every rule of _rules() has an entry (checked at start-up); a rule added to the
            # map later, by a test, is served unchecked.
            entry = permissions.ROUTE_PERMISSIONS.get(_route_key(rule))
            permissions.enforce(entry, issued, self.state, request, args)
            call = GraphCall(
                request,
                self.state,
                issued,
                request_id,
                client_request_id,
                self.probe_context,
                self.engine,
            )
            return rule.endpoint(call, **args)  # type: ignore[no-any-return]
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
        return self.dispatch(Request(environ))(environ, start_response)
