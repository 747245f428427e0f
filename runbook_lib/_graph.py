"""A small Microsoft Graph client on httpx.

Why not the Graph SDK: it cannot PUT a synchronization schema and weighs 130 MB. This client
does only what the runbook needs, carefully:

* base URL from the settings, bearer token from the azure-identity credential (refreshed
  before it expires);
* Graph's error body mapped to :class:`GraphError` subclasses, keeping code, message and
  request-id (what Microsoft support asks for);
* retries, bounded in attempts and in total time (see "Retries" below);
* ``@odata.nextLink`` paging;
* :meth:`GraphClient.wait_for` for eventual consistency: a service principal created a second
  ago can still answer 404 for a while;
* :meth:`GraphClient.batch_get`: up to 20 GETs in one JSON ``$batch`` request, each throttled
  sub-request retried on its own.

Retries
-------
A call is sent again when the first try failed in a way that says nothing about the request
itself: the connection could not be opened or was dropped (``httpx.TransportError``: a reset,
``RemoteProtocolError``, ``ReadError``, a timeout), or Graph answered 429, 500, 502, 503 or
504. The wait is the answer's ``Retry-After`` (seconds or an HTTP date), else an exponential
backoff (1, 2, 4 ... 32 s) with up to 25 % random jitter; no single wait is longer than
``max_retry_wait``, a call is sent at most ``max_retries + 1`` times and gives up once its
waits and sends would pass ``max_retry_time``. The error then names the attempts. A TLS
failure or a host name that does not resolve is a setting to fix and is not retried; a
refused connection is retried twice.

Whether a call may simply be sent again depends on what it does:

* **repeatable**: GET, HEAD, PUT and DELETE, and PATCH (Graph's PATCH sets the properties
  sent, so a second one sets them to the same values). A DELETE that, sent again, answers
  404 had worked the first time and returns normally. Among the POSTs, actions whose
  repetition ends in the same state: ``validateCredentials`` (Test connection only reads),
  ``start``, ``pause``, ``restart`` (the job ends started, paused, restarted),
  ``provisionOnDemand`` (the object ends provisioned), and a ``$batch`` whose sub-requests
  are all GETs.
* **creates** (every other POST): sending one again after an unknown outcome could make a
  second object. They are sent again unchecked only after a 429, which Graph sends before
  doing anything. After a dropped connection, a timeout or a 5xx the client first *reads*
  whether the object exists (several reads apart, for replication); it returns the object
  when it does and only sends the call again when it does not. If the repeat is answered
  "already exists" (a 409, or Graph's 400 "Permission being assigned already exists"), the
  object is read back and returned. The client knows how to read back the three creates
  the runbook sends (see :meth:`GraphClient.request`); for any other POST pass ``recover=``
  (or use :meth:`GraphClient.create_once`), otherwise the unknown outcome is raised as
  :class:`~runbook_lib._exceptions.GraphOutcomeUnknown` without a second send.

Test connection (``validateCredentials``) reports a failure of the *target* as a 400 whose
message carries the target's answer; when that answer is ``HTTP/429`` or ``HTTP/5xx`` (or
the target did not answer in time, or dropped the connection), Iru was momentarily
unavailable, not refusing the token, and the call is retried like a 503.

One client may be shared by several threads: httpx's client is thread-safe, and the token
refresh and the request counter are guarded by a lock.

Request and response bodies are never logged: they can hold the SCIM token.
"""

from __future__ import annotations

import logging
import random
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials import TokenCredential

from ._auth import get_token
from ._exceptions import (
    AmbiguousAppError,
    ConsistencyTimeout,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphOutcomeUnknown,
    GraphThrottled,
)
from ._permissions import grant_instructions, permission_for_request
from ._redact import redact
from ._transport import retry_after, transport_kind

__all__ = ["GraphClient", "is_repeatable", "odata_quote", "user_key"]

log = logging.getLogger("runbook_lib.graph")

