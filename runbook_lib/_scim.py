"""The Iru Endpoint SCIM client: a pre-flight that names the failure, and read-backs.

The pre-flight sends the same harmless request Entra's *Test connection* sends (a user filter
on a random GUID, expecting 200 and an empty ListResponse) and tells apart the mistakes admins
really make: an ``http://`` URL, a DNS name that does not resolve, a refused connection, a TLS
failure, the web-app host or a missing ``/api/v1/scim`` (404), a wrong or rotated token (401),
and a server that answers but does not speak SCIM. Each gets one sentence and a fix.

The read-backs (:meth:`IruScimClient.list_users`, :meth:`~IruScimClient.list_groups`,
:meth:`~IruScimClient.find_user`) read a server the runbook does not control, so they are
lenient about everything the comparison with Entra does not use: extension schemas they have
never heard of (Entra itself sends ``http://schemas.microsoft.com/2006/11/ResourceManagement/
ADSCIM/2.0/Group`` on group creation, and a server that keeps it echoes it back), extra
attributes, missing optional attributes, attribute names in another letter case (SCIM names
are case-insensitive), booleans stored as the strings ``"True"``/``"False"``, numeric ids, and
paging that does not follow the requested ``count``. They return small frozen records
(:class:`ScimUser`, :class:`ScimGroup`, :class:`ScimMember`) holding only what the runbook
compares, plus the raw JSON. What the comparison cannot do without (a user's ``id`` and
``userName``; a group's ``id``, ``displayName`` and each member's ``value``), a body that is
not JSON, or a ListResponse that claims results but carries no ``Resources`` raises
:class:`~runbook_lib.ScimError` naming the resource and the field.

Every request is a GET, so every one may be sent again: after a dropped connection or a
timeout, and after HTTP 429, 500, 502, 503 or 504, after the answer's ``Retry-After``
(seconds or an HTTP date) or an exponential backoff (1, 2, 4 ... s, up to 25 % jitter). A
request is sent at most ``max_retries + 1`` times and gives up once its waits would pass
``max_retry_time``; the error then names the attempts. A refused connection is tried once
more, a TLS failure or a name that does not resolve not at all: those are settings to fix,
and the pre-flight should say so at once. An Iru that stays unavailable is reported as
unavailable (``server_error`` / ``throttled``), never as a refused token.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from ._exceptions import PreflightError, ScimError
from ._redact import redact
from ._transport import retry_after, transport_kind

__all__ = [
    "LIST_RESPONSE_SCHEMA",
    "IruScimClient",
    "PreflightResult",
    "ScimGroup",
    "ScimMember",
    "ScimUser",
]

log = logging.getLogger("runbook_lib.scim")

LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
LARGE_PAGE = 1000
"""The ``count`` asked for by the whole-collection reads of a comparison."""
_HINT = "01-connect"
_COPY_URL = (
    "In Iru Endpoint open Integrations, the SCIM integration's menu (...) > View Details, and "
    "copy the SCIM API URL (it looks like https://<subdomain>.api.kandji.io/api/v1/scim) into "
    "RUNBOOK_SCIM_URL."
)


_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CONNECT_RETRIES = 1
_BACKOFF_CAP = 16.0
_DEFAULT_JITTER = 0.25


class _Reply(NamedTuple):
    """An answer and how hard it was to get (``note`` is empty after one attempt)."""

    response: httpx.Response
    note: str


def _attempts_note(attempts: int, waited: float) -> str:
    if attempts <= 1:
        return ""
    return f" (still after {attempts} attempts over {waited:.0f} s)"


@dataclass(frozen=True)
class PreflightResult:
    """What the pre-flight saw when it passed."""

    url: str
    user_probe_status: int
    group_probe_status: int
    users_reported: int


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
    :param concurrency: how many list pages :meth:`list_all_users` / :meth:`list_all_groups`
        read at once, once the first page has said how many there are.
    :param max_retries: how often one GET is sent again (dropped connection, timeout, 429,
        5xx) before giving up; it is sent at most ``max_retries + 1`` times.
    :param max_retry_wait: upper bound, in seconds, for a single wait (``Retry-After``
        included).
    :param max_retry_time: upper bound, in seconds, for the waits of one GET.
    :param jitter: the largest random fraction added to a computed backoff; None means 0.25,
        or 0 when ``sleep`` is injected (tests see the exact schedule).
    :param sleep: injectable for tests of the retry branch.
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = 1,
        max_retries: int = 4,
        max_retry_wait: float = 30.0,
        max_retry_time: float = 90.0,
        jitter: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self._token = token
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.max_retry_time = max_retry_time
        self._jitter = (
            (_DEFAULT_JITTER if sleep is time.sleep else 0.0) if jitter is None else jitter
        )
        self._rng = random.Random()
        self._sleep = sleep
        self.retry_count = 0
        """GETs sent again, over the client's life (for reports and tests)."""
        self._count_lock = threading.Lock()
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
    def _wait(self, retries: int, waited: float, retry_after: float | None) -> float | None:
        """The wait before retry number ``retries + 1``, or None when the budget is spent."""
        if retries >= self.max_retries:
            return None
        if retry_after is None:
            base = min(float(2**retries), _BACKOFF_CAP)
            retry_after = base + base * self._jitter * self._rng.random()
        wait = min(retry_after, self.max_retry_wait)
        return None if waited + wait > self.max_retry_time else wait

    def _get(self, path: str, params: dict[str, str]) -> _Reply:
        """GET ``path``, retried as the module says; transport failures become PreflightError."""
        url = f"{self.base_url}{path}"
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        attempts = retries = refused = 0
        waited = 0.0
        while True:
            attempts += 1
            try:
                response = self._http.get(url, params=params, headers=headers)
            except httpx.TransportError as exc:
                kind = self._transport_kind(exc)
                wait: float | None = None
                if kind == "connection" or isinstance(exc, httpx.ConnectTimeout):
                    refused += 1  # nothing was sent: likely a setting, so try only once more
                    if refused <= _CONNECT_RETRIES:
                        wait = self._wait(retries, waited, None)
                elif kind in ("timeout", "dropped"):
                    wait = self._wait(retries, waited, None)
                if wait is None:
                    raise self._transport_error(kind, exc, attempts, waited) from exc
                log.info("GET %s: %s; sending it again in %.1f s", path, type(exc).__name__, wait)
            else:
                status = response.status_code
                wait = None
                if status in _RETRY_STATUSES:
                    wait = self._wait(
                        retries, waited, retry_after(response.headers.get("Retry-After"))
                    )
                if wait is None:
                    return _Reply(response, _attempts_note(attempts, waited))
                log.info("GET %s: Iru answered %s; sending it again in %.1f s", path, status, wait)
            retries += 1
            waited += wait
            with self._count_lock:
                self.retry_count += 1
            self._sleep(wait)

    @staticmethod
    def _transport_kind(exc: httpx.TransportError) -> str:
        """``tls``, ``dns``, ``connection`` (nothing sent), ``timeout`` or ``dropped``
        (see :func:`runbook_lib._transport.transport_kind`)."""
        kind = transport_kind(exc)
        return {"connect_timeout": "timeout", "refused": "connection"}.get(kind, kind)

    def _transport_error(
        self, kind: str, exc: httpx.TransportError, attempts: int, waited: float
    ) -> PreflightError:
        host = urlsplit(self.base_url).hostname or self.base_url
        note = _attempts_note(attempts, waited)
        if kind == "timeout":
            return PreflightError(
                "timeout",
                f"{host} did not answer within the time limit{note}.",
                "Check the host in RUNBOOK_SCIM_URL and that a firewall or proxy is not "
                "holding the connection; if Iru is only slow, run the step again later.",
                hint=_HINT,
            )
        if kind == "tls":
            return PreflightError(
                "tls",
                f"The TLS handshake with {host} failed: {redact(str(exc))}.",
                "If a TLS-inspecting proxy sits between you and Iru, set RUNBOOK_CA_BUNDLE "
                "to its CA certificate (PEM); otherwise check the URL's host.",
                hint=_HINT,
            )
        if kind == "dns":
            return PreflightError(
                "dns",
                f"The host name {host} does not resolve (DNS lookup failed).",
                _url_advice(self.base_url),
                hint=_HINT,
            )
        if kind == "dropped":
            return PreflightError(
                "connection",
                f"{host} closed the connection before answering ({type(exc).__name__}){note}.",
                "The network or Iru interrupted the connection: run the step again in a few "
                "minutes; it only reads.",
                hint=_HINT,
            )
        return PreflightError(
            "connection",
            f"Could not connect to {host}: {redact(str(exc)) or type(exc).__name__}{note}.",
            "Check the host and port in RUNBOOK_SCIM_URL and your network or proxy.",
            hint=_HINT,
        )

    def _check_status(self, reply: _Reply, what: str) -> dict[str, Any]:
        response, note = reply
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
                f"Iru is unavailable (HTTP {status}) on {what}{note}, try again.",
                "Iru did not refuse the token: it is having an outage or is overloaded. Wait "
                "a few minutes and run the check again.",
                hint=_HINT,
                status=status,
            )
        if status == 429:
            raise PreflightError(
                "throttled",
                f"Iru is throttling requests (HTTP 429) on {what}{note}, try again.",
                "Iru did not refuse the token: it asked for fewer requests. Wait a few "
                "minutes and run the check again.",
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
        return PreflightResult(
            self.base_url, users.response.status_code, groups.response.status_code, 0
        )

    def _list(self, path: str, params: dict[str, str], what: str) -> dict[str, Any]:
        """One GET answered with a JSON object; ``what`` names the request in errors."""
        response, note = self._get(path, params)
        status = response.status_code
        if status in _RETRY_STATUSES:
            state = "throttling requests" if status == 429 else "unavailable"
            raise ScimError(
                f"Iru is {state} (HTTP {status}) on {what}{note}, try again.",
                "Iru may be having an outage or be overloaded: wait a few minutes and run the "
                "step again; it only reads.",
                hint=_HINT,
                status=status,
            )
        if status != 200:
            raise ScimError(
                f"Iru answered HTTP {status} to {what}.",
                "Run the pre-flight in 01-connect to find out why.",
                hint=_HINT,
                status=status,
            )
        ctype = response.headers.get("content-type", "") or "no content type"
        try:
            body = response.json()
        except ValueError as exc:
            raise ScimError(
                f"Iru answered {what} with a body that is not JSON ({ctype}), so it is not a "
                "SCIM ListResponse.",
                "Check that RUNBOOK_SCIM_URL is the SCIM API URL from Iru's View Details and "
                "run the pre-flight in 01-connect.",
                hint=_HINT,
                status=200,
            ) from exc
        if not isinstance(body, dict):
            raise ScimError(
                f"Iru answered {what} with JSON that is a {type(body).__name__}, not the "
                "object a SCIM ListResponse is.",
                "Check that RUNBOOK_SCIM_URL is the SCIM API URL from Iru's View Details and "
                "run the pre-flight in 01-connect.",
                hint=_HINT,
                status=200,
            )
        return body

    def find_user(self, user_name: str) -> ScimUser | None:
        """The user whose userName equals ``user_name`` (case-insensitive), or None."""
        escaped = user_name.replace("\\", "\\\\").replace('"', '\\"')
        what = f'GET /Users?filter=userName eq "{escaped}"'
        body = self._list("/Users", {"filter": f'userName eq "{escaped}"'}, what)
        _total, resources = _page_parts(body, what)
        wanted = user_name.casefold()
        for index, item in enumerate(resources):
            user = _read_user(item, f"{what}, entry {index + 1}")
            if user.user_name.casefold() == wanted:
                return user
        return None

    def list_users(self, page_size: int = 100) -> list[ScimUser]:
        """Every user, following SCIM's startIndex/count paging."""
        return self._paged("/Users", _read_user, page_size)

    def list_groups(self, page_size: int = 100) -> list[ScimGroup]:
        """Every group, members included."""
        return self._paged("/Groups", _read_group, page_size)

    def list_all_users(self) -> list[ScimUser]:
        """Every user, read at the largest page the server grants (see :meth:`_paged_large`)."""
        return self._paged_large("/Users", _read_user)

    def list_all_groups(self) -> list[ScimGroup]:
        """Every group with its members, read at the largest page the server grants."""
        return self._paged_large("/Groups", _read_group)

    def _paged_large(self, path: str, read: Callable[[Any, str], _RecordT]) -> list[_RecordT]:
        """Ask for :data:`LARGE_PAGE` resources a page: RFC 7644 lets a server answer fewer
        (the paging follows what it sends); one that refuses the size outright (HTTP 400 or
        413) is read again at 100 a page."""
        try:
            return self._paged(path, read, LARGE_PAGE, self.concurrency)
        except ScimError as exc:
            if exc.status not in (400, 413):
                raise
            return self._paged(path, read, 100, self.concurrency)

    def _paged(
        self,
        path: str,
        read: Callable[[Any, str], _RecordT],
        page_size: int,
        workers: int = 1,
    ) -> list[_RecordT]:
        """Read a whole collection, page by page, as tolerantly as the data allows.

        The next ``startIndex`` is the previous one plus the number of resources the page
        really held, so a server that ignores ``count`` (bigger or smaller pages) is read
        completely. Reading stops at ``totalResults``, at an empty page, or when a page
        brings only ids already seen (a server that ignores ``startIndex``); duplicates are
        dropped.
        """
        items: list[_RecordT] = []
        seen: set[str] = set()

        def fetch(start: int) -> tuple[str, int | None, list[Any]]:
            what = f"GET {path} (startIndex {start})"
            body = self._list(path, {"startIndex": str(start), "count": str(page_size)}, what)
            total, resources = _page_parts(body, what)
            return what, total, resources

        def keep(what: str, resources: list[Any]) -> int:
            fresh = 0
            for index, item in enumerate(resources):
                record = read(item, f"{what}, entry {index + 1}")
                if record.id in seen:
                    continue
                seen.add(record.id)
                items.append(record)
                fresh += 1
            return fresh

        start = 1
        what, total, resources = fetch(start)
        if not keep(what, resources) or (total is not None and len(items) >= total):
            return items
        start += len(resources)
        if workers > 1 and total is not None:
            # The first page told the size of the collection and of a page: read the other
            # pages at once, then carry on one by one from wherever they stopped short.
            starts = list(range(start, total + 1, len(resources)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for what, _total, page in pool.map(fetch, starts):
                    keep(what, page)
            if len(items) >= total:
                return items
            start = len(items) + 1
        while True:
            what, total, resources = fetch(start)
            fresh = keep(what, resources)
            if not resources or fresh == 0:
                return items
            if total is not None and len(items) >= total:
                return items
            start += len(resources)


# -- tolerant reading of SCIM resources --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScimMember:
    """One entry of a group's ``members``: ``value`` is the member's SCIM id."""

    value: str
    display: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class ScimUser:
    """The parts of a SCIM user the runbook compares with Entra.

    ``active`` is None when the server did not say. ``raw`` is the resource as received.
    """

    id: str
    user_name: str
    active: bool | None = None
    external_id: str | None = None
    display_name: str | None = None
    schemas: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ScimGroup:
    """The parts of a SCIM group the runbook compares with Entra (``raw``: as received)."""

    id: str
    display_name: str
    external_id: str | None = None
    members: tuple[ScimMember, ...] = ()
    schemas: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


_RecordT = TypeVar("_RecordT", ScimUser, ScimGroup)
_FIX_RECORD = (
    "The runbook needs this attribute to compare Iru with Entra. Check that RUNBOOK_SCIM_URL "
    "is Iru's SCIM API URL (View Details); if it is, look the record up in Iru Endpoint and "
    "report the answer to Iru support."
)


def _folded(item: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute names in lower case: SCIM attribute names are case-insensitive (RFC 7643)."""
    return {str(key).lower(): value for key, value in item.items()}


def _malformed(kind: str, where: str, ident: str | None, problem: str) -> ScimError:
    who = f"a {kind} (id '{ident}')" if ident else f"a {kind}"
    return ScimError(f"Iru's answer to {where} holds {who} whose {problem}.", _FIX_RECORD)


def _identifier(value: Any) -> str | None:
    """A string or integer identifier as text; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int):
        return str(value)
    return None


def _optional_text(
    fields: Mapping[str, Any], name: str, kind: str, where: str, ident: str
) -> str | None:
    value = fields.get(name.lower())
    if value is None:
        return None
    text = _identifier(value)
    if text is None and not (isinstance(value, str) and not value.strip()):
        raise _malformed(kind, where, ident, f"'{name}' is {value!r}, not text")
    return text


def _schemas(fields: Mapping[str, Any]) -> tuple[str, ...]:
    value = fields.get("schemas")
    if not isinstance(value, list):
        return ()
    return tuple(str(urn) for urn in value if isinstance(urn, str))


def _active(value: Any, where: str, ident: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        # Entra's default PATCH dialect sends "True"/"False"; a server may store them so.
        return value.strip().lower() == "true"
    raise _malformed("user", where, ident, f"'active' is {value!r}, not true or false")


def _resource_fields(kind: str, item: Any, where: str) -> tuple[dict[str, Any], str]:
    if not isinstance(item, dict):
        raise _malformed(kind, where, None, f"entry is {type(item).__name__}, not a JSON object")
    fields = _folded(item)
    ident = _identifier(fields.get("id"))
    if ident is None:
        raise _malformed(kind, where, None, "'id' is missing or empty")
    return fields, ident


def _required_text(fields: dict[str, Any], name: str, kind: str, where: str, ident: str) -> str:
    """The non-empty text attribute ``name`` (matched without case), or a ScimError naming it."""
    value = fields.get(name.lower())
    if not isinstance(value, str) or not value.strip():
        problem = f"'{name}' is missing" if value is None else f"'{name}' is {value!r}"
        raise _malformed(kind, where, ident, problem)
    return value


def _read_user(item: Any, where: str) -> ScimUser:
    """A :class:`ScimUser` from one SCIM user; ScimError names what the runbook cannot use."""
    fields, ident = _resource_fields("user", item, where)
    user_name = _required_text(fields, "userName", "user", where, ident)
    display = fields.get("displayname")
    return ScimUser(
        id=ident,
        user_name=user_name,
        active=_active(fields.get("active"), where, ident),
        external_id=_optional_text(fields, "externalId", "user", where, ident),
        display_name=display if isinstance(display, str) else None,
        schemas=_schemas(fields),
        raw=item,
    )


def _read_member(entry: Any, where: str, ident: str, index: int) -> ScimMember:
    if not isinstance(entry, dict):
        raise _malformed(
            "group", where, ident, f"'members[{index}]' is {type(entry).__name__}, not an object"
        )
    fields = _folded(entry)
    value = _identifier(fields.get("value"))
    if value is None:
        raise _malformed("group", where, ident, f"'members[{index}].value' is missing or empty")
    display, kind = fields.get("display"), fields.get("type")
    return ScimMember(
        value=value,
        display=display if isinstance(display, str) else None,
        type=kind if isinstance(kind, str) else None,
    )


def _read_group(item: Any, where: str) -> ScimGroup:
    """A :class:`ScimGroup` from one SCIM group; ScimError names what the runbook cannot use."""
    fields, ident = _resource_fields("group", item, where)
    display = _required_text(fields, "displayName", "group", where, ident)
    members = fields.get("members")
    if members is None:
        members = []
    if not isinstance(members, list):
        raise _malformed(
            "group", where, ident, f"'members' is {type(members).__name__}, not a list"
        )
    return ScimGroup(
        id=ident,
        display_name=display,
        external_id=_optional_text(fields, "externalId", "group", where, ident),
        members=tuple(_read_member(m, where, ident, i) for i, m in enumerate(members)),
        schemas=_schemas(fields),
        raw=item,
    )


def _page_parts(body: Mapping[str, Any], what: str) -> tuple[int | None, list[Any]]:
    """``totalResults`` (None when absent) and ``Resources`` of one ListResponse page."""
    fields = _folded(body)
    total_value = fields.get("totalresults")
    total: int | None = None
    if total_value is not None:
        if isinstance(total_value, bool) or not isinstance(total_value, int | str):
            total_value = "x"
        try:
            total = int(total_value)
        except ValueError:
            raise ScimError(
                f"Iru's answer to {what} has 'totalResults' {fields.get('totalresults')!r}, "
                "which is not a number.",
                _FIX_RECORD,
            ) from None
    resources = fields.get("resources")
    if resources is None:
        if total:
            raise ScimError(
                f"Iru's answer to {what} says totalResults is {total} but has no "
                "'Resources' list, so the records cannot be read.",
                _FIX_RECORD,
            )
        return total, []
    if not isinstance(resources, list):
        raise ScimError(
            f"Iru's answer to {what} has 'Resources' as a {type(resources).__name__}, not a list.",
            _FIX_RECORD,
        )
    return total, resources
