"""Ids every Entra tenant shares: the non-gallery template, its app roles, Microsoft Graph.

The sign-in stand-in, the Graph handlers, the provisioning probe and the pre-provisioned
start all name these objects, and a real tenant has them with the same values, so they
are defined once, below everything that uses them.
"""

from __future__ import annotations

__all__ = [
    "GRAPH_APP_ID",
    "GRAPH_RESOURCE",
    "MSIAM_ACCESS_ROLE_ID",
    "NON_GALLERY_TEMPLATE_ID",
    "SCIM_TEMPLATE_ID",
    "USER_ROLE_ID",
]

# The application template behind "Create your own application" (non-gallery) in the
# global cloud.
NON_GALLERY_TEMPLATE_ID = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
# The synchronization template new non-gallery apps offer.
SCIM_TEMPLATE_ID = "scim"
USER_ROLE_ID = "18d14569-c3bd-439b-9a66-3a2aee01d14f"
MSIAM_ACCESS_ROLE_ID = "b9632174-c057-4f7e-951b-be3adc52bfe6"
# Microsoft Graph's own application id and resource URI (token audience).
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
