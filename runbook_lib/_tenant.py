"""Reads of the tenant that several steps share: the app by name, its scim job, its secrets.

The tenant is the state: nothing here remembers ids between runs. Each step finds the app by
its display name and the job by its template, so a notebook can be re-run at any time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import AmbiguousAppError, GraphError, GraphNotFound, StepError
from ._graph import GraphClient, odata_quote, user_key

__all__ = [
    "NON_GALLERY_TEMPLATE_ID",
    "SCIM_TEMPLATE_ID",
    "SECRET_MASK",
    "SavedSecrets",
    "find_app",
    "find_apps",
    "find_user",
    "find_scim_job",
    "read_secrets",
    "require_app",
    "require_job",
    "save_secrets",
]

NON_GALLERY_TEMPLATE_ID = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
"""Entra's 'Integrate any other application you don't find in the gallery' template."""
SCIM_TEMPLATE_ID = "scim"
"""The synchronization template of a non-gallery app (the legacy one is 'customappsso')."""
SECRET_MASK = "*"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SP_FIELDS = "id,appId,displayName,applicationTemplateId,appRoles,appRoleAssignmentRequired"


def find_user(graph: GraphClient, key: str, select: str) -> dict[str, Any] | None:
    """The user with object id or userPrincipalName ``key``; None when there is none.

    Object ids are read directly; names go through ``$filter`` on userPrincipalName, which
    needs no escaping in the URL path, so a guest's ``#EXT#`` and a name starting with ``$``
    are found like any other (Microsoft's user-get page explains why the path form breaks
    for both). A guest is often known by their own address: when no userPrincipalName
    matches, a unique match on ``mail`` is used. A 403 is raised, never taken as "absent".
    """
    key = key.strip()
    if _GUID.match(key):
        try:
            return graph.get(user_key(key), **{"$select": select})  # type: ignore[no-any-return]
        except GraphNotFound:
            return None
    for attribute in ("userPrincipalName", "mail"):
        params = {"$filter": f"{attribute} eq {odata_quote(key)}", "$select": select}
        found = list(graph.get_all("users", params=params))
        if len(found) == 1:
            return found[0]
    return None


def find_apps(graph: GraphClient, name: str) -> list[dict[str, Any]]:
    """Every service principal whose display name is exactly ``name``."""
    params = {"$filter": f"displayName eq {odata_quote(name)}", "$select": _SP_FIELDS}
    # Graph's eq on displayName ignores case; the runbook wants the exact name.
    return [
        sp
        for sp in graph.get_all("servicePrincipals", params=params)
        if sp.get("displayName") == name
    ]


def find_app(graph: GraphClient, name: str) -> dict[str, Any] | None:
    """The one app named ``name``, None when there is none; several raise AmbiguousAppError."""
    matches = find_apps(graph, name)
    if len(matches) > 1:
        raise AmbiguousAppError(name, matches)
    return matches[0] if matches else None


def require_app(graph: GraphClient, name: str) -> dict[str, Any]:
    """Like :func:`find_app`, but a missing app is an error that points at step 02."""
    app = find_app(graph, name)
    if app is None:
        raise StepError(
            f"No enterprise app named '{name}' exists yet.",
            "Run 02-create-enterprise-app first, or set app_name / RUNBOOK_APP_NAME to the "
            "name of the existing app.",
            hint="02-create-enterprise-app",
        )
    return app


def find_scim_job(graph: GraphClient, sp_id: str) -> dict[str, Any] | None:
    """The app's provisioning job made from the ``scim`` (or legacy) template, if any."""
    jobs = graph.get(f"servicePrincipals/{sp_id}/synchronization/jobs").get("value", [])
    for template in (SCIM_TEMPLATE_ID, "customappsso"):
        for job in jobs:
            if job.get("templateId") == template:
                return job  # type: ignore[no-any-return]
    return None


@dataclass(frozen=True)
class SavedSecrets:
    """What ``GET .../synchronization/secrets`` showed, and whether it could be used.

    Only PUT is documented for the secrets; GET answers on most tenants (other tools rely
    on it) with the token masked. ``readable`` is False when the read failed, came back
    empty, or masked the Tenant URL too: callers then prove the saved values work with
    Test connection (``validateCredentials`` with ``useSavedCredentials``) instead.
    """

    values: dict[str, str] = field(default_factory=dict)
    readable: bool = True
    why: str = ""

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)


def read_secrets(graph: GraphClient, sp_id: str) -> SavedSecrets:
    """The saved provisioning secrets (the token comes back masked as '*')."""
    try:
        body = graph.get(f"servicePrincipals/{sp_id}/synchronization/secrets")
    except GraphError as exc:
        if exc.status == 401:
            raise
        return SavedSecrets({}, False, f"Graph answered HTTP {exc.status} to the secrets read")
    values = {
        str(item.get("key")): str(item.get("value") or "")
        for item in (body or {}).get("value", []) or []
        if isinstance(item, dict) and item.get("key")
    }
    base = values.get("BaseAddress", "")
    if not base or base == SECRET_MASK:
        return SavedSecrets(values, False, "Graph did not show the saved Tenant URL")
    return SavedSecrets(values, True)


def require_job(graph: GraphClient, sp_id: str) -> dict[str, Any]:
    """The app's scim job; a missing job is an error that points at step 03."""
    job = find_scim_job(graph, sp_id)
    if job is None:
        raise StepError(
            "The app has no provisioning job yet.",
            "Run 03-configure-provisioning first (Bearer authentication, Test connection, Create).",
            hint="03-configure-provisioning",
        )
    return job


def save_secrets(
    graph: GraphClient,
    sp_id: str,
    updates: dict[str, str],
    *,
    token: str,
    base_address: str,
) -> None:
    """PUT the secrets with ``updates`` applied, keeping every other readable value.

    Graph replaces the whole set on PUT and masks the saved token on GET, so the token and
    the Tenant URL are always sent from the settings; without them they would be erased.
    When the saved set cannot be read, the runbook's scope (``SyncAll`` = ``false``) is sent
    too, so a re-save never widens provisioning to every user.
    """
    current = read_secrets(graph, sp_id)
    merged = {k: v for k, v in current.values.items() if v and v != SECRET_MASK}
    if not current.readable:
        merged.setdefault("SyncAll", "false")
    merged["BaseAddress"] = base_address
    merged["SecretToken"] = token
    merged.update(updates)
    graph.put(
        f"servicePrincipals/{sp_id}/synchronization/secrets",
        {"value": [{"key": k, "value": v} for k, v in merged.items()]},
    )
