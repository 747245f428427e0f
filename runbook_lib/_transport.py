"""What went wrong below HTTP, and how long a server asks to be left alone: shared by both clients.

The Graph client and the Iru SCIM client retry on the same grounds (see docs/reliability.md), so
they read ``Retry-After`` and classify a failed connection in one place.
"""

from __future__ import annotations

import email.utils
import socket
import ssl
from datetime import UTC, datetime

import httpx

__all__ = ["cause_chain", "retry_after", "transport_kind"]


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def cause_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, innermost last, each once."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def transport_kind(exc: httpx.TransportError) -> str:
    """``tls``, ``dns``, ``connect_timeout`` and ``refused`` (nothing was sent), ``timeout``
    (sent, no answer in time) or ``dropped`` (the connection ended before the answer)."""
    chain = cause_chain(exc)
    if any(isinstance(e, ssl.SSLError) for e in chain) or "SSL" in str(exc):
        return "tls"
    if any(isinstance(e, socket.gaierror) for e in chain) or "Name or service" in str(exc):
        return "dns"
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "refused"
    return "dropped"
