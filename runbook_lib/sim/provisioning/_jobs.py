"""The live state of one provisioning job, and its Graph JSON.

Entra keeps, per job: the schedule (Disabled/Active/Paused), the saved schema, the
*escrow* of linked objects (source object id -> target SCIM id, plus what was last
exported), a *watermark* (how far through the directory's changes the last cycle
got), failure counters, the last executions and a quarantine record. ``restart`` with
``criteria.resetScope`` clears parts of this, and this module is where each part is
defined so that the documented reset scopes map onto it one to one.

Status codes follow the documented meanings: NotConfigured (no credentials saved),
Paused, NotRun (started, first cycle not finished), Active, Quarantine.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..plumbing._clock import SimClock, graph_time
from ._schema import ENTERPRISE_USER, GROUP_OBJECT, CompiledSchema, compile_schema, default_schema

__all__ = [
    "RESET_SCOPES",
    "EscrowEntry",
    "Execution",
    "JobConflict",
    "JobRun",
    "Quarantine",
    "SynchronizationJob",
    "interval_text",
    "render_job",
    "render_status",
]

RESET_SCOPES = frozenset(
    {
        "None",
        "ConnectorDataStore",
        "Escrows",
        "Watermark",
        "QuarantineState",
        "Full",
        "ForceDeletes",
    }
)
_DEFAULT_RESET = frozenset({"Watermark", "Escrows", "QuarantineState"})
_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(slots=True)
class EscrowEntry:
    """One source object the job has linked to a target object.

    ``exported`` holds the last value the target is known to have for each mapped
    attribute; ``members`` (groups only) maps the source user ids exported as members
    to their SCIM ids.
    ``in_scope`` False means the object left scope and was disabled: the job keeps
    the link (re-assigning re-enables it) but no longer deletes it.
    """

    kind: str
    scim_id: str
    display: str
    in_scope: bool = True
    exported: dict[str, str | None] = field(default_factory=dict)
    members: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Execution:
    """One finished cycle (synchronizationTaskExecution)."""

    activity_id: str
    began: float
    ended: float
    state: str
    entitled: int = 0
    exported: int = 0
    escrowed: int = 0
    imported: int = 0
    error_code: str | None = None
    error_message: str | None = None


@dataclass(slots=True)
class Quarantine:
    """Why and since when the job is quarantined, and when it tries again."""

    reason: str
    error_code: str
    error_message: str
    series_began: float
    current_began: float
    next_attempt: float
    series_count: int = 1


@dataclass(slots=True)
class JobRun:
    """Everything a job remembers between cycles (guarded by the tenant lock)."""

    schema: dict[str, Any]
    compiled: CompiledSchema
    schedule_state: str = "Disabled"
    cycles_completed: int = 0
    escrow: dict[str, EscrowEntry] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    # Objects evaluated and deliberately not exported (a disabled user never created):
    # incremental cycles leave them alone until they change.
    skipped: set[str] = field(default_factory=set)
    watermark: int = 0
    full_pending: bool = True
    sync_all_seen: str | None = None
    last_execution: Execution | None = None
    last_success: Execution | None = None
    last_success_with_exports: Execution | None = None
    quarantine: Quarantine | None = None
    successive_failures: int = 0
    steady_first: float | None = None
    steady_last: float | None = None
    next_run: float | None = None
    kicked: bool = False
    running: bool = False
    on_demand: deque[float] = field(default_factory=deque)

    @classmethod
    def new(cls, job_id: str) -> JobRun:
        """A job as ``POST .../jobs`` creates it: disabled, default schema."""
        schema = default_schema(job_id)
        return cls(schema=schema, compiled=compile_schema(schema))

    def reset(self, scopes: frozenset[str]) -> None:
        """Apply a ``restart`` reset scope (empty = the portal's Restart provisioning)."""
        scopes = scopes or _DEFAULT_RESET
        if "Full" in scopes:
            self.escrow.clear()
            self.skipped.clear()
            scopes = scopes | _DEFAULT_RESET
        if "Watermark" in scopes:
            self.watermark = 0
            self.full_pending = True
        if "Escrows" in scopes:
            self.failures.clear()
        if "QuarantineState" in scopes:
            self.quarantine = None
            self.successive_failures = 0

    def status_code(self, configured: bool) -> str:
        """NotConfigured, Paused, NotRun, Active or Quarantine."""
        if not configured and self.schedule_state == "Disabled":
            return "NotConfigured"
        if self.quarantine is not None:
            return "Quarantine"
        if self.schedule_state != "Active":
            return "Paused"
        return "Active" if self.cycles_completed else "NotRun"


@dataclass(slots=True)
class SynchronizationJob:
    """A provisioning job on a service principal (created disabled)."""

    id: str
    template_id: str
    created: datetime
    run: JobRun = field(default_factory=lambda: JobRun.new("scim"))


class JobConflict(Exception):
    """A job from the same template already exists on the service principal."""

    def __init__(self, job: SynchronizationJob) -> None:
        super().__init__(job.id)
        self.job = job


def interval_text(cycle_seconds: float | None) -> str:
    """The schedule interval as an ISO 8601 duration (PT40M unless compressed)."""
    if cycle_seconds is None:
        return "PT40M"
    return f"PT{cycle_seconds:g}S"


def _time(moment: float | None) -> str | None:
    return None if moment is None else graph_time(SimClock.to_dt(moment))


def _execution(run: Execution | None) -> dict[str, Any] | None:
    if run is None:
        return None
    error = None
    if run.error_code is not None:
        error = {"code": run.error_code, "message": run.error_message, "tenantActionable": True}
    return {
        "activityIdentifier": run.activity_id,
        "countEntitled": run.entitled,
        "countEntitledForProvisioning": run.entitled,
        "countEscrowed": run.escrowed,
        "countEscrowedRaw": run.escrowed,
        "countExported": run.exported,
        "countExports": run.exported,
        "countImported": run.imported,
        "countImportedDeltas": run.imported,
        "countImportedReferenceDeltas": 0,
        "error": error,
        "state": run.state,
        "timeBegan": _time(run.began),
        "timeEnded": _time(run.ended),
    }


def _quarantine(q: Quarantine | None) -> dict[str, Any] | None:
    if q is None:
        return None
    return {
        "currentBegan": _time(q.current_began),
        "nextAttempt": _time(q.next_attempt),
        "reason": q.reason,
        "seriesBegan": _time(q.series_began),
        "seriesCount": q.series_count,
        "error": {"code": q.error_code, "message": q.error_message, "tenantActionable": True},
    }


def render_status(run: JobRun, configured: bool) -> dict[str, Any]:
    """The job's ``status`` object."""
    users = sum(1 for e in run.escrow.values() if e.kind == "User" and e.in_scope)
    groups = sum(1 for e in run.escrow.values() if e.kind == "Group" and e.in_scope)
    counts = []
    if run.cycles_completed:
        counts = [
            {"key": f"User to {ENTERPRISE_USER}", "value": users},
            {"key": f"Group to {GROUP_OBJECT}", "value": groups},
        ]
    return {
        "code": run.status_code(configured),
        "countSuccessiveCompleteFailures": run.successive_failures,
        "escrowsPruned": False,
        "lastExecution": _execution(run.last_execution),
        "lastSuccessfulExecution": _execution(run.last_success),
        "lastSuccessfulExecutionWithExports": _execution(run.last_success_with_exports),
        "progress": [],
        "quarantine": _quarantine(run.quarantine),
        "steadyStateFirstAchievedTime": _time(run.steady_first) or _ZERO_TIME,
        "steadyStateLastAchievedTime": _time(run.steady_last) or _ZERO_TIME,
        "synchronizedEntryCountByType": counts,
        "troubleshootingUrl": None,
    }


def render_job(
    job: SynchronizationJob, configured: bool, cycle_seconds: float | None = None
) -> dict[str, Any]:
    """A synchronizationJob as Graph returns it (``configured``: credentials are saved)."""
    run = job.run
    return {
        "id": job.id,
        "templateId": job.template_id,
        "schedule": {
            "expiration": None,
            "interval": interval_text(cycle_seconds),
            "state": run.schedule_state,
        },
        "status": render_status(run, configured),
        "synchronizationJobSettings": [
            {"name": "AzureIngestionAttributeOptimization", "value": "False"},
            {"name": "LookaheadQueryEnabled", "value": "False"},
        ],
    }
