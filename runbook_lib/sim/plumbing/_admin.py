"""The sandbox's own control routes, ``/_sandbox/...`` on the Graph server.

The Python handle covers tests; these routes give the same control to someone running
``runbook sim`` in one terminal and the runbook in another (or to a notebook that only
has URLs): fast-forward time, run a cycle, inject faults, change the directory, read the
SCIM store and the request log. The runbook itself never calls them.

They sit in front of the Graph app, so they are not in the request log and never get
injected faults, and they need the sandbox's admin token
(``Authorization: Bearer <admin token>``), which is separate from every token the
runbook uses.

==========================================  =============================================
``GET    /_sandbox``                         seed, tier, simulated time, apps and jobs
``POST   /_sandbox/time/fast-forward``       ``{"seconds": 2400}``; runs due cycles
``POST   /_sandbox/cycles``                  ``{"servicePrincipalId": ...}`` (optional)
``POST   /_sandbox/wait-idle``               ``{"timeout": 10}``
``GET    /_sandbox/jobs/{spId}``             the job status
``GET    /_sandbox/provisioning-logs``       ``?servicePrincipalId=``
``GET|POST|DELETE /_sandbox/faults``         list, add (fields or ``{"spec": "..."}``), clear
``GET    /_sandbox/scim/users|groups``       the Iru stand-in's store
``GET    /_sandbox/iru/users``               the Enterprise API view
``GET|DELETE /_sandbox/requests``            the request log (``?server=iru``), or clear it
``GET|POST /_sandbox/directory/users``       list, or add ``{"userPrincipalName", ...}``
``PATCH|DELETE /_sandbox/directory/users/{upn}``  change properties, or hard-delete
``POST   /_sandbox/directory/users/{upn}/soft-delete|restore``
``GET    /_sandbox/directory/groups``        list
``POST   /_sandbox/directory/groups/{id}/members``  ``{"member": upn-or-id}``
``DELETE /_sandbox/directory/groups/{id}/members/{member}``
==========================================  =============================================
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ._faults import FaultInjector, FaultRule, parse_fault
from ._request_log import RequestRecord, ServerName

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ADMIN_PREFIX", "AdminApp", "SandboxControls", "mount_admin"]

ADMIN_PREFIX = "/_sandbox"


class _AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status=status, content_type="application/json")


def _body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise _AdminError(400, "The body must be a JSON object.")
    return parsed


def _fault_from(body: dict[str, Any]) -> FaultRule:
    try:
        if "spec" in body:
            return parse_fault(str(body["spec"]))
        fields = dict(body)
        if "methods" in fields:
            fields["methods"] = tuple(fields["methods"])
        return FaultRule(**fields)
    except (TypeError, ValueError) as error:
        raise _AdminError(400, f"Invalid fault rule: {error}") from None


class SandboxControls(Protocol):
    """What the admin routes drive: the :class:`~runbook_lib.sim.Sandbox` handle.

    The routes sit below the handle (the handle mounts them), so they name only the
    methods they call; the handle's own documentation says what each one does. A
    directory change the tenant refuses raises ValueError, an unknown object KeyError.
    """

    @property
    def faults(self) -> FaultInjector: ...

    def summary(self) -> dict[str, Any]: ...

    def fast_forward(self, seconds: float) -> Sequence[Any]: ...

    def run_cycle(self, sp_id: str | None = None) -> Sequence[Any]: ...

    def wait_idle(self, timeout: float = 10.0) -> bool: ...

    def job_status(self, sp_id: str) -> dict[str, Any]: ...

    def provisioning_logs(self, sp_id: str | None = None) -> list[dict[str, Any]]: ...

    def inject(self, rule: FaultRule) -> None: ...

    def clear_faults(self) -> None: ...

    def scim_users(self) -> list[dict[str, Any]]: ...

    def scim_groups(self) -> list[dict[str, Any]]: ...

    def iru_users(self) -> list[dict[str, Any]]: ...

    def requests(self, server: ServerName | None = None) -> list[RequestRecord]: ...

    def clear_requests(self) -> None: ...

    def users(self, *, include_deleted: bool = False) -> list[dict[str, Any]]: ...

    def user(self, upn: str) -> dict[str, Any]: ...

    def add_user(
        self, user_principal_name: str, *, groups: Iterable[str] = (), **attrs: Any
    ) -> dict[str, Any]: ...

    def update_user(self, upn: str, **attrs: Any) -> dict[str, Any]: ...

    def hard_delete_user(self, upn: str) -> None: ...

    def soft_delete_user(self, upn: str) -> dict[str, Any]: ...

    def restore_user(self, upn: str) -> dict[str, Any]: ...

    def groups(self) -> list[dict[str, Any]]: ...

    def group_members(self, group_id: str) -> list[dict[str, Any]]: ...

    def add_group_member(self, group_id: str, member: str) -> bool: ...

    def remove_group_member(self, group_id: str, member: str) -> bool: ...


class AdminApp:
    """WSGI app for ``/_sandbox``; every route is a method taking the request."""

    def __init__(self, sandbox: SandboxControls, token: str) -> None:
        self.sandbox = sandbox
        self.token = token
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("", "GET", self.status),
            ("/time/fast-forward", "POST", self.fast_forward),
            ("/cycles", "POST", self.run_cycle),
            ("/wait-idle", "POST", self.wait_idle),
            ("/jobs/<sp_id>", "GET", self.job),
            ("/provisioning-logs", "GET", self.logs),
            ("/faults", "GET", self.faults),
            ("/faults", "POST", self.add_fault),
            ("/faults", "DELETE", self.clear_faults),
            ("/scim/users", "GET", lambda r: self.sandbox.scim_users()),
            ("/scim/groups", "GET", lambda r: self.sandbox.scim_groups()),
            ("/iru/users", "GET", lambda r: self.sandbox.iru_users()),
            ("/requests", "GET", self.requests),
            ("/requests", "DELETE", self.clear_requests),
            ("/directory/users", "GET", lambda r: self.sandbox.users(include_deleted=True)),
            ("/directory/users", "POST", self.add_user),
            ("/directory/users/<key>", "GET", lambda r, key: self.sandbox.user(key)),
            ("/directory/users/<key>", "PATCH", self.update_user),
            ("/directory/users/<key>", "DELETE", self.hard_delete),
            ("/directory/users/<key>/soft-delete", "POST", self.soft_delete),
            ("/directory/users/<key>/restore", "POST", self.restore),
            ("/directory/groups", "GET", lambda r: self.sandbox.groups()),
            ("/directory/groups/<key>/members", "GET", self.members),
            ("/directory/groups/<key>/members", "POST", self.add_member),
            ("/directory/groups/<key>/members/<member>", "DELETE", self.remove_member),
        ]
        self.url_map = Map(
            [Rule(ADMIN_PREFIX + path, methods=[m], endpoint=f) for path, m, f in routes],
            strict_slashes=False,
        )

    # -- routes ----------------------------------------------------------------------------

    def status(self, request: Request) -> dict[str, Any]:
        return self.sandbox.summary()

    def fast_forward(self, request: Request) -> dict[str, Any]:
        seconds = _body(request).get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise _AdminError(400, "'seconds' must be a number >= 0.")
        return {"cycles": [asdict(r) for r in self.sandbox.fast_forward(float(seconds))]}

    def run_cycle(self, request: Request) -> dict[str, Any]:
        sp_id = _body(request).get("servicePrincipalId")
        return {"cycles": [asdict(r) for r in self.sandbox.run_cycle(sp_id)]}

    def wait_idle(self, request: Request) -> dict[str, Any]:
        timeout = _body(request).get("timeout", 10)
        return {"idle": self.sandbox.wait_idle(float(timeout))}

    def job(self, request: Request, sp_id: str) -> dict[str, Any]:
        return self.sandbox.job_status(sp_id)

    def logs(self, request: Request) -> list[dict[str, Any]]:
        return self.sandbox.provisioning_logs(request.args.get("servicePrincipalId"))

    def faults(self, request: Request) -> list[dict[str, Any]]:
        rules = self.sandbox.faults.rules()
        hits = self.sandbox.faults.hits()
        return [{**asdict(rule), "hits": count} for rule, count in zip(rules, hits, strict=False)]

    def add_fault(self, request: Request) -> dict[str, Any]:
        rule = _fault_from(_body(request))
        self.sandbox.inject(rule)
        return asdict(rule)

    def clear_faults(self, request: Request) -> dict[str, Any]:
        self.sandbox.clear_faults()
        return {"cleared": True}

    def requests(self, request: Request) -> list[dict[str, Any]]:
        server = request.args.get("server")
        if server not in (None, "login", "graph", "iru"):
            raise _AdminError(400, "server must be login, graph or iru")
        return [asdict(r) for r in self.sandbox.requests(server)]  # type: ignore[arg-type]

    def clear_requests(self, request: Request) -> dict[str, Any]:
        self.sandbox.clear_requests()
        return {"cleared": True}

    def add_user(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        upn = body.pop("userPrincipalName", None)
        if not isinstance(upn, str):
            raise _AdminError(400, "'userPrincipalName' is required.")
        groups = body.pop("groups", [])
        return self.sandbox.add_user(upn, groups=groups, **body)

    def update_user(self, request: Request, key: str) -> dict[str, Any]:
        return self.sandbox.update_user(key, **_body(request))

    def hard_delete(self, request: Request, key: str) -> dict[str, Any]:
        self.sandbox.hard_delete_user(key)
        return {"deleted": key}

    def soft_delete(self, request: Request, key: str) -> dict[str, Any]:
        return self.sandbox.soft_delete_user(key)

    def restore(self, request: Request, key: str) -> dict[str, Any]:
        return self.sandbox.restore_user(key)

    def members(self, request: Request, key: str) -> list[dict[str, Any]]:
        return self.sandbox.group_members(key)

    def add_member(self, request: Request, key: str) -> dict[str, Any]:
        member = _body(request).get("member")
        if not isinstance(member, str):
            raise _AdminError(400, "'member' (a UPN or object id) is required.")
        return {"added": self.sandbox.add_group_member(key, member)}

    def remove_member(self, request: Request, key: str, member: str) -> dict[str, Any]:
        return {"removed": self.sandbox.remove_group_member(key, member)}

    # -- dispatch --------------------------------------------------------------------------

    def _respond(self, request: Request) -> Response:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), self.token):
            return _json({"error": "The sandbox admin token is missing or wrong."}, 401)
        try:
            handler, args = self.url_map.bind_to_environ(request.environ).match()
            return _json(handler(request, **args))
        except _AdminError as error:
            return _json({"error": error.message}, error.status)
        except KeyError as error:
            return _json({"error": str(error.args[0] if error.args else error)}, 404)
        except ValueError as error:  # DirectoryError is one
            return _json({"error": str(error)}, 400)
        except MethodNotAllowed:
            return _json({"error": "Method not allowed."}, 405)
        except NotFound:
            return _json({"error": f"No sandbox admin route {request.path}."}, 404)
        except HTTPException as error:
            return _json({"error": error.description}, error.code or 400)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)


def mount_admin(admin: WSGIApplication, app: WSGIApplication) -> WSGIApplication:
    """Send ``/_sandbox`` paths to ``admin`` and everything else to ``app``."""

    def route(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            return admin(environ, start_response)
        return app(environ, start_response)

    return route
