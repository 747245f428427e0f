"""The Entra ID sign-in stand-in (``login.microsoftonline.com``).

Follows the Microsoft identity platform's v2.0 protocol pages
(https://learn.microsoft.com/entra/identity-platform/): OpenID Connect discovery metadata,
the token endpoint with the client credentials grant (a client secret, a certificate
assertion or a federated workload identity assertion), the device authorization grant
for an admin at a notebook, and refresh tokens. :mod:`._login` serves all of it; errors
carry Entra's JSON shape and AADSTS codes.

It issues tokens into the tenant's token store (:mod:`runbook_lib.sim.tenant`), where
the Graph stand-in checks them.
"""

from __future__ import annotations

__all__: list[str] = []
