"""The keys of a service principal's synchronization secrets, and which stay hidden.

``PUT .../synchronization/secrets`` accepts only the documented key names, and ``GET``
answers ``*`` for the secret ones. The tenant state registers those values with the
redactor as they are saved, and the Graph handler masks them, so both read the two sets
from here.
"""

from __future__ import annotations

__all__ = ["MASKED_SECRET_KEYS", "SECRET_KEYS"]

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
