"""Who may do what in the simulated tenant: Microsoft Graph's permissions and their grants.

Real Graph decides every request from two things: the permissions granted to the calling
client (application permissions are app role assignments on Microsoft Graph's service
principal; delegated ones are ``oauth2PermissionGrants``), and, for delegated calls, the
signed-in user's directory roles. This module holds both for the sandbox, apart from the
library: the names and ids below come from Microsoft's permissions reference, not from
the runbook.

* :data:`GRAPH_PERMISSIONS` is the slice of Microsoft Graph's permission catalogue the
  sandbox knows, with the real app role (application) and scope (delegated) ids.
* :class:`Grants` is the tenant's consent state: the app roles granted to the runbook's
  app registration, the delegated scopes each public client was consented to, and the
  admin's directory roles. ``withheld`` removes permissions everywhere, so a test can
  rehearse a tenant where an admin forgot one; it also removes the broader permissions
  that include a withheld one (:data:`INCLUDED_IN`), since a tenant that holds
  User.ReadWrite.All has not really forgotten User.Read.All.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = [
    "ADMIN_DEFAULT_ROLES",
    "DIRECTORY_ROLE_TEMPLATES",
    "GRAPH_CLI_CLIENT_ID",
    "GRAPH_PERMISSIONS",
    "INCLUDED_IN",
    "GraphPermission",
    "Grants",
    "RUNBOOK_DEFAULT_APP_ROLES",
    "SANDBOX_EXTRA_APP_ROLES",
    "blocked_by",
]

GRAPH_CLI_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
"""Microsoft Graph Command Line Tools: the public client ``Connect-MgGraph`` signs in with."""


@dataclass(frozen=True, slots=True)
class GraphPermission:
    """One Microsoft Graph permission: its name, app role id and delegated scope id."""

    name: str
    app_role_id: str | None
    scope_id: str | None


GRAPH_PERMISSIONS: dict[str, GraphPermission] = {
    p.name: p
    for p in (
        GraphPermission(
            "Application.Read.All",
            "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
            "c79f8feb-a9db-4090-85f9-90d820caa0eb",
        ),
        GraphPermission(
            "Application.ReadWrite.All",
            "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
            "bdfbf15f-ee85-4955-8675-146e8e5296b5",
        ),
        GraphPermission(
            "Application.ReadWrite.OwnedBy", "18a4783c-866b-4cc7-a460-3d5e5662c884", None
        ),
        GraphPermission(
            "AppRoleAssignment.ReadWrite.All",
            "06b708a9-e830-4db3-a914-8e69da51d44f",
            "84bccea3-f856-4a8a-967b-dbe0a3d53a64",
        ),
        GraphPermission(
            "Synchronization.Read.All",
            "5ba43d2f-fa88-4db2-bd1c-a67c5f0fb1ce",
            "7aa02aeb-824f-4fbe-a3f7-611f751f5b55",
        ),
        GraphPermission(
            "Synchronization.ReadWrite.All",
            "9b50c33d-700f-43b1-b2eb-87e89b703581",
            "7bb27fa3-ea8f-4d67-a916-87715b6188bd",
        ),
        GraphPermission(
            "User.Read.All",
            "df021288-bdef-4463-88db-98f22de89214",
            "a154be20-db9c-4678-8ab7-66f6cc099a59",
        ),
        GraphPermission(
            "User.ReadWrite.All",
            "741f803b-c850-494e-b5df-cde7c675a1ca",
            "204e0828-b5ca-4ad8-b9f3-f32a958e7cc4",
        ),
        GraphPermission(
            "User.EnableDisableAccount.All",
            "3011c876-62b7-4ada-afa2-506cbbecc68c",
            "f92e74e7-2563-467f-9dd0-902688cb5863",
        ),
        GraphPermission(
            "GroupMember.Read.All",
            "98830695-27a2-44f7-8c18-0c3ebc9698f6",
            "bc024368-1153-4739-b217-4326f2e966d0",
        ),
        GraphPermission(
            "Group.Read.All",
            "5b567255-7703-4780-807c-7be8301ae99b",
            "5f8c59db-677d-491f-a6b8-5f174b11ec1d",
        ),
        GraphPermission(
            "Directory.Read.All",
            "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
            "06da0dbc-49e2-44d2-8312-53f166ab848a",
        ),
        GraphPermission(
            "Directory.ReadWrite.All",
            "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
            "c5366453-9fb0-48a5-a156-24f0c49a4b84",
        ),
        GraphPermission(
            "AuditLog.Read.All",
            "b0afded3-3588-46d8-8b3d-9842eff778da",
            "e4c9e354-4dc5-45b8-9e7c-e1393b0b1a20",
        ),
        GraphPermission(
            "DelegatedPermissionGrant.Read.All", None, "a197cdc4-a8e7-4d49-9d4b-a0f6e2ee4f5c"
        ),
        GraphPermission("User.Read", None, "e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
        GraphPermission(
            "User.ReadBasic.All",
            "97235f07-e226-4f63-ace3-39588e11d3a1",
            "b340eb25-3456-403f-be2f-af7a0d370277",
        ),
        GraphPermission(
            "Group.ReadWrite.All",
            "62a82d76-70ea-41e2-9197-370581804d09",
            "4e46008b-f24c-477d-8fff-7bb4ec7aafe0",
        ),
        GraphPermission(
            "GroupMember.ReadWrite.All",
            "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
            "f81125ac-d3b7-4573-a3b2-7099cc39df9e",
        ),
        GraphPermission(
            "Organization.Read.All",
            "498476ce-e0fe-48b0-b801-37ba7e2685c6",
            "4908d5b9-3fb2-4b1e-9336-1888b7937185",
        ),
        GraphPermission(
            "RoleManagement.Read.Directory",
            "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
            "741c54c3-0c1e-44a1-818b-3f97ab4e8c83",
        ),
    )
}

# The application permissions the sandbox's app registration holds by default: what the
# runbook documents as required and optional, so a default rehearsal can do everything.
RUNBOOK_DEFAULT_APP_ROLES: tuple[str, ...] = (
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Synchronization.ReadWrite.All",
    "User.Read.All",
    "GroupMember.Read.All",
    "AuditLog.Read.All",
    "User.ReadWrite.All",
)

# Also granted by default, though the runbook never needs them: the sandbox's own tests act
# as a tenant admin through Graph (creating groups and memberships, reading the licences),
# and Graph now checks those calls too. Withhold them like any other permission.
SANDBOX_EXTRA_APP_ROLES: tuple[str, ...] = ("Group.ReadWrite.All", "Organization.Read.All")

# Application.ReadWrite.OwnedBy is in the catalogue (so it can be listed and granted) but is
# not granted by default: it only reaches apps the client owns, and the sandbox does not
# record owners, so it never satisfies a call on an existing app (see graph/_permissions.py).

# Built-in directory role templates (Entra's role ids, the same in every tenant).
DIRECTORY_ROLE_TEMPLATES: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
}

# Broader permissions that include a narrower one (narrower -> broader), as the permissions
# reference describes them: a ReadWrite permission reads too, a Directory-wide read covers
# users, groups and apps, reading whole groups covers their memberships.
INCLUDED_IN: dict[str, tuple[str, ...]] = {
    "User.ReadBasic.All": ("User.Read.All",),
    "User.Read.All": ("User.ReadWrite.All", "Directory.Read.All"),
    "GroupMember.Read.All": ("GroupMember.ReadWrite.All", "Group.Read.All", "Directory.Read.All"),
    "GroupMember.ReadWrite.All": ("Group.ReadWrite.All",),
    "Group.Read.All": ("Group.ReadWrite.All", "Directory.Read.All"),
    "Application.Read.All": ("Application.ReadWrite.All", "Directory.Read.All"),
    "Directory.Read.All": ("Directory.ReadWrite.All",),
    "Synchronization.Read.All": ("Synchronization.ReadWrite.All",),
    "RoleManagement.Read.Directory": ("Directory.Read.All",),
    "Organization.Read.All": ("Directory.Read.All",),
}


def blocked_by(withheld: frozenset[str]) -> frozenset[str]:
    """``withheld`` plus every permission that includes one of them, transitively."""
    blocked = set(withheld)
    pending = list(withheld)
    while pending:
        for broader in INCLUDED_IN.get(pending.pop(), ()):
            if broader not in blocked:
                blocked.add(broader)
                pending.append(broader)
    return frozenset(blocked)


ADMIN_DEFAULT_ROLES: tuple[str, ...] = ("Application Administrator", "User Administrator")
"""The sandbox admin's roles: enough for the runbook and its disable/delete demo."""


