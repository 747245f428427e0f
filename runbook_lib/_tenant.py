"""Reads of the tenant that several steps share: the app by name, its scim job, its secrets.

The tenant is the state: nothing here remembers ids between runs. Each step finds the app by
its display name and the job by its template, so a notebook can be re-run at any time.
"""

from __future__ import annotations

from typing import Any

from ._exceptions import AmbiguousAppError, GraphNotFound, StepError
from ._graph import GraphClient, odata_quote

__all__ = [
    "NON_GALLERY_TEMPLATE_ID",
    "SCIM_TEMPLATE_ID",
    "SECRET_MASK",
    "find_app",
    "find_apps",
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
_SP_FIELDS = "id,appId,displayName,applicationTemplateId,appRoles,appRoleAssignmentRequired"


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


def read_secrets(graph: GraphClient, sp_id: str) -> dict[str, str]:
    """The saved provisioning secrets as a dict (secret values come back masked as '*')."""
    try:
        body = graph.get(f"servicePrincipals/{sp_id}/synchronization/secrets")
    except GraphNotFound:
        return {}
    return {item["key"]: item.get("value", "") for item in (body or {}).get("value", [])}


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


def save_secrets(graph: GraphClient, sp_id: str, updates: dict[str, str], token: str) -> None:
    """PUT the secrets with ``updates`` applied, keeping every other readable value.

    Graph replaces the whole set on PUT and masks the saved token on GET, so the token is sent
    again from the settings; without it the saved token would be erased.
    """
    current = read_secrets(graph, sp_id)
    merged = {k: v for k, v in current.items() if v and v != SECRET_MASK}
    merged["SecretToken"] = token
    merged.update(updates)
    graph.put(
        f"servicePrincipals/{sp_id}/synchronization/secrets",
        {"value": [{"key": k, "value": v} for k, v in merged.items()]},
    )
