"""The Iru Endpoint SCIM stand-in: scim2-server behind ``/api/v1/scim``.

Iru serves SCIM 2.0 at ``https://<subdomain>.api.kandji.io/api/v1/scim`` with a bearer
token. The sandbox serves the same path with scim2-server's in-memory provider, set
up the way Entra needs a SCIM endpoint to behave:

* the Entra-compatible :class:`~scim2_models.ScimPolicy` (capitalised PATCH ops,
  ``"False"`` strings, member removal by value, unknown attributes ignored);
* group ``displayName`` unique, so a second group with the same name gets 409;
* the bearer token checked on every request except discovery, answering 401 with a
  SCIM error and ``WWW-Authenticate``;
* index paging with a server maximum page size (:data:`SCIM_MAX_PAGE_SIZE`; a larger
  ``count`` is cut down to it, as RFC 7644 allows).

The same host also serves the Iru Enterprise API's ``GET /api/v1/users`` read view
(:mod:`._iru_api`), with its own token, over the same store.

Everything outside ``/api/v1/scim`` is a plain HTML page or an HTML 404, never a SCIM
answer, so a client (or the Test connection probe) can tell "wrong path" from "wrong
token" just as it would against the real host.
"""

from __future__ import annotations

import functools
import logging
import secrets
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.util import application_uri

from scim2_models import Pagination, SCIMException, ScimPolicy, ScimProvider, Uniqueness
from scim2_server.memory import InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from ._ids import IdFactory
from ._iru_api import IRU_API_USERS_PATH, IruApiView
from ._log import Redactor

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from scim2_models import Resource, ResourceType

__all__ = [
    "IRU_SCIM_PATH",
    "SCIM_DEFAULT_PAGE_SIZE",
    "SCIM_MAX_PAGE_SIZE",
    "IruApp",
    "entra_policy",
]

IRU_SCIM_PATH = "/api/v1/scim"
# Iru's own limits are not documented; these keep paging observable in tests.
SCIM_DEFAULT_PAGE_SIZE = 100
SCIM_MAX_PAGE_SIZE = 100
_GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
_logger = logging.getLogger("runbook_lib.sim")


def entra_policy() -> ScimPolicy:
    """The scim2-models tolerances that let Entra's real requests through."""
    return ScimPolicy(
        unknown=ScimPolicy.Unknown.ignore,
        remove_value_as_filter=ScimPolicy.RemoveValue.apply,
        unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
    )


@functools.cache
def _provider() -> ScimProvider:
    """RFC 7643 schemas with Group.displayName made unique, bearer auth announced.

    Built once per process and shared, as scim2-server's own CLI shares one provider
    between tenants: it only describes the service, the data lives in the storage.
    """
    schemas = load_default_schemas()
    group = schemas[_GROUP_SCHEMA]
    group.attributes = [
        attribute.model_copy(update={"uniqueness": Uniqueness.server})
        if attribute.name == "displayName"
        else attribute
        for attribute in group.attributes or []
    ]
    config = load_default_service_provider_config()
    config.authentication_schemes = [BEARER_TOKEN_SCHEME]
    config.pagination = Pagination(
        cursor=False,
        index=True,
        default_pagination_method=Pagination.DefaultPaginationMethod.index,
        default_page_size=SCIM_DEFAULT_PAGE_SIZE,
        max_page_size=SCIM_MAX_PAGE_SIZE,
    )
    return ScimProvider.from_discovery(
        schemas.values(),
        load_default_resource_types().values(),
        config=config,
        policy=entra_policy(),
    )


class _SeededStorage(InMemoryStorage):
    """In-memory storage whose resource ids come from the sandbox's seeded ids."""

    def __init__(self, ids: IdFactory) -> None:
        super().__init__()
        self._ids = ids

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        return self._ids.uuid("iru")


class _ScimApplication(BearerTokenApplication):
    """scim2-server's bearer-token app, rooted at ``/api/v1/scim`` with no ``/v2``.

    Errors are logged through the sandbox's redactor instead of scim2-server's own
    logger: a validation error can quote the request's values.
    """

    redactor: Redactor = Redactor()

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        if isinstance(exception, SCIMException):
            _logger.debug("SCIM %s: %s", exception.status, self.redactor.redact(str(exception)))
        else:
            _logger.error("SCIM stand-in failed:\n%s", self.redactor.redact(traceback.format_exc()))
        return self.service.error_response(exception)

    @staticmethod
    def get_base_url(environ: WSGIEnvironment) -> str:
        return application_uri(environ).rstrip("/")

    @staticmethod
    def split_path(path: str) -> str:
        # scim2-server accepts an optional /v2 prefix; Iru's URL has none, so a client
        # that appends /v2 must get a 404 here as it would from Iru.
        return path.removesuffix(".scim")


_ROOT_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Iru Endpoint (sandbox)</title></head>
<body><h1>Iru Endpoint &mdash; sandbox</h1>
<p>This host stands in for an Iru Endpoint tenant. The SCIM 2.0 API lives under
<code>/api/v1/scim</code> and needs the integration's bearer token.</p></body></html>
"""

_NOT_FOUND_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>404 Not Found</title></head>
<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>
"""


class IruApp:
    """WSGI app: the SCIM API under ``/api/v1/scim``, HTML everywhere else."""

    def __init__(
        self, ids: IdFactory, scim_token: str, redactor: Redactor, api_token: str | None = None
    ) -> None:
        self.storage = _SeededStorage(ids)
        self.api = IruApiView(
            self.storage, api_token or secrets.token_urlsafe(24), ids.uuid("iru-integration")
        )
        provider = _provider()
        self.scim = _ScimApplication(
            self.storage,
            provider,
            # Cursor pagination is off by default; the secret only guards cursors.
            service=ScimService(provider, secret=secrets.token_urlsafe(32)),
            bearer_tokens=[scim_token],
        )
        self.scim.redactor = redactor

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        """The stored resources of one type ("User" or "Group"), as SCIM JSON."""
        with self.storage.lock:
            stored = [
                resource
                for resource in self.storage.resources
                if resource.meta is not None and resource.meta.resource_type == resource_type
            ]
            return [resource.model_dump() for resource in stored]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "") or "/"
        if path == IRU_SCIM_PATH or path.startswith(IRU_SCIM_PATH + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + IRU_SCIM_PATH
            environ["PATH_INFO"] = path[len(IRU_SCIM_PATH) :] or "/"
            return self.scim(environ, start_response)
        if path == IRU_API_USERS_PATH or path.startswith(IRU_API_USERS_PATH + "/"):
            return self.api(environ, start_response)
        if path == "/" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            body, status = _ROOT_PAGE, "200 OK"
        else:
            body, status = _NOT_FOUND_PAGE, "404 Not Found"
        start_response(
            status,
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]
