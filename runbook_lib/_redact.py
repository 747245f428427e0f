"""Keep secret values out of every message, log line and notebook output.

Settings register each secret when they load it. Messages built by the library (exceptions,
check details, log records) pass through :func:`redact`, so even a server that echoes a token
back in an error body cannot leak it into a notebook. The registry holds the values in memory
only, for the life of the process.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["RedactingFilter", "redact", "register_secret"]

_lock = threading.Lock()
_secrets: set[str] = set()
_MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` masks it. Short values are ignored."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    if not text:
        return text
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, _MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True