_THROTTLED_STATUSES = frozenset({429, 503, 504})
"""Statuses that still failing after the retries raise :class:`GraphThrottled`."""
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses retried (a create only on 429 without reading back first)."""
_REPEATABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
_REPEATABLE_ACTIONS = ("validateCredentials", "start", "pause", "restart", "provisionOnDemand")
_TEST_CONNECTION_UNAVAILABLE = re.compile(
    r"HTTP/(?:429|5\d\d)\b|did not answer in time|not give a valid HTTPS response", re.I
)
"""A validateCredentials message saying the target was unavailable, not refusing."""
_CONNECT_RETRIES = 2
"""How often a refused connection (nothing sent) is tried again."""
_BACKOFF_CAP = 32.0
_DEFAULT_JITTER = 0.25
BATCH_LIMIT = 20
"""Graph's limit of sub-requests in one JSON batch (json-batching concept page)."""


def _call_path(path: str, base_url: str = "") -> str:
    """``path`` without the base URL, the query and the slashes around it."""
    if base_url and path.startswith(base_url):
        path = path[len(base_url) :]
    elif path.startswith(("https://", "http://")):
        path = urlsplit(path).path
        path = path.split("/", 2)[2] if path.count("/") >= 2 else path  # drop /v1.0
    return path.split("?")[0].strip("/")


def is_repeatable(method: str, path: str, json: Any = None) -> bool:
    """Whether sending this Graph call twice leaves the tenant as sending it once does.

    See the module's "Retries" section for the list and the reasons.
    """
    method = method.upper()
    if method in _REPEATABLE_METHODS:
        return True
    if method != "POST":
        return False
    clean = _call_path(path)
    if clean == "$batch":
        requests = json.get("requests") if isinstance(json, dict) else None
        return isinstance(requests, list) and all(
            isinstance(r, dict) and str(r.get("method", "")).upper() == "GET" for r in requests
        )
    return clean.rsplit("/", 1)[-1] in _REPEATABLE_ACTIONS


def _transport_kind(exc: httpx.TransportError) -> str:
    """``tls``, ``dns``, ``refused`` (nothing sent; a connect timeout too), ``timeout`` or
    ``dropped`` (see :func:`runbook_lib._transport.transport_kind`)."""
    kind = transport_kind(exc)
    return "refused" if kind == "connect_timeout" else kind


@dataclass
class _Budget:
    """The attempts and the time one call has used, and what it may still use."""

    max_retries: int
    max_wait: float
    max_time: float
    jitter: float
    rng: random.Random
    attempts: int = 0
    retries: int = 0
    refused: int = 0
    spent: float = 0.0

    def backoff(self) -> float:
        base = min(float(2**self.retries), _BACKOFF_CAP)
        return base + base * self.jitter * self.rng.random()

    def next_wait(self, retry_after: float | None = None) -> float | None:
        """The wait before the next attempt, or None when the budget is used up."""
        if self.retries >= self.max_retries:
            return None
        wait = min(self.backoff() if retry_after is None else retry_after, self.max_wait)
        if self.spent + wait > self.max_time:
            return None
        self.retries += 1
        self.spent += wait
        return wait

    def note(self) -> str:
        if self.attempts <= 1:
            return ""
        return f" (gave up after {self.attempts} attempts over {self.spent:.0f} s)"


def odata_quote(value: str) -> str:
    """Quote ``value`` as an OData string literal (a single quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _permission_hint(method: str, path: str) -> str:
    """Name the permission a refused call needs, from the runbook's permission table."""
    needed = permission_for_request(method, path)
    if needed is None:
        return (
            "The signed-in identity lacks a permission or directory role: run 01-connect, "
            "whose permissions pre-flight lists what is missing and how to grant it."
        )
    return (
        f"This call needs the Microsoft Graph permission {needed.name} (used to "
        f"{needed.why}). For app-only sign-in: {grant_instructions(needed, 'application')} "
        f"For a signed-in admin: {grant_instructions(needed, 'delegated')} The admin also "
        "needs the Application Administrator or Cloud Application Administrator role."
    )


