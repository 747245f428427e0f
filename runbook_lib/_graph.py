"""A small Microsoft Graph client on httpx.

Why not the Graph SDK: it cannot PUT a synchronization schema and weighs 130 MB. This client
does only what the runbook needs, carefully:

* base URL from the settings, bearer token from the azure-identity credential (refreshed
  before it expires);
* Graph's error body mapped to :class:`GraphError` subclasses, keeping code, message and
  request-id (what Microsoft support asks for);
* 429 and 503/504 retried after ``Retry-After`` (or exponential backoff), a bounded number
  of times;
* ``@odata.nextLink`` paging;
* :meth:`GraphClient.wait_for` for eventual consistency: a service principal created a second
  ago can still answer 404 for a while;
* :meth:`GraphClient.batch_get`: up to 20 GETs in one JSON ``$batch`` request, each throttled
  sub-request retried on its own.

One client may be shared by several threads: httpx's client is thread-safe, and the token
refresh and the request counter are guarded by a lock.

Request and response bodies are never logged: they can hold the SCIM token.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from azure.core.credentials import TokenCredential

from ._auth import get_token
from ._exceptions import (
    ConsistencyTimeout,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphThrottled,
)
from ._permissions import grant_instructions, permission_for_request
from ._redact import redact

__all__ = ["GraphClient", "odata_quote", "user_key"]

log = logging.getLogger("runbook_lib.graph")

_RETRY_STATUSES = frozenset({429, 503, 504})
BATCH_LIMIT = 20
"""Graph's limit of sub-requests in one JSON batch (json-batching concept page)."""


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
    if status in _RETRY_STATUSES:
        return "Graph is throttling or unavailable: wait a few minutes and run the step again."
    if status >= 500:
        return "Graph had an internal error: run the step again; if it persists, give the request-id to Microsoft support."
    return "Read the Graph message above; it names the value Graph did not accept."


class GraphClient:
    """Calls Microsoft Graph (or any endpoint with the same contract).

    :param base_url: e.g. ``https://graph.microsoft.com/v1.0``.
    :param credential: an azure-identity credential.
    :param scope: the scope(s) to request tokens for: ``.default`` for app-only sign-in,
        the named delegated scopes for an admin's device-code sign-in.
    :param verify: TLS context (see :func:`runbook_lib._tls.ssl_context`).
    :param max_retries: how often a 429/503/504 is retried before giving up.
    :param max_retry_wait: upper bound, in seconds, for a single wait between retries.
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
        self.request_count = 0
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

    @staticmethod
    def _retry_after(response: httpx.Response, attempt: int) -> float:
        header = response.headers.get("Retry-After", "")
        try:
            return max(0.0, float(header))
        except ValueError:
            return float(min(2**attempt, 32))

    def _raise(self, method: str, path: str, response: httpx.Response) -> None:
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
        elif status in _RETRY_STATUSES:
            cls = GraphThrottled
        short_path = path.split("?")[0] if path.startswith("http") else "/" + path.lstrip("/")
        raise cls(
            redact(message),
            _remediation(status, code, method, path.split("?")[0].replace(self.base_url, "")),
            status=status,
            code=code,
            request_id=request_id,
            method=method,
            path=short_path.replace(self.base_url, ""),
        )

    # -- requests ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (``None`` for 204)."""
        attempt = 0
        while True:
            hdrs = {
                "Authorization": f"Bearer {self._bearer()}",
                "client-request-id": str(uuid.uuid4()),
            }
            hdrs.update(headers or {})
            try:
                response = self._http.request(
                    method, self._url(path), params=params, json=json, headers=hdrs
                )
            except httpx.TransportError as exc:
                raise GraphError(
                    f"could not connect ({type(exc).__name__}: {redact(str(exc))})",
                    "Check RUNBOOK_GRAPH_URL and your network; behind a TLS-inspecting proxy "
                    "set RUNBOOK_CA_BUNDLE to the proxy's CA certificate.",
                    method=method,
                    path="/" + path.split("?")[0].lstrip("/"),
                ) from exc
            with self._lock:
                self.request_count += 1
            log.debug("%s %s -> %s", method, path.split("?")[0], response.status_code)
            if response.status_code in _RETRY_STATUSES and attempt < self._max_retries:
                wait = min(self._retry_after(response, attempt), self._max_retry_wait)
                log.info(
                    "Graph answered %s; retrying in %.1f s (attempt %d of %d)",
                    response.status_code,
                    wait,
                    attempt + 1,
                    self._max_retries,
                )
                self._sleep(wait)
                attempt += 1
                continue
            if response.status_code >= 400:
                self._raise(method, path, response)
            if response.status_code == 204 or not response.content:
                return None
            return response.json()

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
        body)`` per path, in order. A sub-request answered 429, 503 or 504 is sent again in a
        later batch after its ``Retry-After`` (bounded like a direct request); other statuses,
        404 included, are returned for the caller to judge.
        """
        results: list[tuple[int, Any] | None] = [None] * len(paths)
        pending = list(range(len(paths)))
        attempt = 0
        while pending:
            retry: list[int] = []
            wait = 0.0
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
                    if status in _RETRY_STATUSES and attempt < self._max_retries:
                        headers = {
                            str(k).lower(): v for k, v in (sub or {}).get("headers", {}).items()
                        }
                        try:
                            delay = max(0.0, float(headers.get("retry-after", "")))
                        except ValueError:
                            delay = float(min(2**attempt, 32))
                        wait = max(wait, min(delay, self._max_retry_wait))
                        retry.append(i)
                        continue
                    results[i] = (status, (sub or {}).get("body"))
            if retry:
                log.info(
                    "Graph throttled %d batched request(s); retrying in %.1f s", len(retry), wait
                )
                self._sleep(wait)
                attempt += 1
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
