"""Fault and latency injection for the sandbox servers, deterministic under the seed.

A runbook has to survive what real services do on a bad day: Graph throttling with
429 and ``Retry-After``, a 503 from the SCIM endpoint, a dropped connection, a slow
answer. A :class:`FaultRule` describes one such behaviour for a route; the
:class:`FaultInjector` decides per request whether it fires. Each rule draws from its
own seeded random stream in request order, so the same seed and the same (sequential)
requests give the same faults.

Rules are matched on server (``graph``, ``iru``, ``login`` or ``*``), method and path
(a prefix, or a glob when it contains ``*``). Latency rules add up; the first status or
drop rule that fires answers the request instead of the real handler. The sandbox's
admin routes never see faults.
"""

from __future__ import annotations

import fnmatch
import json
import random
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["FaultDecision", "FaultInjector", "FaultRule", "error_body", "parse_fault"]

FaultKind = Literal["status", "drop", "latency"]
_SERVERS = frozenset({"graph", "iru", "login", "*"})


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One injected behaviour.

    server: ``graph``, ``iru``, ``login`` or ``*``.
    path: a path prefix (``/api/v1/scim/Users``), or a glob with ``*``; empty = any.
    methods: HTTP methods it applies to; empty = any.
    kind: ``status`` (answer with ``status``), ``drop`` (close the connection without
        an answer) or ``latency`` (delay by ``latency_ms`` plus up to ``jitter_ms``).
    rate: the chance (0..1) that a matching request is hit.
    times: stop after hitting this many requests (None: never stop).
    skip: let this many matching requests through before the rule can fire.
    retry_after: seconds for a ``Retry-After`` header (429/503); None: no header.
    """

    server: str = "iru"
    path: str = ""
    methods: tuple[str, ...] = ()
    kind: FaultKind = "status"
    status: int = 503
    rate: float = 1.0
    times: int | None = None
    skip: int = 0
    retry_after: int | None = None
    latency_ms: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.server not in _SERVERS:
            raise ValueError(f"server must be one of {sorted(_SERVERS)}")
        if self.kind not in ("status", "drop", "latency"):
            raise ValueError("kind must be 'status', 'drop' or 'latency'")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError("a status fault needs a 4xx or 5xx status")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.skip < 0:
            raise ValueError("latency, jitter and skip must not be negative")
        object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))

    def applies_to(self, server: str, method: str, path: str) -> bool:
        """Whether a request to ``server`` with ``method`` and ``path`` matches."""
        if self.server not in ("*", server):
            return False
        if self.methods and method.upper() not in self.methods:
            return False
        if not self.path:
            return True
        if "*" in self.path:
            return fnmatch.fnmatchcase(path, self.path)
        return path.startswith(self.path)


def parse_fault(text: str) -> FaultRule:
    """Parse the CLI form ``SERVER [METHODS] [PATH] KIND [key=value ...]``.

    KIND is a status code, ``drop`` or ``latency``; keys are rate, times, skip,
    retry_after, ms (latency) and jitter. Examples::

        iru POST /api/v1/scim/Users 429 rate=0.2 retry_after=2
        graph * /v1.0/users latency ms=50 jitter=20
        iru PATCH,DELETE /api/v1/scim drop times=1
    """
    words = text.split()
    if not words:
        raise ValueError("empty fault rule")
    server, rest = words[0].lower(), words[1:]
    methods: tuple[str, ...] = ()
    path = ""
    kind: FaultKind | None = None
    status = 503
    options: dict[str, str] = {}
    for word in rest:
        if kind is not None:
            key, sep, value = word.partition("=")
            if not sep:
                raise ValueError(f"expected key=value after the kind, got {word!r}")
            options[key.lower()] = value
        elif word.startswith("/"):
            path = word
        elif word.isdigit():
            kind, status = "status", int(word)
        elif word.lower() in ("drop", "latency"):
            kind = "drop" if word.lower() == "drop" else "latency"
        elif word == "*":
            methods = ()
        else:
            methods = tuple(m for m in word.upper().split(",") if m)
    if kind is None:
        raise ValueError("a fault rule needs a kind: a status code, 'drop' or 'latency'")
    known = {"rate", "times", "skip", "retry_after", "ms", "jitter"}
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"unknown fault option(s): {', '.join(sorted(unknown))}")
    return FaultRule(
        server=server,
        path=path,
        methods=methods,
        kind=kind,
        status=status,
        rate=float(options.get("rate", "1")),
        times=int(options["times"]) if "times" in options else None,
        skip=int(options.get("skip", "0")),
        retry_after=int(options["retry_after"]) if "retry_after" in options else None,
        latency_ms=float(options.get("ms", "0")),
        jitter_ms=float(options.get("jitter", "0")),
    )


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request: wait ``delay`` seconds, then maybe answer or drop."""

    delay: float = 0.0
    action: Literal["status", "drop"] | None = None
    status: int = 0
    retry_after: int | None = None


