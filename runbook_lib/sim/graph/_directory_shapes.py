"""Graph v1.0 JSON for directory users and groups.

Graph returns only a default set of user properties unless ``$select`` asks for more
(``accountEnabled``, ``department`` and ``mailNickname`` are *not* in the default set),
while groups come back with all their properties. Clients that forget ``$select`` get
``KeyError``s against the real service, so the sandbox does the same.
"""

from __future__ import annotations

from typing import Any

from ..directory._store import DirectoryGroup, DirectoryUser
from ..plumbing._clock import SimClock, graph_time

__all__ = [
    "GROUP_PROPERTIES",
    "USER_DEFAULT_PROPERTIES",
    "USER_PROPERTIES_ALL",
    "render_group",
    "render_member",
    "render_user",
]

USER_DEFAULT_PROPERTIES: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)


def _time(moment: float | None) -> str | None:
    return None if moment is None else graph_time(SimClock.to_dt(moment))


def render_user(user: DirectoryUser) -> dict[str, Any]:
    """Every property the sandbox knows for a user (callers trim to the selected set)."""
    return {
        "id": user.id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": user.job_title,
        "mail": user.mail,
        "mobilePhone": user.mobile_phone,
        "officeLocation": user.office_location,
        "preferredLanguage": user.preferred_language,
        "surname": user.surname,
        "userPrincipalName": user.user_principal_name,
        "accountEnabled": user.account_enabled,
        "city": user.city,
        "companyName": None,
        "country": user.country,
        "createdDateTime": _time(user.created),
        "deletedDateTime": _time(user.deleted),
        "department": user.department,
        "employeeId": user.employee_id,
        "mailNickname": user.mail_nickname,
        # An invited guest's own address is also listed in otherMails.
        "otherMails": [user.mail] if user.user_type == "Guest" and user.mail else [],
        "proxyAddresses": [f"SMTP:{user.mail}"] if user.mail else [],
        "usageLocation": user.country,
        "userType": user.user_type,
    }


USER_PROPERTIES_ALL: frozenset[str] = frozenset(
    render_user(DirectoryUser("", "", None, "", None, None, "", None, None, True, 0.0))
)


def render_group(group: DirectoryGroup) -> dict[str, Any]:
    """A group as Graph v1.0 returns it (all properties are default ones)."""
    created = _time(group.created)
    return {
        "id": group.id,
        "deletedDateTime": None,
        "classification": None,
        "createdDateTime": created,
        "creationOptions": [],
        "description": group.description,
        "displayName": group.display_name,
        "expirationDateTime": None,
        "groupTypes": list(group.group_types),
        "isAssignableToRole": None,
        "mail": group.mail,
        "mailEnabled": group.mail_enabled,
        "mailNickname": group.mail_nickname,
        "membershipRule": None,
        "membershipRuleProcessingState": None,
        "onPremisesDomainName": None,
        "onPremisesLastSyncDateTime": None,
        "onPremisesNetBiosName": None,
        "onPremisesSamAccountName": None,
        "onPremisesSecurityIdentifier": None,
        "onPremisesSyncEnabled": None,
        "preferredDataLocation": None,
        "preferredLanguage": None,
        "proxyAddresses": [f"SMTP:{group.mail}"] if group.mail else [],
        "renewedDateTime": created,
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": group.security_enabled,
        "securityIdentifier": "S-1-12-1-"
        + "-".join(str(int(group.id.replace("-", "")[i : i + 8], 16)) for i in range(0, 32, 8)),
        "theme": None,
        "visibility": "Private" if group.group_types else None,
        "onPremisesProvisioningErrors": [],
    }


GROUP_PROPERTIES: frozenset[str] = frozenset(
    render_group(DirectoryGroup("0" * 32, "", None, "", None, False, True, (), 0.0))
)


def render_member(item: DirectoryUser | DirectoryGroup, *, full: bool = False) -> dict[str, Any]:
    """A directoryObject in a members list: ``@odata.type`` plus the object's properties."""
    if isinstance(item, DirectoryUser):
        body = render_user(item)
        if not full:
            body = {name: body[name] for name in USER_DEFAULT_PROPERTIES}
        return {"@odata.type": "#microsoft.graph.user", **body}
    return {"@odata.type": "#microsoft.graph.group", **render_group(item)}
