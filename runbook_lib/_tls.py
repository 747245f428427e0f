"""TLS trust: the system's CAs plus the extra bundle in RUNBOOK_CA_BUNDLE.

A corporate TLS proxy or the sandbox's test CA must be trusted *in addition* to the usual
roots, never instead of them. httpx takes an :class:`ssl.SSLContext`; azure-identity (through
requests) takes a file path, so for it the two sources are concatenated into one file.
"""

from __future__ import annotations

import hashlib
import ssl
import tempfile
from pathlib import Path

import certifi

__all__ = ["ca_file_for_requests", "ssl_context"]


def ssl_context(extra_ca: Path | None) -> ssl.SSLContext:
    """A verifying client context trusting certifi's roots plus ``extra_ca``."""
    ctx = ssl.create_default_context(cafile=certifi.where())
    if extra_ca is not None:
        ctx.load_verify_locations(cafile=str(extra_ca))
    return ctx


def ca_file_for_requests(extra_ca: Path | None) -> str | bool:
    """A bundle path for requests-based clients, or True for the default roots."""
    if extra_ca is None:
        return True
    extra = Path(extra_ca).read_bytes()
    roots = Path(certifi.where()).read_bytes()
    digest = hashlib.sha256(extra).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"runbook-ca-{digest}.pem"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(roots + b"\n" + extra)
        tmp.replace(target)
    return str(target)