def user_key(key: str) -> str:
    """The path segment that addresses a user by object id or userPrincipalName.

    Microsoft's user-get page asks for two things a plain f-string gets wrong: a guest's
    ``#EXT#`` must travel as ``%23EXT%23`` (a raw ``#`` starts the URL fragment and cuts the
    name), and a name starting with ``$`` must be written ``users('$name')``. Everything
    else that could end or split a path segment is percent-encoded too.
    """
    if key.startswith("$"):
        return "users('" + quote(key.replace("'", "''"), safe="$@!*,;=:+") + "')"
    return "users/" + quote(key, safe="@!$*,;=:+'()")


def _remediation(status: int, code: str, method: str = "", path: str = "") -> str:
    if status == 401 and "/synchronization" in path and code in ("", "UnknownError"):
        # Graph refuses a synchronization call that lacks a permission or role with a bare
        # 401 UnknownError rather than a 403.
        return _permission_hint(method, path)
    if status == 401:
        return (
            "The access token was refused: check that RUNBOOK_GRAPH_URL and RUNBOOK_AUTHORITY "
            "belong to the same cloud, then sign in again."
        )
    if status == 403:
        return _permission_hint(method, path)
    if status == 404:
        return (
            "Check the object still exists; objects created moments ago can take minutes to appear."
        )
    if status in _THROTTLED_STATUSES:
        return "Graph is throttling or unavailable: wait a few minutes and run the step again."
    if status >= 500:
        return "Graph had an internal error: run the step again; if it persists, give the request-id to Microsoft support."
    return "Read the Graph message above; it names the value Graph did not accept."


def _connection_fix(kind: str, host: str) -> tuple[str, str]:
    """What happened and what to do, for a connection that failed in the way ``kind`` says."""
    if kind == "tls":
        return (
            f"the TLS handshake with {host} failed",
            "If a TLS-inspecting proxy sits between you and Microsoft Graph, set "
            "RUNBOOK_CA_BUNDLE to its CA certificate (PEM); otherwise check RUNBOOK_GRAPH_URL.",
        )
    if kind == "dns":
        return (
            f"the host name {host} does not resolve",
            "Check the host in RUNBOOK_GRAPH_URL and that this machine can resolve names (DNS).",
        )
    if kind == "refused":
        return (
            f"could not open a connection to {host}",
            "Check the host and port in RUNBOOK_GRAPH_URL, the network, and any proxy or "
            "firewall between you and Microsoft Graph (HTTPS_PROXY).",
        )
    if kind == "timeout":
        return (
            f"{host} did not answer in time",
            "Graph or the network is slow right now: run the step again in a few minutes; "
            "it is safe to repeat.",
        )
    return (
        f"the connection to {host} was closed before Graph answered",
        "The network or Graph interrupted the connection: run the step again; it is safe "
        "to repeat (it reads the tenant first and only changes what is missing).",
    )


def _or_404(find: Callable[[], Any]) -> Callable[[], Any]:
    """``find``, raising GraphNotFound instead of returning None (for :meth:`wait_for`)."""

    def read() -> Any:
        found = find()
        if found is None:
            raise GraphNotFound("not readable yet", status=404)
        return found

    return read


def _already_exists(response: httpx.Response) -> bool:
    """A 409, or Graph's 400 for an app role assignment that already exists."""
    if response.status_code == 409:
        return True
    return response.status_code == 400 and "already exists" in response.text.lower()


