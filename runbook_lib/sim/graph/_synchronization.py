"""Graph handlers under ``/servicePrincipals/{id}/synchronization``.

Templates, jobs, credential validation and secrets: the calls that turn an empty
enterprise app into one that provisions to a SCIM endpoint. Each handler takes the
:class:`~._wire.GraphCall` and the URL parameters and returns a response or
raises :class:`~._wire.GraphError`.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from ..provisioning._jobs import JobConflict, render_job
from ..provisioning._secrets import MASKED_SECRET_KEYS, SECRET_KEYS
from ..provisioning.engine._probe import (
    CODE_INVALID_TENANT_URL,
    entra_issued_token,
    probe_scim_endpoint,
)
from ..tenant._state import ServicePrincipal
from ..tenant._well_known import SCIM_TEMPLATE_ID
from ._app_shapes import render_template
from ._wire import GraphCall, GraphError, json_response, no_content, not_found, read_json

__all__ = [
    "create_job",
    "get_job",
    "get_secrets",
    "list_jobs",
    "list_templates",
    "put_secrets",
    "validate_credentials",
    "validate_job_credentials",
]

_TEMPLATE_IDS = (SCIM_TEMPLATE_ID,)


def _service_principal(call: GraphCall, sp_id: str) -> ServicePrincipal:
    sp = call.state.read_service_principal(sp_id)
    if sp is None:
        raise not_found(sp_id)
    return sp


def _sync_context(call: GraphCall, sp: ServicePrincipal, tail: str) -> str:
    return call.context(f"servicePrincipals('{sp.object_id}')/synchronization/{tail}")


def _check_template(template_id: object) -> str:
    if not isinstance(template_id, str) or not template_id:
        raise GraphError(
            400, "Request_BadRequest", "The property 'templateId' is required and must be a string."
        )
    if template_id not in _TEMPLATE_IDS:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"The synchronization template '{template_id}' is not available for this "
            f"service principal. Available templates: {', '.join(_TEMPLATE_IDS)}.",
        )
    return template_id


def list_templates(call: GraphCall, sp_id: str) -> Response:
    """GET .../synchronization/templates."""
    sp = _service_principal(call, sp_id)
    return json_response(
        call,
        {"@odata.context": _sync_context(call, sp, "templates"), "value": [render_template(sp)]},
    )


def list_jobs(call: GraphCall, sp_id: str) -> Response:
    """GET .../synchronization/jobs."""
    sp = _service_principal(call, sp_id)
    with call.state.lock:
        jobs = [
            render_job(job, sp.credentials_saved, call.state.cycle_seconds)
            for job in sp.jobs.values()
        ]
    return json_response(call, {"@odata.context": _sync_context(call, sp, "jobs"), "value": jobs})


def create_job(call: GraphCall, sp_id: str) -> Response:
    """POST .../synchronization/jobs: one job per template, created disabled."""
    sp = _service_principal(call, sp_id)
    template_id = _check_template(read_json(call.request).get("templateId"))
    try:
        job = call.state.create_job(sp, template_id)
    except JobConflict as conflict:
        raise GraphError(
            409,
            "Conflict",
            f"A synchronization job from template '{template_id}' already exists on this "
            f"service principal (job id '{conflict.job.id}'). Use that job instead of "
            "creating another one.",
        ) from None
    body = {
        "@odata.context": _sync_context(call, sp, "jobs/$entity"),
        **render_job(job, sp.credentials_saved, call.state.cycle_seconds),
    }
    return json_response(call, body, status=201)


def get_job(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """GET .../synchronization/jobs/{jobId}."""
    sp = _service_principal(call, sp_id)
    job = sp.jobs.get(job_id)
    if job is None:
        raise not_found(job_id)
    body = {
        "@odata.context": _sync_context(call, sp, "jobs/$entity"),
        **render_job(job, sp.credentials_saved, call.state.cycle_seconds),
    }
    return json_response(call, body)


def _read_pairs(value: object, what: str) -> dict[str, str]:
    """Validate a list of ``{"key", "value"}`` pairs; keys must be synchronizationSecret names."""
    if not isinstance(value, list):
        raise GraphError(
            400, "Request_BadRequest", f"The property '{what}' must be a list of key/value pairs."
        )
    pairs: dict[str, str] = {}
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Each entry of '{what}' needs a string 'key' and 'value'.",
            )
        key, item = entry["key"], entry.get("value")
        if key not in SECRET_KEYS:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"'{key}' is not a valid synchronization secret key (keys are case-sensitive, "
                "for example BaseAddress and SecretToken).",
            )
        if item is not None and not isinstance(item, str):
            raise GraphError(400, "Request_BadRequest", f"The value of '{key}' must be a string.")
        pairs[key] = item or ""
    return pairs


def _validate(call: GraphCall, sp: ServicePrincipal, body: dict[str, Any]) -> Response:
    use_saved = body.get("useSavedCredentials", False)
    if not isinstance(use_saved, bool):
        raise GraphError(400, "Request_BadRequest", "'useSavedCredentials' must be true or false.")
    if use_saved:
        with call.state.lock:
            credentials = dict(sp.secrets)
        if "BaseAddress" not in credentials:
            raise GraphError(
                400,
                CODE_INVALID_TENANT_URL,
                "Error validating credentials. No tenant URL (BaseAddress) has been saved for "
                "this application; save the credentials first or pass them in 'credentials'.",
            )
    else:
        credentials = _read_pairs(body.get("credentials", []), "credentials")
    base_address = credentials.get("BaseAddress", "").strip()
    if not base_address:
        raise GraphError(
            400,
            CODE_INVALID_TENANT_URL,
            "Error validating credentials. The tenant URL (BaseAddress) is required.",
        )
    token = credentials.get("SecretToken") or entra_issued_token(call.state.tenant_id)
    call.state.redactor.add(token)
    failure = probe_scim_endpoint(
        base_address, token, probe_guid=call.state.ids.uuid("probe"), verify=call.probe_context
    )
    if failure is not None:
        raise GraphError(400, failure.code, call.state.redactor.redact(failure.message))
    return no_content(call)


def validate_credentials(call: GraphCall, sp_id: str) -> Response:
    """POST .../synchronization/jobs/validateCredentials (before any job exists).

    Not documented: no v1.0 reference page describes this collection-level action, though
    it exists in Graph's v1.0 metadata (with ``applicationIdentifier``, ``templateId``,
    ``useSavedCredentials`` and ``credentials``). The documented call is the job-level
    :func:`validate_job_credentials`; this one stays for clients that still use it.
    """
    sp = _service_principal(call, sp_id)
    body = read_json(call.request)
    if "templateId" in body:
        _check_template(body["templateId"])
    return _validate(call, sp, body)


# synchronization-synchronizationjob-validatecredentials.md: the request body's parameters.
_JOB_VALIDATE_PARAMETERS = frozenset({"useSavedCredentials", "credentials"})


def validate_job_credentials(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """POST .../synchronization/jobs/{jobId}/validateCredentials.

    The page documents two parameters, ``useSavedCredentials`` and ``credentials``; any
    other property is refused with a 400, as Graph refuses parameters an action does not
    declare.
    """
    sp = _service_principal(call, sp_id)
    if job_id not in sp.jobs:
        raise not_found(job_id)
    body = read_json(call.request)
    for name in body:
        if name not in _JOB_VALIDATE_PARAMETERS and not name.startswith("@odata."):
            raise GraphError(
                400,
                "BadRequest",
                f"The parameter '{name}' in the request payload is not a valid parameter "
                "for the operation 'validateCredentials'.",
            )
    return _validate(call, sp, body)


def get_secrets(call: GraphCall, sp_id: str) -> Response:
    """GET .../synchronization/secrets: sensitive values come back as ``*``."""
    sp = _service_principal(call, sp_id)
    with call.state.lock:
        saved = dict(sp.secrets)
    value = [
        {"key": key, "value": "*" if key in MASKED_SECRET_KEYS else item}
        for key, item in saved.items()
    ]
    return json_response(
        call, {"@odata.context": _sync_context(call, sp, "secrets"), "value": value}
    )


def put_secrets(call: GraphCall, sp_id: str) -> Response:
    """PUT .../synchronization/secrets: replaces the saved set."""
    sp = _service_principal(call, sp_id)
    body = read_json(call.request)
    if "value" not in body:
        raise GraphError(
            400, "Request_BadRequest", "The request body needs a 'value' list of secrets."
        )
    values = _read_pairs(body["value"], "value")
    _check_settings(values)
    with call.state.lock:
        old_scope = sp.secrets.get("SyncAll", "")
    call.state.set_secrets(sp, values)
    if values.get("SyncAll", "").lower() != old_scope.lower():
        # A scope change makes the next cycle re-evaluate everything (as in Entra).
        with call.state.lock:
            for job in sp.jobs.values():
                job.run.full_pending = True
    return no_content(call)


def _check_settings(values: dict[str, str]) -> None:
    """The two settings the provisioning service itself parses must be well formed."""
    sync_all = values.get("SyncAll", "")
    if sync_all and sync_all.lower() not in ("true", "false"):
        raise GraphError(
            400,
            "Request_BadRequest",
            'SyncAll must be "true" (sync all users and groups) or "false" (sync only '
            "assigned users and groups).",
        )
    notification = values.get("SyncNotificationSettings", "")
    if notification:
        try:
            parsed = json.loads(notification)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise GraphError(
                400,
                "Request_BadRequest",
                "SyncNotificationSettings must be a JSON object as a string, for example "
                '{"Enabled":false,"DeleteThresholdEnabled":false}.',
            )
