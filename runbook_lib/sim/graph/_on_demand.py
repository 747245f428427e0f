"""``POST .../jobs/{id}/provisionOnDemand``: provision one object now.

The body names the schema's rule id and one subject: a user, or a group with up to
five member users under ``links.members``. The answer is Graph's
stringKeyStringValuePair whose ``key`` and ``value`` are JSON *strings*: the result
("Success", "Skipped", "Failure") and the detail of what was done, in the shape the
portal's on-demand blade shows.

Graph allows 5 calls per 10 seconds per job; the sandbox counts them in simulated time
and answers the sixth with 429 and ``Retry-After``. As documented, the
``aadOptscim062020`` flag does not apply to on-demand provisioning.
"""

from __future__ import annotations

import json
import math
from typing import Any

from werkzeug.wrappers import Response

from ..plumbing._clock import SimClock
from ..provisioning._provisioning_log import LogEntry
from ..provisioning.engine._engine import OnDemandResult
from ._job_control import job_of
from ._wire import GraphCall, GraphError, json_response, not_found, read_json

__all__ = ["ON_DEMAND_LIMIT", "ON_DEMAND_WINDOW", "provision_on_demand"]

ON_DEMAND_LIMIT = 5
ON_DEMAND_WINDOW = 10.0
_MAX_MEMBERS = 5


def _timestamp(moment: float) -> str:
    return SimClock.to_dt(moment).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _detail(entry: LogEntry) -> dict[str, Any]:
    started = entry.activity - entry.duration_ms / 1000.0
    error = None
    if entry.error_code is not None:
        error = entry.error_code
    return {
        "action": entry.action.capitalize(),
        "changeId": entry.change_id,
        "endTime": _timestamp(entry.activity),
        "modifiedProperties": [
            {"displayName": name, "oldValue": old, "newValue": new}
            for name, old, new in entry.modified
        ],
        "provisioningSteps": [
            {
                "name": step.name,
                "type": step.kind.capitalize(),
                "status": step.status.capitalize(),
                "description": step.description,
                "timestamp": _timestamp(entry.activity),
                "details": dict(step.details),
            }
            for step in entry.steps
        ],
        "reportableIdentifier": entry.target_name or entry.source_name,
        "startTime": _timestamp(started),
        "statusInfo": {
            "status": entry.status.capitalize(),
            "errorCode": error,
            "reason": entry.error_reason,
            "additionalDetails": None,
            "errorCategory": None,
            "recommendedAction": None,
        },
        "sourceIdentity": {
            "id": entry.source_id,
            "type": entry.source_type,
            "displayName": entry.source_name,
            "details": None,
        },
        "sourceSystem": {"id": None, "name": "Azure Active Directory", "details": None},
        "targetIdentity": {
            "id": entry.target_id or None,
            "type": entry.target_type,
            "displayName": entry.target_name or None,
            "details": None,
        },
        "targetSystem": {"id": None, "name": "customappsso", "details": None},
    }


def _subject(body: dict[str, Any], rule_id: str) -> tuple[str, str, list[str]]:
    parameters = body.get("parameters")
    if (
        not isinstance(parameters, list)
        or len(parameters) != 1
        or not isinstance(parameters[0], dict)
    ):
        raise GraphError(400, "BadRequest", "'parameters' must hold exactly one rule.")
    parameter = parameters[0]
    if parameter.get("ruleId") != rule_id:
        raise GraphError(
            400,
            "BadRequest",
            f"The ruleId '{parameter.get('ruleId')}' does not match a synchronization rule of "
            f"this job's schema (use '{rule_id}').",
        )
    subjects = parameter.get("subjects")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise GraphError(400, "BadRequest", "Provision on demand takes exactly one subject.")
    subject = subjects[0]
    object_id, type_name = subject.get("objectId"), subject.get("objectTypeName")
    if not isinstance(object_id, str) or type_name not in ("User", "Group"):
        raise GraphError(
            400, "BadRequest", "A subject needs an 'objectId' and an objectTypeName User or Group."
        )
    members: list[str] = []
    links = subject.get("links") or {}
    for member in (links.get("members") if isinstance(links, dict) else None) or []:
        if isinstance(member, dict) and isinstance(member.get("objectId"), str):
            members.append(member["objectId"].lower())
    if type_name == "User" and members:
        raise GraphError(400, "BadRequest", "Only a Group subject can list members.")
    if len(members) > _MAX_MEMBERS:
        raise GraphError(
            400, "BadRequest", f"Provision on demand takes at most {_MAX_MEMBERS} group members."
        )
    return object_id.lower(), str(type_name), members


def _rate_limit(call: GraphCall, window: Any) -> None:
    now = call.state.clock.now()
    while window and window[0] <= now - ON_DEMAND_WINDOW:
        window.popleft()
    if len(window) >= ON_DEMAND_LIMIT:
        wait = max(1, math.ceil(window[0] + ON_DEMAND_WINDOW - now))
        raise GraphError(
            429,
            "TooManyRequests",
            f"Too many requests: provision on demand allows {ON_DEMAND_LIMIT} requests per "
            f"{ON_DEMAND_WINDOW:g} seconds. Please try again later.",
            {"Retry-After": str(wait)},
        )
    window.append(now)


def provision_on_demand(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """POST .../jobs/{id}/provisionOnDemand."""
    sp, job = job_of(call, sp_id, job_id)
    state = call.state
    with state.lock:
        _rate_limit(call, job.run.on_demand)
        rule_id = job.run.compiled.rule_id
        configured = "BaseAddress" in sp.secrets
    object_id, type_name, members = _subject(read_json(call.request), rule_id)
    if not configured:
        raise GraphError(
            400,
            "BadRequest",
            "Provisioning is not configured: save the tenant URL and secret token first.",
        )
    with state.lock:
        known = (
            object_id in state.directory.users
            if type_name == "User"
            else object_id in state.directory.groups
        )
    if not known:
        raise not_found(object_id)
    engine = call.engine
    if engine is None:
        raise GraphError(503, "ServiceUnavailable", "The provisioning service is not running.")
    result: OnDemandResult = engine.provision_on_demand(sp, job, object_id, members)
    key = json.dumps({"result": result.result, "details": result.details})
    value = json.dumps(_detail(result.entry)) if result.entry is not None else "{}"
    body = {
        "@odata.context": call.context("microsoft.graph.stringKeyStringValuePair"),
        "key": key,
        "value": value,
    }
    return json_response(call, body)
