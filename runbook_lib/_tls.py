"""TLS trust: the system's CAs plus the extra bundle in RUNBOOK_CA_BUNDLE.

A corporate TLS proxy or the sandbox's test CA must be trusted *in addition* to the usual
roots, never instead of them. httpx takes an :class:`ssl.SSLContext`; azure-identity (through
requests) takes a file path, so for it the two sources are concatenated into one file.

That file decides which servers sign-in trusts, so it is never at a name another local user
can predict or plant first: :func:`tempfile.mkstemp` creates it (random name, ``O_EXCL``, mode
0600), one per process and bundle, and it is removed when the process exits. A file that
already exists is never reused, whatever its name.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import ssl
import tempfile
import threading
from pathlib import Path

import certifi

__all__ = ["ca_file_for_requests", "remove_ca_files", "ssl_context"]

_CA_FILES: dict[str, str] = {}
"""This process's trust files, by digest of their content."""
_LOCK = threading.Lock()


def ssl_context(extra_ca: Path | None) -> ssl.SSLContext:
    """A verifying client context trusting certifi's roots plus ``extra_ca``."""
    ctx = ssl.create_default_context(cafile=certifi.where())
    if extra_ca is not None:
        ctx.load_verify_locations(cafile=str(extra_ca))
    return ctx


def ca_file_for_requests(extra_ca: Path | None) -> str | bool:
    """A bundle path for requests-based clients, or True for the default roots.

    The file is created by this process (see the module docstring) and stays until it exits,
    because requests reads it on every new connection.
    """
    if extra_ca is None:
        return True
    content = Path(certifi.where()).read_bytes() + b"\n" + Path(extra_ca).read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    with _LOCK:
        known = _CA_FILES.get(digest)
        if known is not None and os.path.isfile(known):
            return known
        if not _CA_FILES:
            atexit.register(remove_ca_files)
        fd, path = tempfile.mkstemp(prefix="runbook-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        _CA_FILES[digest] = path
        return path


def remove_ca_files() -> None:
    """Delete the trust files this process wrote (registered to run at exit)."""
    with _LOCK:
        for path in _CA_FILES.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        _CA_FILES.clear()