@dataclass
class Grants:
    """The tenant's consent state for the runbook's clients, behind one lock.

    :param app_roles: application permissions granted (admin-consented) to the runbook's
        own app registration.
    :param admin_roles: directory roles of the signed-in sandbox admin.
    :param withheld: permission names no client holds, whatever is asked or granted;
        :attr:`blocked` adds the broader permissions that include them.
    """

    app_roles: set[str] = field(
        default_factory=lambda: set(RUNBOOK_DEFAULT_APP_ROLES + SANDBOX_EXTRA_APP_ROLES)
    )
    admin_roles: tuple[str, ...] = ADMIN_DEFAULT_ROLES
    withheld: frozenset[str] = frozenset()
    delegated: dict[str, set[str]] = field(default_factory=dict)
    blocked: frozenset[str] = field(init=False, default=frozenset())
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.withheld) - set(GRAPH_PERMISSIONS))
        if unknown:
            raise ValueError(
                f"unknown Microsoft Graph permission(s) {', '.join(unknown)}; the sandbox "
                f"knows {', '.join(sorted(GRAPH_PERMISSIONS))}"
            )
        self.blocked = blocked_by(frozenset(self.withheld))
        self.app_roles -= set(self.blocked)

    def granted_app_roles(self) -> tuple[str, ...]:
        """The application permissions an app-only token of the runbook's app carries."""
        with self._lock:
            return tuple(sorted(self.app_roles - self.blocked))

    def consent(self, client_id: str, requested: tuple[str, ...]) -> tuple[str, ...]:
        """Record consent for ``requested`` delegated scopes; return what the client now holds.

        Consent is cumulative, as in Entra: a later sign-in asking for fewer scopes still
        holds the earlier ones. Withheld permissions are never granted (an admin declined
        them); names Graph does not know are ignored.
        """
        with self._lock:
            held = self.delegated.setdefault(client_id.lower(), set())
            held |= {
                name
                for name in requested
                if name in GRAPH_PERMISSIONS
                and GRAPH_PERMISSIONS[name].scope_id is not None
                and name not in self.blocked
            }
            return tuple(sorted(held))

    def delegated_scopes(self, client_id: str) -> tuple[str, ...]:
        """The delegated scopes ``client_id`` was consented to (empty when none)."""
        with self._lock:
            return tuple(sorted(self.delegated.get(client_id.lower(), set()) - self.blocked))
