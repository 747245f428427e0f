"""The Iru Endpoint (formerly Kandji) stand-in: its SCIM service and its user list.

Follows Iru's "SCIM directory integration with Microsoft Entra ID" article
(https://docs.iru.com/en/endpoint/integrations/scim/scim-directory-integration-with-microsoft-entra-id)
and RFC 7644: :mod:`._scim` serves SCIM 2.0 at ``/api/v1/scim`` with scim2-server, set up
the way Entra's requests need a SCIM endpoint to behave, and :mod:`._enterprise_api`
serves the Enterprise API's ``GET /api/v1/users`` view of the same store.

It knows nothing of Entra: the provisioning engine reaches it over HTTPS only, as it
would reach a real Iru tenant.
"""

from __future__ import annotations

__all__: list[str] = []
