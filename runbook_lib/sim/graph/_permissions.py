"""Which Microsoft Graph permissions each route of the Graph stand-in requires, and the check.

Every route the stand-in serves has an entry in :data:`ROUTE_PERMISSIONS`, taken from the
"Permissions" section of its Microsoft Graph v1.0 reference page (the page name is on the
entry; the pages live in microsoftgraph/microsoft-graph-docs-contrib under
``api-reference/v1.0/api/``). An entry says, for each kind of token:

* application (app-only) tokens: which permissions in the token's ``roles`` suffice; an
  empty list is the page's "Not supported";
* delegated (user) tokens: which permissions in the token's ``scp`` suffice, and which
  directory roles the signed-in user must hold on top (any one; Global Administrator
  holds every role).

Each permission list is a list of alternatives and any one alternative suffices. An
alternative is usually one permission; a few pages require two together (granting an app
role needs AppRoleAssignment.ReadWrite.All *and* Application.Read.All).

Two readings of the permission model apply to every route:

* a ReadWrite permission includes its Read counterpart (the permissions reference
  describes each as "read and write"), so Application.ReadWrite.All satisfies a page that
  asks for Application.Read.All;
* Application.ReadWrite.OwnedBy only reaches apps the client owns. The sandbox records no
  owners, so on routes that address one existing app (its service principal, its
  synchronization jobs, its assignments) the permission is listed on the entry as the
  page says but never satisfies the call; where the page lists it for calls that address
  no particular app (listing service principals, instantiating a new app) it counts. It is
  not granted by default (see :mod:`runbook_lib.sim.tenant._grants`).

A refused call is answered as Graph answers it: ``403 Authorization_RequestDenied`` with
"Insufficient privileges to complete the operation." on the directory routes. The
synchronization API answers a missing permission or directory role differently: issues
reported against Microsoft's docs and Graph clients show ``401`` with code
``UnknownError`` and an empty message (microsoftgraph/microsoft-graph-docs-contrib#8800,
microsoft/zerotrustassessment#1382), so those routes refuse that way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._wire import GraphError

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from ..tenant._state import TenantState
    from ..tenant._tokens import IssuedToken

__all__ = [
    "GLOBAL_ADMINISTRATOR",
    "OWNED_BY",
    "ROUTE_PERMISSIONS",
    "ByObject",
    "Entry",
    "Requirement",
    "enforce",
    "held_permissions",
    "holds_any",
    "missing_routes",
    "permission_table_rows",
]

OWNED_BY = "Application.ReadWrite.OwnedBy"
GLOBAL_ADMINISTRATOR = "Global Administrator"

Alternatives = tuple[tuple[str, ...], ...]
Refusal = Literal["directory", "synchronization"]

# "Read and write" includes "read": a ReadWrite grant also satisfies its Read counterpart.
_IMPLIES: dict[str, tuple[str, ...]] = {
    "Application.ReadWrite.All": ("Application.Read.All",),
    "Directory.ReadWrite.All": ("Directory.Read.All",),
    "User.ReadWrite.All": ("User.Read.All",),
    "Group.ReadWrite.All": ("Group.Read.All",),
    "GroupMember.ReadWrite.All": ("GroupMember.Read.All",),
    "Synchronization.ReadWrite.All": ("Synchronization.Read.All",),
    "RoleManagement.ReadWrite.Directory": ("RoleManagement.Read.Directory",),
}

_DENIED_MESSAGE = "Insufficient privileges to complete the operation."
_ME_MESSAGE = "/me request is only valid with delegated authentication flow."


def any_of(*names: str) -> Alternatives:
    """Alternatives where each single permission suffices."""
    return tuple((name,) for name in names)


NOT_SUPPORTED: Alternatives = ()


@dataclass(frozen=True)
class Requirement:
    """What one route needs.

    :param page: the v1.0 reference page (``api-reference/v1.0/api/<page>``).
    :param application: alternatives for app-only tokens; empty means "Not supported".
    :param delegated: alternatives for delegated tokens; empty means "Not supported".
    :param roles: directory roles a delegated caller needs (any one); empty: none.
    :param refusal: how a refused call is answered (see the module docstring).
    :param delegated_only: for ``/me`` routes: app-only tokens get a 400 with this message
        instead of a 403.
    :param listed_not_honoured: permissions the page lists that the sandbox never accepts
        here (Application.ReadWrite.OwnedBy on routes that address an existing app).
    :param note: anything else worth knowing, in a few words.
    """

    page: str
    application: Alternatives
    delegated: Alternatives
    roles: tuple[str, ...] = ()
    refusal: Refusal = "directory"
    delegated_only: str | None = None
    listed_not_honoured: tuple[str, ...] = ()
    note: str = ""


Chooser = Callable[["Request", "TenantState", Mapping[str, str]], "str | None"]


@dataclass(frozen=True)
class ByObject:
    """A route whose permissions depend on the object or the request body.

    ``choose`` names the variant (``None`` when the addressed object does not exist: the
    handler then answers 404 without a permission check, as there is nothing to guard).
    """

    page: str
    choose: Chooser
    variants: Mapping[str, Requirement]


Entry = Requirement | ByObject | None
"""``None``: the route itself needs nothing (``$batch``: each sub-request is checked)."""


# -- the synchronization pages -----------------------------------------------------------------

# includes/rbac-for-apis/rbac-synchronization-apis.md: application provisioning needs one of
# these roles (Hybrid Identity Administrator is only for Microsoft Entra Cloud Sync).
SYNC_ROLES: tuple[str, ...] = ("Application Administrator", "Cloud Application Administrator")


def _sync_read(page: str, note: str = "") -> Requirement:
    return Requirement(
        page,
        application=any_of("Synchronization.Read.All", "Synchronization.ReadWrite.All"),
        delegated=any_of("Synchronization.Read.All", "Synchronization.ReadWrite.All"),
        roles=SYNC_ROLES,
        refusal="synchronization",
        listed_not_honoured=(OWNED_BY,),
        note=note,
    )


def _sync_write(page: str, note: str = "") -> Requirement:
    return Requirement(
        page,
        application=any_of("Synchronization.ReadWrite.All"),
        delegated=any_of("Synchronization.ReadWrite.All"),
        roles=SYNC_ROLES,
        refusal="synchronization",
        listed_not_honoured=(OWNED_BY,),
        note=note,
    )


# -- objects decided at request time ---------------------------------------------------------


def _deleted_item_kind(request: Request, state: TenantState, args: Mapping[str, str]) -> str | None:
    """The kind of object a ``directory/deletedItems/{id}`` call names, if it is deleted.

    The sandbox's deleted items only ever hold users (its groups are deleted for good), so
    this answers ``user`` or None; the group rows stay in the table as the page gives them.
    """
    with state.lock:
        user = state.directory.user(args.get("item_id", ""))
        return "user" if user is not None and user.deleted is not None else None


def _user_update_kind(request: Request, state: TenantState, args: Mapping[str, str]) -> str | None:
    """``accountEnabled`` when the PATCH body changes only that property, else ``other``."""
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "other"
    if isinstance(body, dict) and set(body) == {"accountEnabled"}:
        return "accountEnabled"
    return "other"


_USER_WRITE = any_of("User.ReadWrite.All", "Directory.ReadWrite.All")

# directory-deleteditems-delete.md (per-resource table and its role notes).
_PURGE = ByObject(
    "directory-deleteditems-delete.md",
    _deleted_item_kind,
    {
        "user": Requirement(
            "directory-deleteditems-delete.md",
            application=NOT_SUPPORTED,
            delegated=any_of("User.ReadWrite.All"),
            roles=("User Administrator",),
            note="users: app-only not supported",
        ),
        "group": Requirement(
            "directory-deleteditems-delete.md",
            application=NOT_SUPPORTED,
            delegated=any_of("Group.ReadWrite.All"),
            roles=("Groups Administrator",),
            note="groups: app-only not supported",
        ),
    },
)

_DELETED_GET = ByObject(
    "directory-deleteditems-get.md",
    _deleted_item_kind,
    {
        "user": Requirement(
            "directory-deleteditems-get.md",
            application=any_of(
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ),
            delegated=any_of(
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
                "Directory.AccessAsUser.All",
            ),
        ),
        "group": Requirement(
            "directory-deleteditems-get.md",
            application=any_of(
                "Group.Read.All",
                "Group.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ),
            delegated=any_of(
                "Group.Read.All",
                "Group.ReadWrite.All",
                "Directory.Read.All",
                "Directory.AccessAsUser.All",
            ),
        ),
    },
)

_RESTORE = ByObject(
    "directory-deleteditems-restore.md",
    _deleted_item_kind,
    {
        "user": Requirement(
            "directory-deleteditems-restore.md",
            application=any_of("User.ReadWrite.All"),
            delegated=any_of("User.ReadWrite.All"),
        ),
        "group": Requirement(
            "directory-deleteditems-restore.md",
            application=any_of("Group.ReadWrite.All"),
            delegated=any_of("Group.ReadWrite.All"),
        ),
    },
)

# user-update.md; user-get.md's "permissions for specific scenarios": User.EnableDisableAccount.All
# together with User.Read.All is the least privileged way to write accountEnabled.
_ACCOUNT_ENABLED: Alternatives = (("User.EnableDisableAccount.All", "User.Read.All"), *_USER_WRITE)
_USER_UPDATE = ByObject(
    "user-update.md",
    _user_update_kind,
    {
        "accountEnabled": Requirement(
            "user-update.md",
            application=_ACCOUNT_ENABLED,
            delegated=_ACCOUNT_ENABLED,
            note="a body with only accountEnabled",
        ),
        "other": Requirement("user-update.md", application=_USER_WRITE, delegated=_USER_WRITE),
    },
)

# serviceprincipal-post-approleassignedto.md lists no roles; these are the roles Microsoft lists
# for the same write on serviceprincipal-post-approleassignments.md.
_ASSIGNMENT_ROLES: tuple[str, ...] = (
    "Directory Synchronization Accounts",
    "Directory Writer",
    "Hybrid Identity Administrator",
    "Identity Governance Administrator",
    "Privileged Role Administrator",
    "User Administrator",
    "Application Administrator",
    "Cloud Application Administrator",
)

_SP_READ = any_of(
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
_USER_READ_APP = any_of(
    "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"
)
_USER_READ_DELEGATED = any_of(
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
_GROUP_LIST = any_of(
    "Group-NestingSupport.ReadWrite.All",
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Group.ManageProtection.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
_GROUP_GET = any_of(
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
_MEMBERS = any_of(
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
)
_TRANSITIVE = any_of(
    "GroupMember.ReadBasic.All",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadBasic.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
)
_MEMBER_WRITE = any_of(
    "GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"
)
_PROVISIONING_LOG_ROLES: tuple[str, ...] = (
    "Reports Reader",
    "Security Reader",
    "Security Administrator",
    "Global Reader",
    "Security Operator",
    "Application Administrator",
    "Cloud Application Administrator",
)
_ME = any_of(
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
_MY_MEMBERSHIPS = any_of(
    "User.Read", "GroupMember.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"
)

_SP = "/v1.0/servicePrincipals/<sp_id>"
_SYNC = _SP + "/synchronization"

ROUTE_PERMISSIONS: dict[tuple[str, str], Entry] = {
    ("POST", "/v1.0/$batch"): None,
    # -- users ----------------------------------------------------------------------------------
    ("GET", "/v1.0/users"): Requirement("user-list.md", _USER_READ_APP, _USER_READ_DELEGATED),
    ("GET", "/v1.0/users/$count"): Requirement(
        "user-list.md", _USER_READ_APP, _USER_READ_DELEGATED
    ),
    ("POST", "/v1.0/users"): Requirement("user-post-users.md", _USER_WRITE, _USER_WRITE),
    ("GET", "/v1.0/users/<user_key>"): Requirement(
        "user-get.md", _USER_READ_APP, _USER_READ_DELEGATED
    ),
    ("GET", "/v1.0/users(<user_key>)"): Requirement(
        "user-get.md", _USER_READ_APP, _USER_READ_DELEGATED, note="the users('$name') key form"
    ),
    ("PATCH", "/v1.0/users/<user_key>"): _USER_UPDATE,
    ("DELETE", "/v1.0/users/<user_key>"): Requirement(
        "user-delete.md",
        any_of("User.ReadWrite.All"),
        any_of("User.ReadWrite.All"),
        roles=("User Administrator", "Privileged Authentication Administrator"),
    ),
    ("GET", "/v1.0/users/<principal_id>/appRoleAssignments"): Requirement(
        "user-list-approleassignments.md",
        any_of("Directory.Read.All", "AppRoleAssignment.ReadWrite.All"),
        any_of("AppRoleAssignment.ReadWrite.All", "Directory.Read.All"),
    ),
    # -- groups ---------------------------------------------------------------------------------
    ("GET", "/v1.0/groups"): Requirement("group-list.md", _GROUP_LIST, _GROUP_LIST),
    ("GET", "/v1.0/groups/$count"): Requirement("group-list.md", _GROUP_LIST, _GROUP_LIST),
    ("POST", "/v1.0/groups"): Requirement(
        "group-post-groups.md",
        any_of(
            "Group.Create",
            "Group.ReadWrite.All",
            "Directory.ReadWrite.All",
            "Group-PreferredDataLocation.ReadWrite.All",
        ),
        any_of(
            "Group.ReadWrite.All",
            "Directory.ReadWrite.All",
            "Group-PreferredDataLocation.ReadWrite.All",
        ),
    ),
    ("GET", "/v1.0/groups/<group_id>"): Requirement("group-get.md", _GROUP_GET, _GROUP_GET),
    ("DELETE", "/v1.0/groups/<group_id>"): Requirement(
        "group-delete.md", any_of("Group.ReadWrite.All"), any_of("Group.ReadWrite.All")
    ),
    ("POST", "/v1.0/groups/<group_id>/members/$ref"): Requirement(
        "group-post-members.md", _MEMBER_WRITE, _MEMBER_WRITE
    ),
    ("DELETE", "/v1.0/groups/<group_id>/members/<member_id>/$ref"): Requirement(
        "group-delete-members.md", _MEMBER_WRITE, _MEMBER_WRITE
    ),
    ("GET", "/v1.0/groups/<group_id>/members"): Requirement(
        "group-list-members.md", _MEMBERS, _MEMBERS
    ),
    ("GET", "/v1.0/groups/<group_id>/members/microsoft.graph.user"): Requirement(
        "group-list-members.md", _MEMBERS, _MEMBERS, note="cast to the user members"
    ),
    ("GET", "/v1.0/groups/<group_id>/transitiveMembers"): Requirement(
        "group-list-transitivemembers.md", _TRANSITIVE, _TRANSITIVE
    ),
    ("GET", "/v1.0/groups/<principal_id>/appRoleAssignments"): Requirement(
        "group-list-approleassignments.md",
        any_of("Directory.Read.All", "AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All"),
        any_of("Directory.Read.All", "AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All"),
    ),
    # -- deleted items --------------------------------------------------------------------------
    ("GET", "/v1.0/directory/deletedItems/microsoft.graph.user"): Requirement(
        "directory-deleteditems-list.md", any_of("User.Read.All"), any_of("User.Read.All")
    ),
    ("GET", "/v1.0/directory/deletedItems/<item_id>"): _DELETED_GET,
    ("DELETE", "/v1.0/directory/deletedItems/<item_id>"): _PURGE,
    ("POST", "/v1.0/directory/deletedItems/<item_id>/restore"): _RESTORE,
    # -- applications and service principals ----------------------------------------------------
    ("POST", "/v1.0/applicationTemplates/<template_id>/instantiate"): Requirement(
        "applicationtemplate-instantiate.md",
        any_of(OWNED_BY, "Application.ReadWrite.All", "Directory.ReadWrite.All"),
        any_of("Application.ReadWrite.All", "Directory.ReadWrite.All"),
        note="OwnedBy counts: the new app is the caller's",
    ),
    ("GET", "/v1.0/servicePrincipals"): Requirement(
        "serviceprincipal-list.md",
        any_of("Application.Read.All", OWNED_BY, "Application.ReadWrite.All", "Directory.Read.All"),
        _SP_READ,
    ),
    ("GET", _SP): Requirement(
        "serviceprincipal-get.md",
        any_of("Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"),
        _SP_READ,
        listed_not_honoured=(OWNED_BY,),
    ),
    ("DELETE", _SP): Requirement(
        "serviceprincipal-delete.md",
        any_of(OWNED_BY, "Application.ReadWrite.All"),
        any_of("Application.ReadWrite.All"),
        note="OwnedBy counts: the runbook deletes only an app it has just created",
    ),
    ("GET", "/v1.0/applications"): Requirement(
        "application-list.md",
        any_of("Application.Read.All", OWNED_BY, "Application.ReadWrite.All", "Directory.Read.All"),
        _SP_READ,
    ),
    ("DELETE", "/v1.0/applications/<app_id>"): Requirement(
        "application-delete.md",
        any_of(OWNED_BY, "Application.ReadWrite.All"),
        any_of("Application.ReadWrite.All", "Directory.AccessAsUser.All"),
        note="OwnedBy counts: the runbook deletes only an app it has just created",
    ),
    ("GET", _SP + "/appRoleAssignments"): Requirement(
        "serviceprincipal-list-approleassignments.md",
        _SP_READ,
        _SP_READ,
        listed_not_honoured=(OWNED_BY,),
    ),
    ("GET", _SP + "/appRoleAssignedTo"): Requirement(
        "serviceprincipal-list-approleassignedto.md",
        _SP_READ,
        _SP_READ,
        listed_not_honoured=(OWNED_BY,),
    ),
    ("POST", _SP + "/appRoleAssignedTo"): Requirement(
        "serviceprincipal-post-approleassignedto.md",
        (
            ("AppRoleAssignment.ReadWrite.All", "Application.Read.All"),
            ("AppRoleAssignment.ReadWrite.All", "Directory.Read.All"),
        ),
        (
            ("AppRoleAssignment.ReadWrite.All", "Application.Read.All"),
            ("AppRoleAssignment.ReadWrite.All", "Directory.Read.All"),
        ),
        roles=_ASSIGNMENT_ROLES,
    ),
    ("GET", _SP + "/appRoleAssignedTo/<assignment_id>"): Requirement(
        "approleassignment-get.md",
        any_of("Application.Read.All"),
        any_of("Application.Read.All"),
        note="the servicePrincipal row",
    ),
    ("DELETE", _SP + "/appRoleAssignedTo/<assignment_id>"): Requirement(
        "serviceprincipal-delete-approleassignedto.md",
        any_of("AppRoleAssignment.ReadWrite.All"),
        any_of("AppRoleAssignment.ReadWrite.All"),
        roles=_ASSIGNMENT_ROLES,
    ),
    # -- synchronization ------------------------------------------------------------------------
    ("GET", _SYNC + "/templates"): _sync_read("synchronization-synchronization-list-templates.md"),
    ("GET", _SYNC + "/jobs"): _sync_read("synchronization-synchronization-list-jobs.md"),
    ("POST", _SYNC + "/jobs"): _sync_write("synchronization-synchronization-post-jobs.md"),
    ("POST", _SYNC + "/jobs/validateCredentials"): _sync_write(
        "synchronization-synchronizationjob-validatecredentials.md",
        "collection-level action: not documented, checked like the job-level page",
    ),
    ("GET", _SYNC + "/jobs/<job_id>"): _sync_read("synchronization-synchronizationjob-get.md"),
    ("POST", _SYNC + "/jobs/<job_id>/validateCredentials"): _sync_write(
        "synchronization-synchronizationjob-validatecredentials.md"
    ),
    ("DELETE", _SYNC + "/jobs/<job_id>"): _sync_write(
        "synchronization-synchronizationjob-delete.md"
    ),
    ("POST", _SYNC + "/jobs/<job_id>/start"): _sync_write(
        "synchronization-synchronizationjob-start.md"
    ),
    ("POST", _SYNC + "/jobs/<job_id>/pause"): _sync_write(
        "synchronization-synchronizationjob-pause.md"
    ),
    ("POST", _SYNC + "/jobs/<job_id>/restart"): _sync_write(
        "synchronization-synchronizationjob-restart.md"
    ),
    ("GET", _SYNC + "/jobs/<job_id>/schema"): Requirement(
        "synchronization-synchronizationschema-get.md",
        any_of(
            "CustomSecAttributeProvisioning.Read.All",
            "CustomSecAttributeProvisioning.ReadWrite.All",
            "Synchronization.Read.All",
            "Synchronization.ReadWrite.All",
        ),
        any_of(
            "Synchronization.Read.All",
            "Synchronization.ReadWrite.All",
            "CustomSecAttributeProvisioning.Read.All",
            "CustomSecAttributeProvisioning.ReadWrite.All",
        ),
        roles=SYNC_ROLES,
        refusal="synchronization",
        listed_not_honoured=(OWNED_BY,),
    ),
    ("PUT", _SYNC + "/jobs/<job_id>/schema"): _sync_write(
        "synchronization-synchronizationschema-update.md"
    ),
    ("DELETE", _SYNC + "/jobs/<job_id>/schema"): _sync_write(
        "synchronization-synchronizationschema-delete.md"
    ),
    ("POST", _SYNC + "/jobs/<job_id>/schema/parseExpression"): _sync_write(
        "synchronization-synchronizationschema-parseexpression.md"
    ),
    ("POST", _SYNC + "/jobs/<job_id>/provisionOnDemand"): _sync_write(
        "synchronization-synchronizationjob-provisionondemand.md"
    ),
    ("GET", _SYNC + "/secrets"): _sync_write(
        "synchronization-serviceprincipal-put-synchronization.md",
        "GET is not documented; checked like the documented PUT",
    ),
    ("PUT", _SYNC + "/secrets"): _sync_write(
        "synchronization-serviceprincipal-put-synchronization.md"
    ),
    # -- logs, licences, grants ------------------------------------------------------------------
    ("GET", "/v1.0/auditLogs/provisioning"): Requirement(
        "provisioningobjectsummary-list.md",
        any_of("AuditLog.Read.All"),
        any_of("AuditLog.Read.All"),
        roles=_PROVISIONING_LOG_ROLES,
    ),
    ("GET", "/v1.0/auditLogs/provisioning/<entry_id>"): Requirement(
        "provisioningobjectsummary-list.md",
        any_of("AuditLog.Read.All"),
        any_of("AuditLog.Read.All"),
        roles=_PROVISIONING_LOG_ROLES,
        note="no v1.0 page for one entry; checked like the list",
    ),
    ("GET", "/v1.0/subscribedSkus"): Requirement(
        "subscribedsku-list.md",
        any_of(
            "Organization.Read.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
            "Organization.ReadWrite.All",
        ),
        any_of(
            "Organization.Read.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
            "Organization.ReadWrite.All",
        ),
    ),
    ("GET", "/v1.0/oauth2PermissionGrants"): Requirement(
        "oauth2permissiongrant-list.md",
        any_of(
            "Directory.Read.All",
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.ReadWrite.All",
        ),
        any_of(
            "Directory.Read.All",
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.ReadWrite.All",
        ),
    ),
    ("GET", "/v1.0/me"): Requirement(
        "user-get.md", NOT_SUPPORTED, _ME, delegated_only=_ME_MESSAGE, note="/me: delegated only"
    ),
    ("GET", "/v1.0/me/memberOf"): Requirement(
        "user-list-memberof.md",
        NOT_SUPPORTED,
        _MY_MEMBERSHIPS,
        delegated_only=_ME_MESSAGE,
        note="/me: delegated only",
    ),
    ("GET", "/v1.0/me/memberOf/microsoft.graph.directoryRole"): Requirement(
        "user-list-memberof.md",
        NOT_SUPPORTED,
        _MY_MEMBERSHIPS,
        delegated_only=_ME_MESSAGE,
        note="/me: delegated only; OData cast",
    ),
}


# -- the check ------------------------------------------------------------------------------------


def held_permissions(token: IssuedToken, state: TenantState) -> frozenset[str]:
    """The permissions ``token`` carries (with what they imply), minus withheld ones.

    Withheld permissions (and the broader ones that include them) are removed even from a
    token issued before, or outside, the sign-in stand-in's own filtering.
    """
    names = set(token.roles if token.kind == "app" else token.scopes)
    for name in list(names):
        names.update(_IMPLIES.get(name, ()))
    return frozenset(names - state.grants.blocked)


def holds_any(token: IssuedToken, state: TenantState, names: Iterable[str]) -> bool:
    """True when ``token`` carries at least one of ``names``."""
    held = held_permissions(token, state)
    return any(name in held for name in names)


def _satisfied(alternatives: Alternatives, held: frozenset[str]) -> bool:
    return any(all(name in held for name in alternative) for alternative in alternatives)


def _refuse(requirement: Requirement) -> GraphError:
    if requirement.refusal == "synchronization":
        return GraphError(401, "UnknownError", "")
    return GraphError(403, "Authorization_RequestDenied", _DENIED_MESSAGE)


def _resolve(
    entry: Entry, request: Request, state: TenantState, args: Mapping[str, str]
) -> Requirement | None:
    if entry is None or isinstance(entry, Requirement):
        return entry
    variant = entry.choose(request, state, args)
    return None if variant is None else entry.variants[variant]


def enforce(
    entry: Entry,
    token: IssuedToken,
    state: TenantState,
    request: Request,
    args: Mapping[str, str],
) -> None:
    """Raise the error Graph gives when ``token`` may not make this call; else return."""
    requirement = _resolve(entry, request, state, args)
    if requirement is None:
        return
    if token.kind == "app" and requirement.delegated_only:
        raise GraphError(400, "BadRequest", requirement.delegated_only)
    held = held_permissions(token, state)
    alternatives = requirement.application if token.kind == "app" else requirement.delegated
    if not _satisfied(alternatives, held):
        raise _refuse(requirement)
    if token.kind == "user" and requirement.roles:
        roles = set(state.grants.admin_roles)
        if GLOBAL_ADMINISTRATOR not in roles and not roles & set(requirement.roles):
            raise _refuse(requirement)


def missing_routes(routes: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(method, path)`` routes that have no entry in :data:`ROUTE_PERMISSIONS`."""
    return [route for route in routes if route not in ROUTE_PERMISSIONS]


def _names(alternatives: Alternatives) -> str:
    if not alternatives:
        return "Not supported"
    return ", ".join(" + ".join(alternative) for alternative in alternatives)


def permission_table_rows() -> list[tuple[str, str, str, str, str, str]]:
    """``(method, path, page, application, delegated, roles)`` for every route, for docs."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for (method, path), entry in ROUTE_PERMISSIONS.items():
        shown = path.replace("<", "{").replace(">", "}")
        if entry is None:
            rows.append((method, shown, "json-batching", "-", "-", "-"))
            continue
        variants = (
            [("", entry)]
            if isinstance(entry, Requirement)
            else [(f"{kind}: ", req) for kind, req in entry.variants.items()]
        )
        application = "; ".join(prefix + _names(req.application) for prefix, req in variants)
        delegated = "; ".join(prefix + _names(req.delegated) for prefix, req in variants)
        roles = "; ".join(prefix + (", ".join(req.roles) or "-") for prefix, req in variants)
        rows.append((method, shown, entry.page, application, delegated, roles))
    return rows
