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
  ``count`` is cut down to it, as RFC 7644 allows);
* permissive about what it does not know, as a lenient real server is: a schema URN
  it does not publish (Entra's ``.../ADSCIM/2.0/Group`` on group creation) stays in
  ``schemas``, and top-level attributes no published schema declares (an unknown
  extension block, a vendor attribute) are kept from POST and PUT bodies and returned
  on every read, honouring ``attributes``/``excludedAttributes``
  (:class:`UnknownAttributes`). A PATCH of such an attribute is still ignored, as the
  Entra policy ignores unknown paths.

The same host also serves the Iru Enterprise API's ``GET /api/v1/users`` read view
(:mod:`._enterprise_api`), with its own token, over the same store.

Everything outside ``/api/v1/scim`` is a plain HTML page or an HTML 404, never a SCIM
answer, so a client (or the Test connection probe) can tell "wrong path" from "wrong
token" just as it would against the real host.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from wsgiref.util import application_uri

from scim2_models import (
    Context,
    Pagination,
    SCIMException,
    ScimPolicy,
    ScimProvider,
    SearchRequest,
    Uniqueness,
)
from scim2_server.applications.wsgi import send_response
from scim2_server.memory import InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.service import ScimService
from scim2_server.storage import SearchPage
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from ..plumbing._ids import IdFactory
from ..plumbing._request_log import Redactor
from ._enterprise_api import IRU_API_USERS_PATH, IruApiView

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from scim2_models import Resource, ResourceType

__all__ = [
    "IRU_SCIM_PATH",
    "SCIM_DEFAULT_PAGE_SIZE",
    "SCIM_MAX_PAGE_SIZE",
    "IruApp",
    "UnknownAttributes",
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
    """In-memory storage whose resource ids come from the sandbox's seeded ids.

    An unfiltered, unsorted list (what a reconciler pages through) is served from an id
    order kept between writes, so a page costs what the page holds: scim2-server's own
    search sorts every stored resource on each request, about a second per page at 100,000
    users. The order is the one scim2-server uses (by id), so the pages are the same.
    """

    def __init__(self, ids: IdFactory) -> None:
        super().__init__()
        self._ids = ids
        self._order: dict[tuple[str | None, ...], list[tuple[str | None, str]]] = {}
        self.pages = _PublishedCache()

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        return self._ids.uuid("iru")

    def _store(self, resource: Resource[Any], values: dict[str, Any]) -> None:
        self._order.clear()
        super()._store(resource, values)

    def _remove(self, key: Any) -> None:
        self._order.clear()
        self.pages.forget(key[1])
        super()._remove(key)

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        plain = (
            search_request.filter is None
            and search_request.sort_by is None
            and search_request.cursor is None
        )
        if not plain:
            return super().search(resource_types, search_request, position=position)
        with self.lock:
            names = tuple(dict.fromkeys(rt.name for rt in resource_types))
            order = self._order.get(names)
            if order is None:
                order = sorted(
                    ((name, rid) for name in names for rid in self._resources.get(name, {})),
                    key=lambda pair: pair[1],
                )
                self._order[names] = order
            start = search_request.start_index_0 or 0
            stop = None if search_request.count is None else start + search_request.count
            # No copy: the only reader is the search response, which publishes a copy.
            page = [self._resources[name][rid] for name, rid in order[start:stop]]
            return SearchPage(len(order), page)


class _PublishedCache:
    """Each stored resource as its list entry, JSON-encoded, kept until the resource changes.

    A list page is what a reconciler reads thousands of times, and scim2-server builds
    every entry from its pydantic model each time (a deep copy, a validated dump, then a
    second validation of the whole page): at 100,000 users that was most of the
    sandbox's time. An entry depends only on the stored resource (its id and version,
    which every write changes), the base URL and the ``attributes``/``excludedAttributes``
    asked for, so it is encoded once by scim2-server's own code and reused. Entries are
    bytes, not dicts, to keep a 100,000-user tenant small.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str | None, dict[tuple[Any, ...], bytes]]] = {}

    def get(self, resource_id: str, version: str | None, variant: tuple[Any, ...]) -> bytes | None:
        kept = self._entries.get(resource_id)
        if kept is None or kept[0] != version:
            return None
        return kept[1].get(variant)

    def put(
        self, resource_id: str, version: str | None, variant: tuple[Any, ...], entry: bytes
    ) -> None:
        kept = self._entries.get(resource_id)
        if kept is None or kept[0] != version:
            kept = (version, {})
            self._entries[resource_id] = kept
        kept[1][variant] = entry

    def forget(self, resource_id: str) -> None:
        self._entries.pop(resource_id, None)


@dataclass
class _EncodedResponse(ScimResponse):
    """A SCIM response whose JSON body is already encoded (see :class:`_ListingService`)."""

    encoded: bytes = b""


class _ListingService(ScimService):
    """scim2-server's service, with plain list pages assembled from encoded entries.

    A page with no filter, sort or cursor (what a reconciler pages through) is built from
    :class:`_PublishedCache` entries around the same ListResponse envelope; anything else,
    and every page while :attr:`plain_lists` says no, goes through scim2-server unchanged.
    A test checks both paths answer the same JSON.
    """

    cache: _PublishedCache | None = None
    plain_lists: Callable[[], bool] = staticmethod(lambda: True)

    def search_response(
        self,
        base_url: str,
        resource_types: list[ResourceType],
        page: SearchPage,
        search_request: SearchRequest[Any],
    ) -> ScimResponse:
        cache = self.cache
        plain = (
            cache is not None
            and search_request.filter is None
            and search_request.sort_by is None
            and search_request.cursor is None
            and page.total is not None
            and self.plain_lists()
        )
        if not plain or cache is None:
            return super().search_response(base_url, resource_types, page, search_request)
        variant = (
            base_url,
            tuple(search_request.attributes or ()),
            tuple(search_request.excluded_attributes or ()),
        )
        entries: list[bytes] = []
        for resource in page.resources:
            assert resource.id is not None and resource.meta is not None
            version = resource.meta.version
            entry = cache.get(resource.id, version, variant)
            if entry is None:
                entry = self.encode_entry(base_url, resource, search_request)
                cache.put(resource.id, version, variant, entry)
            entries.append(entry)
        envelope = {
            "schemas": [_LIST_RESPONSE_SCHEMA],
            "totalResults": page.total,
            "itemsPerPage": len(entries),
            "startIndex": search_request.start_index,
        }
        head = json.dumps(envelope).encode()[:-1]
        body = head + b', "Resources": [' + b", ".join(entries) + b"]}"
        return _EncodedResponse(HTTPStatus.OK, encoded=body)

    def encode_entry(
        self, base_url: str, resource: Resource[Any], search_request: SearchRequest[Any]
    ) -> bytes:
        """One list entry, JSON-encoded, as :meth:`publish` and the list's dump would give it.

        ``publish`` deep-copies the resource to set ``meta.location`` and turn references
        into URLs; when the request leaves ``meta`` whole and the resource has no reference
        (``$ref``) to turn, the stored resource is dumped as it is and the location set in
        the dump, which is the same answer at half the cost. Anything else is published.
        """
        assert resource.id is not None
        simple = not search_request.attributes and not any(
            "meta" in name.lower() for name in search_request.excluded_attributes or ()
        )
        if simple:
            dumped = resource.model_dump(
                scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=search_request
            )
            meta = dumped.get("meta")
            if isinstance(meta, dict):
                location = self.resource_location(
                    base_url, self.get_resource_type_of(resource), resource.id
                )
                meta["location"] = location
                if not self.etag_supported:
                    meta.pop("version", None)
                encoded = json.dumps(dumped).encode()
                if b'"$ref"' not in encoded:
                    return encoded
        published = self.publish(base_url, resource).model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=search_request
        )
        return json.dumps(published).encode()

    def warm(self, base_url: str, resources: Iterable[Resource[Any]]) -> int:
        """Encode the plain list entries of ``resources`` ahead of the first read.

        Used when the sandbox starts pre-provisioned: the first comparison of a 100,000-user
        tenant would otherwise pay for every entry's encoding (about 0.2 ms each) in the
        middle of the reads it is meant to measure. Entries for a resource changed later
        are simply encoded again on demand. Returns how many were encoded.
        """
        cache = self.cache
        if cache is None:
            return 0
        request: SearchRequest[Any] = SearchRequest()
        variant = (base_url, (), ())
        count = 0
        for resource in resources:
            if resource.id is None or resource.meta is None:
                continue
            entry = self.encode_entry(base_url, resource, request)
            cache.put(resource.id, resource.meta.version, variant, entry)
            count += 1
        return count


_LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_COMMON_KEYS = frozenset({"schemas", "id", "externalid", "meta"})


def _declared_names(provider: ScimProvider) -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
    """Per endpoint ("users", folded): its declared attribute names and schema URNs, lower case."""
    by_urn = {schema.id: schema for schema in provider.schemas}
    declared: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
    for resource_type in provider.resource_types:
        urns = [resource_type.schema_, *(e.schema_ for e in resource_type.schema_extensions or [])]
        names = set(_COMMON_KEYS)
        core = by_urn.get(str(resource_type.schema_))
        attributes = (core.attributes if core is not None else None) or []
        names.update((attribute.name or "").lower() for attribute in attributes)
        endpoint = (resource_type.endpoint or "").strip("/").casefold()
        declared[endpoint] = (frozenset(names), tuple(str(urn).lower() for urn in urns))
    return declared


def _names(parameter: str | None) -> set[str]:
    return {name.strip().lower() for name in (parameter or "").split(",") if name.strip()}


class UnknownAttributes:
    """The top-level attributes of stored resources that no published schema declares.

    scim2-server validates bodies with its models, which drop such attributes (the
    Entra policy ignores them rather than refusing the request). A lenient real server
    stores what it is sent, so this keeps them beside the store, by resource id, and
    adds them back to every answer that carries the resource.
    """

    def __init__(self, provider: ScimProvider) -> None:
        self._declared = _declared_names(provider)
        self._kept: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def unknown_in(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The attributes of ``body`` the endpoint's schemas do not declare."""
        names, urns = self._declared.get(endpoint.strip("/").casefold(), (_COMMON_KEYS, ()))
        return {
            key: value
            for key, value in body.items()
            if key.lower() not in names and not key.lower().startswith(urns)
        }

    def kept(self, resource_id: str) -> dict[str, Any]:
        """What is kept for one resource (a copy; empty when nothing is)."""
        with self._lock:
            return dict(self._kept.get(resource_id, {}))

    def keep(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        """Replace what is kept for one resource (nothing kept when ``attributes`` is empty)."""
        with self._lock:
            if attributes:
                self._kept[resource_id] = dict(attributes)
            else:
                self._kept.pop(resource_id, None)

    def add_to(self, resource: dict[str, Any], query: Mapping[str, str] | None = None) -> None:
        """Put the kept attributes back into ``resource``, as ``attributes``/``excludedAttributes`` allow."""
        resource_id = resource.get("id")
        if not isinstance(resource_id, str):
            return
        kept = self.kept(resource_id)
        if not kept:
            return
        query = query or {}
        only, excluded = _names(query.get("attributes")), _names(query.get("excludedAttributes"))
        for key, value in kept.items():
            if (only and key.lower() not in only) or key.lower() in excluded:
                continue
            resource.setdefault(key, value)

    def after(
        self,
        request: ScimRequest,
        target_operation: Operation | None,
        endpoint: str | None,
        resource_id: str | None,
        response: ScimResponse,
    ) -> None:
        """Record or add back the unknown attributes around one served request."""
        status = int(response.status)
        if endpoint is None or status >= 300:
            return
        if target_operation is Operation.delete:
            self.keep(resource_id or "", {})
            return
        if target_operation in (Operation.create, Operation.replace):
            try:
                sent = json.loads(request.body)
            except ValueError:
                return
            if not isinstance(sent, dict) or response.body is None:
                return
            stored_id = (
                response.body.get("id") if target_operation is Operation.create else resource_id
            )
            if isinstance(stored_id, str):
                self.keep(stored_id, self.unknown_in(endpoint, sent))
        if not isinstance(response.body, dict) or not self.has_any():
            return
        resources = response.body.get("Resources")
        if isinstance(resources, list):
            for resource in resources:
                if isinstance(resource, dict):
                    self.add_to(resource, request.query)
        elif "id" in response.body:
            self.add_to(response.body, request.query)

    def has_any(self) -> bool:
        """Whether any resource has unknown attributes kept."""
        with self._lock:
            return bool(self._kept)


class _ScimApplication(BearerTokenApplication):
    """scim2-server's bearer-token app, rooted at ``/api/v1/scim`` with no ``/v2``.

    Errors are logged through the sandbox's redactor instead of scim2-server's own
    logger: a validation error can quote the request's values. Unknown attributes are
    kept and returned by :attr:`unknown` (see :class:`UnknownAttributes`).
    """

    redactor: Redactor = Redactor()
    unknown: UnknownAttributes | None = None

    def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        response = super().dispatch_request(request)
        if self.unknown is not None:
            target = self.service.match(request)
            if target.operation in _RESOURCE_OPERATIONS and not target.me:
                self.unknown.after(
                    request, target.operation, target.endpoint, target.resource_id, response
                )
        return response

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self.serve(self.read_request(environ))
        if not isinstance(response, _EncodedResponse):
            return send_response(response, start_response)
        status = f"{response.status.value} {response.status.phrase}"
        start_response(status, list(response.headers.items()))
        return [response.encoded]

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


_RESOURCE_OPERATIONS = frozenset(
    {
        Operation.create,
        Operation.query,
        Operation.replace,
        Operation.patch,
        Operation.delete,
        Operation.search,
        Operation.search_with_body,
    }
)

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
        service = _ListingService(provider, secret=secrets.token_urlsafe(32))
        service.cache = self.storage.pages
        self.scim = _ScimApplication(
            self.storage,
            provider,
            # Cursor pagination is off by default; the secret only guards cursors.
            service=service,
            bearer_tokens=[scim_token],
        )
        self.scim.redactor = redactor
        self.unknown = UnknownAttributes(provider)
        self.scim.unknown = self.unknown
        # Kept unknown attributes are added to list entries after the fact; with any kept,
        # pages take scim2-server's own path so they are added to a dict body.
        unknown = self.unknown
        service.plain_lists = lambda: not unknown.has_any()

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        """The stored resources of one type ("User" or "Group"), as SCIM JSON.

        Attributes the schemas do not declare, kept from the requests, are included.
        """
        with self.storage.lock:
            stored = [
                resource
                for resource in self.storage.resources
                if resource.meta is not None and resource.meta.resource_type == resource_type
            ]
            dumped = [resource.model_dump() for resource in stored]
        for resource in dumped:
            self.unknown.add_to(resource)
        return dumped

    def warm_pages(self, base_url: str) -> int:
        """Encode every stored resource's list entry for ``base_url`` (see :meth:`_ListingService.warm`)."""
        service = self.scim.service
        if not isinstance(service, _ListingService):
            return 0
        with self.storage.lock:
            stored = [r for by_id in self.storage._resources.values() for r in by_id.values()]
        return service.warm(base_url.rstrip("/"), stored)

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
