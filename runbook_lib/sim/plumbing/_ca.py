"""The sandbox's throw-away certificate authority.

The runbook talks to Microsoft and Iru over HTTPS with certificate checks on; the
sandbox must not be the one place where checks are switched off. So each sandbox
makes its own CA, issues one server certificate for ``127.0.0.1`` and ``localhost``,
and writes the CA certificate to a PEM file that clients pass as their CA bundle
(``RUNBOOK_CA_BUNDLE``). A client that does not trust that file fails, as it should.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

__all__ = ["SandboxCA"]

SERVER_NAMES: tuple[str, ...] = ("127.0.0.1", "localhost")


class SandboxCA:
    """A fresh CA plus a server certificate for the loopback names.

    ECDSA keys (trustme's default) keep generation to a few milliseconds, which
    matters because every test starts its own sandbox.
    """

    def __init__(self, extra_names: tuple[str, ...] = ()) -> None:
        self._ca = trustme.CA(organization_name="runbook sandbox (test only)")
        names = tuple(dict.fromkeys((*SERVER_NAMES, *extra_names)))
        self._server_cert = self._ca.issue_cert(*names)

    def write_ca_pem(self, path: Path) -> Path:
        """Write the CA certificate (PEM) to ``path`` and return it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ca.cert_pem.write_to_path(str(path))
        return path

    def server_context(self) -> ssl.SSLContext:
        """Return a TLS context that presents the sandbox server certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Return a TLS client context trusting the system CAs plus this CA.

        The Graph stand-in uses it when it tests a SCIM URL: the URL may be the
        sandbox's own SCIM server or a real one on the internet.
        """
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context
