"""Wire shapes of the Graph objects the sandbox serves.

Kept apart from the handlers so the JSON a client sees is defined in one place and
can be compared with the documented examples (shared/reference/). Where Graph returns
a property the sandbox has no value for, it is present with ``null`` or ``[]``, as
Graph does, so client code that indexes into a response behaves the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._state import Application, ServicePrincipal

__all__ = [
    "GRAPH_APP_ID",
    "GRAPH_RESOURCE",
    "MASKED_SECRET_KEYS",
    "MSIAM_ACCESS_ROLE_ID",
    "NON_GALLERY_TEMPLATE_ID",
    "SCIM_TEMPLATE_ID",
    "SECRET_KEYS",
    "USER_ROLE_ID",
    "app_roles",
    "graph_time",
    "render_application",
    "render_service_principal",
    "render_template",
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

_HOMEPAGE = (
    "https://account.activedirectory.windowsazure.com:444/applications/default.aspx"
    "?metadata=customappsso|ISV9.1|primary|z"
)
_SP_TAGS = [
    "WindowsAzureActiveDirectoryIntegratedApp",
    "WindowsAzureActiveDirectoryCustomSingleSignOnApplication",
]

# The synchronizationSecret enumeration: the only keys the secrets endpoint accepts.
SECRET_KEYS = frozenset(
    {
        "None", "UserName", "Password", "SecretToken", "AppKey", "BaseAddress",
        "ClientIdentifier", "ClientSecret", "SingleSignOnType", "Sandbox", "Url", "Domain",
        "ConsumerKey", "ConsumerSecret", "TokenKey", "TokenExpiration", "Oauth2AccessToken",
        "Oauth2AccessTokenCreationTime", "Oauth2RefreshToken", "SyncAll", "InstanceName",
        "Oauth2ClientId", "Oauth2ClientSecret", "CompanyId", "UpdateKeyOnSoftDelete",
        "SynchronizationSchedule", "SystemOfRecord", "SandboxName", "EnforceDomain",
        "SyncNotificationSettings", "SkipOutOfScopeDeletions", "Oauth2AuthorizationCode",
        "Oauth2RedirectUri", "ApplicationTemplateIdentifier", "Oauth2TokenExchangeUri",
        "Oauth2AuthorizationUri", "AuthenticationType", "Server",
        "PerformInboundEntitlementGrants", "HardDeletesEnabled", "SyncAgentCompatibilityKey",
        "SyncAgentADContainer", "ValidateDomain", "TestReferences", "ConnectionString",
    }
)  # fmt: skip

# Keys whose value Graph never reads back: GET returns "*" in their place.
MASKED_SECRET_KEYS = frozenset(
    {
        "Password", "SecretToken", "AppKey", "ClientSecret", "ConsumerSecret", "TokenKey",
        "Oauth2AccessToken", "Oauth2RefreshToken", "Oauth2ClientSecret",
        "Oauth2AuthorizationCode", "ConnectionString",
    }
)  # fmt: skip


def graph_time(moment: datetime) -> str:
    """Format a timestamp the way Graph does (``2024-05-01T10:00:00Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
