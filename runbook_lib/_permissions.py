"""The Microsoft Graph permissions the runbook needs: one table, read by everything else.

Page 01's pre-flight compares what the signed-in identity holds with this table before any
page writes; the 403 hint, page 00 and docs/settings.md quote the same rows, so the list an
admin is told to grant cannot drift from the list the code checks. Each row names the
least-privileged permission Microsoft's reference page documents for the calls behind it
(docs/graph-calls.md lists the calls and their pages), the pages that need it, and the
higher-privileged permissions that also satisfy it.

Delegated sign-in (an admin with a device code) also needs a directory role: Microsoft's
synchronization pages require the signed-in user to be an Application Administrator or a
Cloud Application Administrator, whatever the token's scopes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ADMIN_ROLES",
    "GRAPH_APP_ID",
    "PERMISSIONS",
    "Permission",
    "SignInKind",
    "delegated_scopes",
    "grant_instructions",
    "missing_permissions",
    "permission_for_request",
    "permissions_table_markdown",
]

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
"""Microsoft Graph's application id (the same in every tenant)."""

SignInKind = Literal["application", "delegated"]

ADMIN_ROLES: tuple[str, ...] = (
    "Application Administrator",
    "Cloud Application Administrator",
    "Global Administrator",
)
"""Directory roles that let a delegated sign-in configure provisioning (any one)."""


@dataclass(frozen=True)
class Permission:
    """One Microsoft Graph permission the runbook uses.

    :param name: the permission (``Synchronization.ReadWrite.All``).
    :param pages: the runbook pages whose calls need it.
    :param required: False when the runbook can go on without it (with a warning).
    :param why: what the runbook does with it, in a few words.
    :param also_satisfied_by: higher-privileged permissions that cover the same calls.
    :param app_role_id: its id as an application permission (for ``az`` one-liners).
    :param scope_id: its id as a delegated permission.
    :param requested_by_default: asked for by name at device-code sign-in.
    """

    name: str
    pages: tuple[str, ...]
    required: bool
    why: str
    also_satisfied_by: tuple[str, ...] = ()
    app_role_id: str = ""
    scope_id: str = ""
    requested_by_default: bool = True

    def satisfied_by(self, granted: set[str]) -> bool:
        """True when ``granted`` holds this permission or one that covers it."""
        names = {g.lower() for g in granted}
        return any(n.lower() in names for n in (self.name, *self.also_satisfied_by))


PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "Application.ReadWrite.All",
        ("01", "02", "03", "04", "05", "06", "07", "08", "09"),
        True,
        "find the app by name and create it from the non-gallery template",
        app_role_id="1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        scope_id="bdfbf15f-ee85-4955-8675-146e8e5296b5",
    ),
    Permission(
        "Synchronization.ReadWrite.All",
        ("03", "04", "05", "07", "08", "09"),
        True,
        "create the provisioning job, save the Iru URL and token, edit mappings, start and "
        "restart provisioning",
        app_role_id="9b50c33d-700f-43b1-b2eb-87e89b703581",
        scope_id="7bb27fa3-ea8f-4d67-a916-87715b6188bd",
    ),
    Permission(
        "AppRoleAssignment.ReadWrite.All",
        ("06",),
        True,
        "assign users and groups to the app",
        app_role_id="06b708a9-e830-4db3-a914-8e69da51d44f",
        scope_id="84bccea3-f856-4a8a-967b-dbe0a3d53a64",
    ),
    Permission(
        "User.Read.All",
        ("06", "07", "08", "09"),
        True,
        "look up the users to assign and read what Entra sends for them",
        also_satisfied_by=("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
        app_role_id="df021288-bdef-4463-88db-98f22de89214",
        scope_id="a154be20-db9c-4678-8ab7-66f6cc099a59",
    ),
    Permission(
        "GroupMember.Read.All",
        ("06", "07", "08"),
        True,
        "look up the groups to assign and read their members",
        also_satisfied_by=(
            "Group.Read.All",
            "Group.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ),
        app_role_id="98830695-27a2-44f7-8c18-0c3ebc9698f6",
        scope_id="bc024368-1153-4739-b217-4326f2e966d0",
    ),
    Permission(
        "AuditLog.Read.All",
        ("07",),
        False,
        "read the provisioning logs to explain failed users (without it that check is skipped "
        "with a warning)",
        app_role_id="b0afded3-3588-46d8-8b3d-9842eff778da",
        scope_id="e4c9e354-4dc5-45b8-9e7c-e1393b0b1a20",
    ),
    Permission(
        "User.ReadWrite.All",
        ("09",),
        False,
        "only for page 09's disable/delete demo (run_demo=True) on a test user",
        also_satisfied_by=("Directory.ReadWrite.All",),
        app_role_id="741f803b-c850-494e-b5df-cde7c675a1ca",
        scope_id="204e0828-b5ca-4ad8-b9f3-f32a958e7cc4",
        requested_by_default=False,
    ),
)


def delegated_scopes(resource: str = "https://graph.microsoft.com") -> tuple[str, ...]:
    """The scopes device-code sign-in asks for by name (``https://graph.microsoft.com/X``).

    Asking by name, unlike ``.default``, makes Entra show exactly these permissions on the
    consent prompt, so the admin consents once to what the runbook uses and nothing else.
    """
    base = resource.rstrip("/")
    return tuple(f"{base}/{p.name}" for p in PERMISSIONS if p.requested_by_default)


def missing_permissions(granted: set[str], *, include_optional: bool = True) -> list[Permission]:
    """The table's permissions that ``granted`` does not satisfy, required ones first."""
    rows = [p for p in PERMISSIONS if not p.satisfied_by(granted)]
    if not include_optional:
        rows = [p for p in rows if p.required]
    return sorted(rows, key=lambda p: not p.required)


def grant_instructions(permission: Permission, kind: SignInKind, client_id: str = "") -> str:
    """How to grant ``permission``: the portal path and a one-line command."""
    if kind == "application":
        app = client_id or "<RUNBOOK_CLIENT_ID>"
        return (
            "Entra admin center > App registrations > your runbook app > API permissions > "
            f"Add a permission > Microsoft Graph > Application permissions > {permission.name}, "
            "then Grant admin consent. Or: "
            f"az ad app permission add --id {app} --api {GRAPH_APP_ID} "
            f"--api-permissions {permission.app_role_id}=Role && "
            f"az ad app permission admin-consent --id {app}"
        )
    return (
        "Sign in once as a Global Administrator or Privileged Role Administrator and consent: "
        f"Connect-MgGraph -Scopes {permission.name} (PowerShell), or Entra admin center > "
        "Enterprise apps > Microsoft Graph Command Line Tools > Permissions > Grant admin "
        "consent. Then sign in to the runbook again."
    )


# Method + path pattern -> the table row whose permission the call needs. Paths are
# relative to the Graph base URL, ids collapsed to one segment.
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern + r"(\?.*)?$"), name)
    for method, pattern, name in (
        ("GET", r"/?users([/(?].*)?", "User.Read.All"),
        ("PATCH", r"/?users/.+", "User.ReadWrite.All"),
        ("DELETE", r"/?users/.+", "User.ReadWrite.All"),
        ("DELETE", r"/?directory/deletedItems/.+", "User.ReadWrite.All"),
        ("GET", r"/?directory/deletedItems/.+", "User.Read.All"),
        ("GET", r"/?groups(/.*)?", "GroupMember.Read.All"),
        ("GET", r"/?auditLogs/provisioning.*", "AuditLog.Read.All"),
        ("POST", r"/?servicePrincipals/[^/]+/appRoleAssignedTo", "AppRoleAssignment.ReadWrite.All"),
        ("*", r"/?servicePrincipals/[^/]+/synchronization.*", "Synchronization.ReadWrite.All"),
        (
            "*",
            r"/?(servicePrincipals|applicationTemplates|applications).*",
            "Application.ReadWrite.All",
        ),
    )
)


def permission_for_request(method: str, path: str) -> Permission | None:
    """The table row a refused ``method path`` needs, or None when the call is not ours."""
    clean = path.split("?", 1)[0]
    for route_method, pattern, name in _ROUTES:
        if route_method in ("*", method.upper()) and pattern.match(clean):
            return next(p for p in PERMISSIONS if p.name == name)
    return None


def permissions_table_markdown() -> str:
    """The table as Markdown, for docs/settings.md and page 00."""
    lines = [
        "| Permission | Pages | Required | What the runbook does with it | Also accepted |",
        "|---|---|---|---|---|",
    ]
    for p in PERMISSIONS:
        lines.append(
            f"| `{p.name}` | {', '.join(p.pages)} | {'required' if p.required else 'optional'} "
            f"| {p.why} | {', '.join(f'`{a}`' for a in p.also_satisfied_by) or '-'} |"
        )
    return "\n".join(lines)
