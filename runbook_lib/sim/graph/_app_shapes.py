"""Wire shapes of the application objects the sandbox serves (apps, service principals).

Kept apart from the handlers so the JSON a client sees is defined in one place and
can be compared with the documented examples (shared/reference/). Where Graph returns
a property the sandbox has no value for, it is present with ``null`` or ``[]``, as
Graph does, so client code that indexes into a response behaves the same.
"""

from __future__ import annotations

from typing import Any

from ..plumbing._clock import graph_time
from ..tenant._state import Application, ServicePrincipal
from ..tenant._well_known import MSIAM_ACCESS_ROLE_ID, SCIM_TEMPLATE_ID, USER_ROLE_ID

__all__ = [
    "app_roles",
    "render_application",
    "render_service_principal",
    "render_template",
]

_HOMEPAGE = (
    "https://account.activedirectory.windowsazure.com:444/applications/default.aspx"
    "?metadata=customappsso|ISV9.1|primary|z"
)
_SP_TAGS = [
    "WindowsAzureActiveDirectoryIntegratedApp",
    "WindowsAzureActiveDirectoryCustomSingleSignOnApplication",
]


def app_roles() -> list[dict[str, Any]]:
    """The two app roles every non-gallery app is created with."""
    return [
        {
            "allowedMemberTypes": ["User"],
            "description": "User",
            "displayName": "User",
            "id": USER_ROLE_ID,
            "isEnabled": True,
            "origin": "Application",
            "value": None,
        },
        {
            "allowedMemberTypes": ["User"],
            "description": "msiam_access",
            "displayName": "msiam_access",
            "id": MSIAM_ACCESS_ROLE_ID,
            "isEnabled": True,
            "origin": "Application",
            "value": None,
        },
    ]


def render_application(app: Application, tenant_domain: str) -> dict[str, Any]:
    """The ``application`` half of an instantiate response."""
    return {
        "id": app.object_id,
        "deletedDateTime": None,
        "appId": app.app_id,
        "applicationTemplateId": app.template_id,
        "createdDateTime": graph_time(app.created),
        "description": None,
        "displayName": app.display_name,
        "groupMembershipClaims": None,
        "identifierUris": [],
        "isFallbackPublicClient": None,
        "notes": None,
        "publisherDomain": tenant_domain,
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "appRoles": app_roles(),
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "keyCredentials": [],
        "passwordCredentials": [],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [],
        "web": {
            "homePageUrl": _HOMEPAGE,
            "logoutUrl": None,
            "redirectUris": [],
            "implicitGrantSettings": {
                "enableAccessTokenIssuance": False,
                "enableIdTokenIssuance": False,
            },
        },
    }


def render_service_principal(sp: ServicePrincipal, tenant_id: str) -> dict[str, Any]:
    """A servicePrincipal resource as Graph v1.0 returns it."""
    return {
        "id": sp.object_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": [],
        "appDisplayName": sp.display_name,
        "appDescription": None,
        "appId": sp.app_id,
        "applicationTemplateId": sp.template_id,
        "appOwnerOrganizationId": tenant_id,
        "appRoleAssignmentRequired": True,
        "createdDateTime": graph_time(sp.created),
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": sp.display_name,
        "homepage": _HOMEPAGE,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": [],
        "servicePrincipalNames": [sp.app_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMyOrg",
        "tags": list(_SP_TAGS),
        "tokenEncryptionKeyId": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": app_roles(),
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": {
            "displayName": None,
            "verifiedPublisherId": None,
            "addedDateTime": None,
        },
    }


def render_template(sp: ServicePrincipal) -> dict[str, Any]:
    """The one synchronization template a non-gallery app offers."""
    return {
        "id": SCIM_TEMPLATE_ID,
        "applicationId": sp.app_id,
        "default": True,
        "description": "Provision users and groups to any SCIM 2.0 endpoint.",
        "discoverable": True,
        "factoryTag": SCIM_TEMPLATE_ID,
        "metadata": [
            {
                "key": "configurationFields",
                "value": '[{"name":"baseaddress"},{"name":"secrettoken","secret":true}]',
            },
        ],
    }
