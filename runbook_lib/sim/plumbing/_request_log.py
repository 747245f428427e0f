"""The sandbox's request log, and the redaction that keeps secrets out of it.

Tests assert on what crossed the wire ("the runbook made exactly one write"), and the
docs may print the log. Both are only safe if the log can never carry a secret, so a
record holds the method, path, query string, status and timing, never headers or
bodies, and every string is passed through :class:`Redactor` before it is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, quote_plus, unquote_plus

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "REDACTED",
    "Redactor",
    "RequestLog",
    "RequestRecord",
    "ServerName",
    "logging_middleware",
]

ServerName = Literal["login", "graph", "iru"]

REDACTED = "[REDACTED]"

# Query parameters whose value is a credential in some protocol or other. None of the
# sandbox's own endpoints take secrets in the query string, but a client might send one
# by mistake, and that mistake must not end up in the log.
_SECRET_PARAMS = frozenset(
    {
        "access_token",
        "apikey",
        "api_key",
        "assertion",
        "client_assertion",
        "client_secret",
        "code",
        "device_code",
        "id_token",
        "key",
        "password",
        "refresh_token",
        "secret",
        "secrettoken",
        "sig",
        "token",
    }
)

# Values shorter than this are not treated as secrets: redacting "*" or "1" everywhere
# would mangle the log without protecting anything.
_MIN_SECRET_LENGTH = 8


class Redactor:
    """Remembers every secret the sandbox knows and blanks it out of text.

    Secrets are registered as they come into existence (the configured client secret
    and SCIM token, each access or refresh token issued, each SecretToken saved through
    Graph), so even a secret that shows up somewhere unexpected is removed.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        """Register ``secret`` (ignored when empty or too short to be a secret)."""
        if not secret or len(secret) < _MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._secrets.add(secret)
            self._secrets.add(quote(secret, safe=""))
            self._secrets.add(quote_plus(secret, safe=""))

    def redact(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by ``[REDACTED]``."""
        with self._lock:
            known = sorted(self._secrets, key=len, reverse=True)
        for secret in known:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def redact_query(self, query: str) -> str:
        """Return a raw query string with credential-like parameters and known secrets blanked.

        The string is kept as the client sent it (still percent-encoded), so the log
        shows exactly what crossed the wire, minus the secrets.
        """
        if not query:
            return ""
        pieces = []
        for piece in query.split("&"):
            name, sep, value = piece.partition("=")
            if sep and value and unquote_plus(name).lower() in _SECRET_PARAMS:
                piece = f"{name}={REDACTED}"
            pieces.append(piece)
        return self.redact("&".join(pieces))


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request one of the sandbox servers answered.

    ``time`` is the wall-clock start (seconds since the epoch); ``query`` is the raw
    query string with secrets removed (empty when there was none). ``status`` is 0
    when the connection was dropped without an answer (an injected fault).
    """

    server: ServerName
    method: str
    path: str
    query: str
    status: int
    time: float
    duration_ms: float


class RequestLog:
    """A thread-safe, append-only list of :class:`RequestRecord` shared by all servers."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        """Add ``record`` at the end."""
        with self._lock:
            self._records.append(record)

    def records(self, server: ServerName | None = None) -> list[RequestRecord]:
        """Return a copy of the records, optionally only those of one server."""
        with self._lock:
            records = list(self._records)
        if server is None:
            return records
        return [record for record in records if record.server == server]

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()


def logging_middleware(
    app: WSGIApplication, server: ServerName, log: RequestLog, redactor: Redactor
) -> WSGIApplication:
    """Wrap a WSGI app so each request it answers lands in ``log``.

    The record is written once the body has been produced, so the status is the one
    the client saw. Only the request line and the status are looked at.
    """

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.time()
        clock = time.perf_counter()
        seen: list[int] = []
        dropped = False
        # Read the request line before the app runs: a mounted app rewrites PATH_INFO.
        method = str(environ.get("REQUEST_METHOD", ""))
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        query = str(environ.get("QUERY_STRING", ""))

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> Callable[[bytes], object]:
            seen.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info)  # type: ignore[arg-type]

        try:
            body = list(app(environ, recording_start_response))
        except ConnectionError:
            dropped = True
            raise
        finally:
            log.append(
                RequestRecord(
                    server=server,
                    method=method,
                    path=redactor.redact(path),
                    query=redactor.redact_query(query),
                    status=0 if dropped else (seen[-1] if seen else 500),
                    time=started,
                    duration_ms=round((time.perf_counter() - clock) * 1000, 3),
                )
            )
        return body

    return wrapped
