"""Deterministic identifiers for the sandbox.

Tests and the published docs compare runs, so every identifier the sandbox invents
(tenant, client, application and service principal ids, request ids, SCIM ids) comes
from a seeded generator instead of ``uuid.uuid4()``. Each kind of identifier draws from
its own named stream: an extra sign-in request then cannot shift the id of the next
service principal, and "same seed + same calls" gives the same ids.

Secrets (client secret, SCIM token, access tokens, device codes) never come from here:
they use :mod:`secrets`, because a predictable secret would be a bad habit to teach.
"""

from __future__ import annotations

import random
import threading
import uuid

__all__ = ["IdFactory"]


class IdFactory:
    """Hands out reproducible UUID4 strings, one seeded stream per purpose.

    Thread-safe: the HTTPS servers answer requests on several threads at once.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    @property
    def seed(self) -> int:
        """The seed all streams derive from."""
        return self._seed

    def _stream(self, name: str) -> random.Random:
        stream = self._streams.get(name)
        if stream is None:
            # A string seed is hashed with SHA-512 by random.Random, so the value
            # is stable across processes and Python versions (unlike hash()).
            stream = random.Random(f"{self._seed}/{name}")
            self._streams[name] = stream
        return stream

    def uuid(self, stream: str) -> str:
        """Return the next UUID4 (lower-case, dashed) of ``stream``."""
        with self._lock:
            bits = self._stream(stream).getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))

    def hex(self, stream: str, length: int = 32) -> str:
        """Return ``length`` reproducible hex digits from ``stream``."""
        with self._lock:
            bits = self._stream(stream).getrandbits(length * 4)
        return f"{bits:0{length}x}"

    def choice(self, stream: str, alphabet: str, length: int) -> str:
        """Return ``length`` reproducible characters of ``alphabet`` from ``stream``."""
        with self._lock:
            rng = self._stream(stream)
            return "".join(rng.choice(alphabet) for _ in range(length))