class GraphClient:
    """Calls Microsoft Graph (or any endpoint with the same contract).

    :param base_url: e.g. ``https://graph.microsoft.com/v1.0``.
    :param credential: an azure-identity credential.
    :param scope: the scope(s) to request tokens for: ``.default`` for app-only sign-in,
        the named delegated scopes for an admin's device-code sign-in.
    :param verify: TLS context (see :func:`runbook_lib._tls.ssl_context`).
    :param timeout: seconds to wait for Graph to connect and to answer, per attempt.
    :param max_retries: how often one call is sent again (after a dropped connection, a
        timeout, 429 or 5xx) before giving up; a call is sent at most ``max_retries + 1``
        times.
    :param max_retry_wait: upper bound, in seconds, for a single wait between retries
        (``Retry-After`` included).
    :param max_retry_time: upper bound, in seconds, for the waits of one call; the call
        gives up rather than wait past it.
    :param jitter: the largest random fraction added to a computed backoff (0.25: up to
        25 % more), so that parallel callers do not retry in step. A server's
        ``Retry-After`` is honoured as given. None means 0.25, or 0 when ``sleep`` is
        injected, so that tests see the exact schedule.
    :param recover_reads: how many times a create whose outcome is unknown is looked for
        before it is sent again (``poll_interval`` apart, growing: replication).
    :param poll_interval: seconds between reads in :meth:`wait_for` (grows with each attempt).
    :param consistency_timeout: default limit, in seconds, for :meth:`wait_for`.
    :param sleep: injectable for tests of the retry branch.
    """

    def __init__(
        self,
        base_url: str,
        credential: TokenCredential,
        *,
        scope: str | tuple[str, ...] = "https://graph.microsoft.com/.default",
        verify: ssl.SSLContext | bool = True,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_retry_wait: float = 60.0,
        max_retry_time: float = 180.0,
        jitter: float | None = None,
        recover_reads: int = 4,
        poll_interval: float = 2.0,
        consistency_timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credential = credential
        self._scopes = (scope,) if isinstance(scope, str) else tuple(scope)
        self._token: str | None = None
        self._token_expires = 0.0
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._max_retry_time = max_retry_time
        if jitter is None:
            jitter = _DEFAULT_JITTER if sleep is time.sleep else 0.0
        self._jitter = jitter
        self._rng = random.Random()
        self._recover_reads = max(1, recover_reads)
        self._sleep = sleep
        self.poll_interval = poll_interval
        self.consistency_timeout = consistency_timeout
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            verify=verify,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "runbook-lib/0.1"},
        )
        self._host = urlsplit(self.base_url).hostname or self.base_url
        self.request_count = 0
        self.retry_count = 0
        """Attempts sent again, over the client's life (for reports and tests)."""
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bearer(self) -> str:
        token = self._token
        if token is not None and time.time() <= self._token_expires - 300:
            return token
        with self._lock:  # one refresh, even when several threads find the token stale
            if self._token is None or time.time() > self._token_expires - 300:
                fresh = get_token(self._credential, *self._scopes)
                self._token = fresh.token
                self._token_expires = float(fresh.expires_on)
            return self._token

    def access_token(self) -> str:
        """The current access token (for the permissions pre-flight's claims fallback only)."""
        return self._bearer()

    def _url(self, path: str) -> str:
        if path.startswith("https://") or path.startswith("http://"):
            return path  # an @odata.nextLink is absolute
        return path.lstrip("/")

    def _short(self, path: str) -> str:
        short = path.split("?")[0] if path.startswith("http") else "/" + path.lstrip("/")
        return short.split("?")[0].replace(self.base_url, "")

    def _budget(self) -> _Budget:
        return _Budget(
            self._max_retries, self._max_retry_wait, self._max_retry_time, self._jitter, self._rng
        )

    def _raise(
        self, method: str, path: str, response: httpx.Response, budget: _Budget | None = None
    ) -> None:
        code, message = "", response.reason_phrase or "error"
        request_id = response.headers.get("request-id", "")
        try:
            body = response.json()
            err = body.get("error", {}) if isinstance(body, dict) else {}
            if isinstance(err, dict):
                code = str(err.get("code", ""))
                message = str(err.get("message", message))
                inner = err.get("innerError") or err.get("innererror") or {}
                request_id = request_id or str(inner.get("request-id", ""))
        except ValueError:
            text = response.text.strip()
            if text:
                message = text[:300]
        status = response.status_code
        cls: type[GraphError] = GraphError
        if status in (401, 403):
            cls = GraphAuthError
        elif status == 404:
            cls = GraphNotFound
        elif status in _THROTTLED_STATUSES:
            cls = GraphThrottled
        raise cls(
            redact(message) + (budget.note() if budget is not None else ""),
            _remediation(status, code, method, path.split("?")[0].replace(self.base_url, "")),
            status=status,
            code=code,
            request_id=request_id,
            method=method,
            path=self._short(path),
        )

    def _connection_error(
        self, method: str, path: str, exc: httpx.TransportError, budget: _Budget
    ) -> GraphError:
        happened, fix = _connection_fix(_transport_kind(exc), self._host)
        detail = redact(str(exc)) or type(exc).__name__
        return GraphError(
            f"{happened} ({type(exc).__name__}: {detail}){budget.note()}",
            fix,
            method=method,
            path=self._short(path),
        )

    def _transient_test_connection(self, path: str, response: httpx.Response) -> bool:
        """A Test connection that failed because Iru was unavailable, not refusing."""
        return (
            response.status_code == 400
            and _call_path(path, self.base_url).endswith("/validateCredentials")
            and bool(_TEST_CONNECTION_UNAVAILABLE.search(response.text))
        )

    # -- reading back a create whose answer was lost ----------------------------------------
    def _recovery(self, path: str, body: Any) -> Callable[[], Any] | None:
        """How to find the object a known create makes (None for other calls).

        * ``applicationTemplates/{id}/instantiate``: the service principal named
          ``displayName`` (``$filter=displayName eq``), returned as ``{"application":
          {"appId", "displayName"}, "servicePrincipal": <the service principal>}``;
        * ``servicePrincipals/{id}/synchronization/jobs``: the job with ``templateId``;
        * ``servicePrincipals/{id}/appRoleAssignedTo``: the assignment of ``principalId``
          to ``appRoleId``.
        """
        if not isinstance(body, dict):
            return None
        parts = _call_path(path, self.base_url).split("/")
        if len(parts) == 3 and parts[0] == "applicationTemplates" and parts[2] == "instantiate":
            name = body.get("displayName")
            return (lambda: self._find_instantiated(name)) if isinstance(name, str) else None
        if (
            len(parts) == 4
            and parts[0] == "servicePrincipals"
            and parts[2:]
            == [
                "synchronization",
                "jobs",
            ]
        ):
            sp_id, template = parts[1], body.get("templateId")
            return lambda: self._find_job(sp_id, template)
        if len(parts) == 3 and parts[0] == "servicePrincipals" and parts[2] == "appRoleAssignedTo":
            sp_id, principal, role = parts[1], body.get("principalId"), body.get("appRoleId")
            return lambda: self._find_assignment(sp_id, principal, role)
        return None

    def _find_instantiated(self, name: str) -> dict[str, Any] | None:
        params = {"$filter": f"displayName eq {odata_quote(name)}"}
        matches = [
            sp
            for sp in self.get_all("servicePrincipals", params=params)
            if sp.get("displayName") == name
        ]
        if len(matches) > 1:
            raise AmbiguousAppError(name, matches)
        if not matches:
            return None
        sp = matches[0]
        return {
            "application": {"appId": sp.get("appId"), "displayName": name},
            "servicePrincipal": sp,
        }

    def _find_job(self, sp_id: str, template: Any) -> dict[str, Any] | None:
        jobs = (self.get(f"servicePrincipals/{sp_id}/synchronization/jobs") or {}).get("value", [])
        return next((j for j in jobs if j.get("templateId") == template), None)

    def _find_assignment(self, sp_id: str, principal: Any, role: Any) -> dict[str, Any] | None:
        for item in self.get_all(f"servicePrincipals/{sp_id}/appRoleAssignedTo"):
            if item.get("principalId") == principal and item.get("appRoleId") == role:
                return item
        return None

    def _reread(self, recover: Callable[[], Any], what: str, reads: int) -> Any:
        """``recover()`` up to ``reads`` times, ``poll_interval`` apart (growing); None when
        it never found the object."""
        for read in range(reads):
            if read:
                self._sleep(self.poll_interval * read)
            try:
                found = recover()
            except GraphNotFound:
                found = None
            if found is not None:
                log.info("%s: the lost request had worked; using the object it made", what)
                return found
        return None

    # -- requests ---------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        json: Any,
        headers: dict[str, str] | None,
        budget: _Budget,
    ) -> httpx.Response:
        hdrs = {
            "Authorization": f"Bearer {self._bearer()}",
            "client-request-id": str(uuid.uuid4()),
        }
        hdrs.update(headers or {})
        budget.attempts += 1
        if budget.attempts > 1:
            with self._lock:
                self.retry_count += 1
        started = time.monotonic()
        try:
            response = self._http.request(
                method, self._url(path), params=params, json=json, headers=hdrs
            )
        finally:
            budget.spent += time.monotonic() - started
        with self._lock:
            self.request_count += 1
        log.debug("%s %s -> %s", method, path.split("?")[0], response.status_code)
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        recover: Callable[[], Any] | None = None,
    ) -> Any:
        """Send one call, retrying as the module's "Retries" section says; return the
        decoded JSON body (``None`` for 204).

        ``recover`` is for a create (a POST :func:`is_repeatable` rejects): it returns the
        object the create makes when it exists, else None. It is called before the create
        is sent again after an unknown outcome. The three creates the runbook sends
        (instantiate, synchronization job, app role assignment) have one built in.
        """
        method = method.upper()
        repeatable = is_repeatable(method, path, json)
        what = f"{method} {self._short(path)}"
        if not repeatable and recover is None:
            recover = self._recovery(path, json)
        budget = self._budget()
        unknown = False  # an earlier attempt may have worked without us hearing of it
        while True:
            try:
                response = self._send(method, path, params, json, headers, budget)
            except httpx.TransportError as exc:
                kind = _transport_kind(exc)
                if kind in ("tls", "dns"):
                    raise self._connection_error(method, path, exc, budget) from exc
                if kind == "refused":
                    budget.refused += 1
                    wait = budget.next_wait() if budget.refused <= _CONNECT_RETRIES else None
                else:
                    unknown = True
                    if not repeatable:
                        cause = _connection_fix(kind, self._host)[0]
                        found = self._before_resend(recover, what, cause, method, path, budget)
                        if found is not None:
                            return found
                    wait = budget.next_wait()
                if wait is None:
                    raise self._connection_error(method, path, exc, budget) from exc
                log.info(
                    "%s: %s (%s); sending it again in %.1f s (attempt %d of %d)",
                    what,
                    type(exc).__name__,
                    kind,
                    wait,
                    budget.attempts + 1,
                    self._max_retries + 1,
                )
                self._sleep(wait)
                continue
            status = response.status_code
            if status in _RETRY_STATUSES or self._transient_test_connection(path, response):
                if status != 429:
                    unknown = True  # a 5xx may come after the change was made
                if not repeatable and status != 429:
                    cause = f"Graph answered HTTP {status}"
                    found = self._before_resend(recover, what, cause, method, path, budget)
                    if found is not None:
                        return found
                wait = budget.next_wait(retry_after(response.headers.get("Retry-After")))
                if wait is not None:
                    log.info(
                        "%s: Graph answered %s; sending it again in %.1f s (attempt %d of %d)",
                        what,
                        status,
                        wait,
                        budget.attempts + 1,
                        self._max_retries + 1,
                    )
                    self._sleep(wait)
                    continue
                self._raise(method, path, response, budget)
            if unknown and not repeatable and recover is not None and _already_exists(response):
                # The first try had worked after all: read the object back (replication).
                return self.wait_for(_or_404(recover), what=f"the object {what} made")
            if method == "DELETE" and status == 404 and unknown:
                return None  # the earlier, unanswered DELETE had worked
            if status >= 400:
                self._raise(method, path, response, budget)
            if status == 204 or not response.content:
                return None
            return response.json()

    def _before_resend(
        self,
        recover: Callable[[], Any] | None,
        what: str,
        cause: str,
        method: str,
        path: str,
        budget: _Budget,
    ) -> Any:
        """For a create whose outcome is unknown (``cause`` says why): the object when it
        exists, None to send the create again; without a way to look, GraphOutcomeUnknown."""
        if recover is None:
            raise GraphOutcomeUnknown(
                f"{cause}, so it is not known whether the change was made; it was not sent "
                f"again, as a second one could make a duplicate{budget.note()}",
                "Run the step again: it reads the tenant first and only makes what is missing.",
                method=method,
                path=self._short(path),
            )
        log.info("%s: %s; reading whether it worked before sending it again", what, cause)
        return self._reread(recover, what, self._recover_reads)

    def create_once(
        self,
        path: str,
        json: Any,
        find: Callable[[], Any],
    ) -> Any:
        """POST a create, reading with ``find`` (the object, or None) whether an attempt
        whose answer was lost had worked before sending it again.

        For creates the client has no built-in read-back for (see :meth:`request`).
        """
        return self.request("POST", path, json=json, recover=find)

    def get(self, path: str, **params: str) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, json: Any = None) -> Any:
        """POST ``json``; with no ``json`` the request has no body at all (job start/pause:
        Microsoft's pages say not to supply one)."""
        return self.request("POST", path, json=json)

    def put(self, path: str, json: Any) -> Any:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def get_all(
        self,
        path: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        top: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every item of a collection, following ``@odata.nextLink``.

        ``top`` asks for that many items per page (``$top``; directory lists allow up to 999).
        The next links carry it on by themselves.
        """
        if top is not None:
            params = {**(params or {}), "$top": str(top)}
        page = self.request("GET", path, params=params, headers=headers)
        while True:
            yield from page.get("value", [])
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            page = self.request("GET", next_link, headers=headers)

    def batch_get(self, paths: Sequence[str]) -> list[tuple[int, Any]]:
        """GET each of ``paths`` (relative, with their query) through JSON ``$batch``.

        Sends ``ceil(len(paths) / 20)`` batches, one after the other. Returns ``(status,
        body)`` per path, in order. A sub-request answered 429 or 5xx is sent again in a
        later batch after its ``Retry-After`` (bounded like a direct request); other
        statuses, 404 included, are returned for the caller to judge. The ``$batch``
        request itself is retried like any GET.
        """
        results: list[tuple[int, Any] | None] = [None] * len(paths)
        pending = list(range(len(paths)))
        budget = self._budget()
        while pending:
            retry: list[int] = []
            delays: list[float | None] = []
            for start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[start : start + BATCH_LIMIT]
                body = {
                    "requests": [
                        {"id": str(i), "method": "GET", "url": "/" + paths[i].lstrip("/")}
                        for i in chunk
                    ]
                }
                answer = self.request("POST", "$batch", json=body) or {}
                by_id = {str(r.get("id")): r for r in answer.get("responses", [])}
                for i in chunk:
                    sub = by_id.get(str(i))
                    status = int(sub.get("status", 500)) if sub else 500
                    if status in _RETRY_STATUSES:
                        headers = {
                            str(k).lower(): v for k, v in (sub or {}).get("headers", {}).items()
                        }
                        delays.append(retry_after(headers.get("retry-after")))
                        retry.append(i)
                    results[i] = (status, (sub or {}).get("body"))
            wait = None
            if retry:
                known = [d for d in delays if d is not None]
                wait = budget.next_wait(max(known) if known else None)
            if wait is None:
                break  # nothing to retry, or the budget is spent: keep the last answers
            log.info("Graph throttled %d batched request(s); retrying in %.1f s", len(retry), wait)
            self._sleep(wait)
            pending = retry
        return [r if r is not None else (500, None) for r in results]

    def wait_for(
        self,
        read: Callable[[], Any],
        *,
        what: str,
        timeout: float | None = None,
        interval: float | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Any:
        """Call ``read`` until it stops raising :class:`GraphNotFound` (eventual consistency).

        Graph's directory replicates new objects asynchronously; Microsoft advises polling
        every few seconds. Gives up after ``timeout`` seconds with :class:`ConsistencyTimeout`.
        """
        timeout = self.consistency_timeout if timeout is None else timeout
        interval = self.poll_interval if interval is None else interval
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            try:
                return read()
            except GraphNotFound as exc:
                attempt += 1
                if time.monotonic() >= deadline:
                    raise ConsistencyTimeout(
                        f"{what} was still not readable after {timeout:.0f} s.",
                        "Graph replication can be slow: wait a few minutes and run the step "
                        "again; it will find the object instead of creating another.",
                    ) from exc
                if progress is not None:
                    progress(f"Waiting for {what} to replicate (attempt {attempt})")
                self._sleep(min(interval * attempt, max(interval, 10.0)))