class _Active:
    __slots__ = ("hits", "matched", "rng", "rule")

    def __init__(self, rule: FaultRule, rng: random.Random) -> None:
        self.rule = rule
        self.rng = rng
        self.matched = 0
        self.hits = 0


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(server: str, path: str, status: int) -> tuple[bytes, str]:
    """The body an injected ``status`` gets: Graph, SCIM or Iru API shaped by server/path."""
    phrase = _phrase(status)
    if server == "graph":
        code = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(
            status, "UnknownError"
        )
        message = (
            "Too many requests from this client. Please try again later."
            if status == 429
            else f"{phrase} (injected by the sandbox)."
        )
        body = {"error": {"code": code, "message": message, "innerError": {}}}
        return json.dumps(body).encode(), "application/json"
    if server == "iru" and "/scim" in path:
        body_scim = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": str(status),
            "detail": f"{phrase} (injected by the sandbox).",
        }
        return json.dumps(body_scim).encode(), "application/scim+json"
    return json.dumps({"detail": f"{phrase} (injected by the sandbox)."}).encode(), (
        "application/json"
    )


class FaultInjector:
    """The live set of rules, shared by all servers of one sandbox (thread-safe)."""

    def __init__(self, seed: int, rules: Iterable[FaultRule] = ()) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._active: list[_Active] = []
        self._added = 0
        for rule in rules:
            self.add(rule)

    def add(self, rule: FaultRule) -> None:
        """Start applying ``rule`` (its random stream depends on the seed and its order)."""
        with self._lock:
            rng = random.Random(f"{self._seed}/fault/{self._added}")
            self._added += 1
            self._active.append(_Active(rule, rng))

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._active.clear()

    def rules(self) -> list[FaultRule]:
        """The rules in force, in the order they were added."""
        with self._lock:
            return [active.rule for active in self._active]

    def hits(self) -> list[int]:
        """How many requests each rule has hit so far (same order as :meth:`rules`)."""
        with self._lock:
            return [active.hits for active in self._active]

    def decide(self, server: str, method: str, path: str) -> FaultDecision:
        """Draw the faults for one request."""
        delay = 0.0
        with self._lock:
            for active in self._active:
                rule = active.rule
                if not rule.applies_to(server, method, path):
                    continue
                active.matched += 1
                if active.matched <= rule.skip:
                    continue
                if rule.times is not None and active.hits >= rule.times:
                    continue
                if active.rng.random() >= rule.rate:
                    continue
                active.hits += 1
                if rule.kind == "latency":
                    jitter = active.rng.random() * rule.jitter_ms
                    delay += (rule.latency_ms + jitter) / 1000.0
                    continue
                return FaultDecision(delay, rule.kind, rule.status, rule.retry_after)
        return FaultDecision(delay)

    def middleware(self, app: WSGIApplication, server: str) -> WSGIApplication:
        """Wrap ``app`` so requests to it get this injector's faults."""

        def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            method = str(environ.get("REQUEST_METHOD", ""))
            path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
            decision = self.decide(server, method, path)
            if decision.delay:
                time.sleep(decision.delay)
            if decision.action == "drop":
                raw = environ.get("werkzeug.socket")
                if isinstance(raw, socket.socket):
                    try:
                        raw.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                raise ConnectionResetError("connection dropped by an injected fault")
            if decision.action == "status":
                body, content_type = error_body(server, path, decision.status)
                headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
                if decision.retry_after is not None:
                    headers.append(("Retry-After", str(decision.retry_after)))
                start_response(f"{decision.status} {_phrase(decision.status)}", headers)
                return [body]
            return app(environ, start_response)

        return wrapped
