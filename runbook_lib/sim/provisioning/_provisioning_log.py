"""Provisioning log entries (``/auditLogs/provisioning``), one per engine action.

Every create, update, disable, delete, skip and failure of the engine writes one
provisioningObjectSummary, with the steps Entra reports (import, scoping, matching,
export) and the modified properties, so a runbook can explain what happened to a user
from the logs alone. Entries are compact slotted records, rendered to Graph JSON only
when read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..plumbing._clock import SimClock, graph_time

__all__ = ["LogEntry", "ProvisioningLog", "Step", "render_entry"]

_SOURCE_SYSTEM = "Azure Active Directory"


@dataclass(frozen=True, slots=True)
class Step:
    """One provisioning step: name, type (import/scoping/matching/export), status, text."""

    name: str
    kind: str
    status: str
    description: str
    details: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class LogEntry:
    """One provisioningObjectSummary."""

    id: str
    activity: float
    job_id: str
    sp_id: str
    sp_name: str
    app_id: str
    cycle_id: str
    change_id: str
    action: str
    status: str
    source_type: str
    source_id: str
    source_name: str
    target_type: str
    target_id: str
    target_name: str
    duration_ms: int = 0
    steps: list[Step] = field(default_factory=list)
    modified: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    error_code: str | None = None
    error_reason: str | None = None
    on_demand: bool = False


class ProvisioningLog:
    """All entries of the tenant, oldest first (thread-safe, append-only)."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def add(self, entry: LogEntry) -> None:
        """Append ``entry``."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        """A copy of every entry, oldest first."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _error(entry: LogEntry) -> dict[str, Any] | None:
    if entry.error_code is None:
        return None
    transient = entry.error_code in (
        "TooManyRequests",
        "Timeout",
        "InternalServerError",
        "ServiceUnavailable",
        "WebExceptionProtocolError",
    )
    return {
        "errorCode": entry.error_code,
        "reason": entry.error_reason,
        "additionalDetails": None,
        "errorCategory": "Transient" if transient else "NonServiceFailure",
        "recommendedAction": (
            "The provisioning service retries this object in the next cycle."
            if transient
            else "Check the target application's response and the attribute mappings."
        ),
    }


def render_entry(entry: LogEntry, tenant_id: str) -> dict[str, Any]:
    """A provisioningObjectSummary as Graph v1.0 returns it."""
    when = graph_time(SimClock.to_dt(entry.activity))
    return {
        "id": entry.id,
        "activityDateTime": when,
        "tenantId": tenant_id,
        "jobId": entry.job_id,
        "cycleId": entry.cycle_id,
        "changeId": entry.change_id,
        "provisioningAction": entry.action,
        "durationInMilliseconds": entry.duration_ms,
        "provisioningStatusInfo": {"status": entry.status, "errorInformation": _error(entry)},
        "provisioningSteps": [
            {
                "name": step.name,
                "provisioningStepType": step.kind,
                "status": step.status,
                "description": step.description,
                "details": dict(step.details),
            }
            for step in entry.steps
        ],
        "modifiedProperties": [
            {"displayName": name, "oldValue": old, "newValue": new}
            for name, old, new in entry.modified
        ],
        "servicePrincipal": {"id": entry.sp_id, "displayName": entry.sp_name},
        "sourceSystem": {"id": None, "displayName": _SOURCE_SYSTEM, "details": {}},
        "targetSystem": {
            "id": None,
            "displayName": entry.sp_name,
            "details": {
                "ApplicationId": entry.app_id,
                "ServicePrincipalId": entry.sp_id,
                "ServicePrincipalDisplayName": entry.sp_name,
            },
        },
        "initiatedBy": {
            "id": "",
            "displayName": "Azure AD Provisioning Service",
            "initiatorType": "system",
        },
        "sourceIdentity": {
            "id": entry.source_id,
            "displayName": entry.source_name,
            "identityType": entry.source_type,
            "details": {},
        },
        "targetIdentity": {
            "id": entry.target_id,
            "displayName": entry.target_name,
            "identityType": entry.target_type,
            "details": {},
        },
    }
