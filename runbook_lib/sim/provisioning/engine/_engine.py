"""The provisioning engine: runs a job's cycle against its SCIM endpoint like Entra does.

A cycle takes a :class:`~._plan.Plan` (made under the tenant lock), then works
through it over HTTPS with :class:`~._scim_target.ScimTarget`:

1. users in scope: link (escrow lookup, else ``GET /Users?filter=<matching> eq "..."``),
   create with POST when no match, otherwise PATCH only the attributes that differ
   from what the target was last known to hold;
2. groups in scope: the same with ``displayName``, created *without* members, then
   ``PATCH`` ``Add``/``Remove`` of members that are provisioned users;
3. users that left scope: PATCH ``active`` to false (DELETE only when they were
   hard-deleted while still managed); groups that left scope: DELETE.

Each object's outcome is one provisioning log entry. A failure is per object: it is
escrowed and retried next cycle. A 401/403, a 404 on a collection or an unreachable
endpoint stops the cycle and quarantines the job (EncounteredQuarantineException);
a cycle where most objects fail quarantines it too (EncounteredEscrowProportionThreshold);
:mod:`._quarantine` has the thresholds and the back-off.
An incremental cycle with no directory changes sends no request at all.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ...tenant._state import ServicePrincipal, TenantState
from .._jobs import Execution, SynchronizationJob
from .._provisioning_log import LogEntry, ProvisioningLog, Step
from ._export import Cycle
from ._plan import Plan, make_plan
from ._probe import entra_issued_token
from ._quarantine import mostly_failing_cycle, quarantine
from ._scim_target import ScimTarget, TargetUnavailable

__all__ = ["DEFAULT_INTERVAL", "CycleReport", "Engine", "OnDemandResult"]

DEFAULT_INTERVAL = 40 * 60.0


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle did (returned by ``run_cycle`` and ``fast_forward``)."""

    sp_id: str
    job_id: str
    full: bool
    state: str
    planned: int
    exported: int
    failed: int
    requests: int
    quarantined: bool
    error_code: str | None
    seconds: float


@dataclass(frozen=True, slots=True)
class OnDemandResult:
    """The outcome of provisionOnDemand for one subject."""

    result: str
    details: dict[str, Any]
    entry: LogEntry | None


class _Cancelled(Exception):
    """The sandbox is stopping; the running cycle ends early."""


class Engine:
    """Runs cycles and on-demand provisioning for every job of the tenant."""

    def __init__(self, state: TenantState, log: ProvisioningLog, verify: ssl.SSLContext) -> None:
        self.state = state
        self.log = log
        self.verify = verify
        # Set when the sandbox stops: a running cycle ends after its current object.
        self.cancelled = threading.Event()

    def _job(self, sp_id: str) -> tuple[ServicePrincipal, SynchronizationJob] | None:
        sp = self.state.service_principals.get(sp_id)
        if sp is None or not sp.jobs:
            return None
        return sp, next(iter(sp.jobs.values()))

    def _target(self, sp: ServicePrincipal) -> ScimTarget:
        token = sp.secrets.get("SecretToken") or entra_issued_token(self.state.tenant_id)
        return ScimTarget(sp.secrets["BaseAddress"], token, self.verify)

    def run_cycle(self, sp_id: str) -> CycleReport | None:
        """Run one cycle of ``sp_id``'s job now (None: no job, or no credentials saved)."""
        state = self.state
        clock_started = time.perf_counter()
        with state.lock:
            found = self._job(sp_id)
            if found is None or "BaseAddress" not in found[0].secrets:
                return None
            sp, job = found
            run = job.run
            run.running = True
            run.kicked = False
            plan = make_plan(state.directory, sp, run, dict(sp.secrets))
            cycle_id = state.ids.uuid("cycles")
            began = state.clock.now()
            target = self._target(sp)
        cycle = Cycle(
            state,
            self.log,
            sp,
            job,
            plan,
            target,
            cycle_id,
            flagged=target.flagged,
            on_demand=False,
        )
        fatal: TargetUnavailable | None = None
        try:
            self._work(cycle, plan)
        except TargetUnavailable as error:
            fatal = error
        except _Cancelled:
            fatal = TargetUnavailable("Cancelled", "The sandbox stopped during the cycle.")
        finally:
            target.close()
            with state.lock:
                report = self._finish(sp, job, plan, cycle, fatal, began, clock_started)
        return report

    def _work(self, cycle: Cycle, plan: Plan) -> None:
        steps: list[Callable[[], None]] = [
            *(partial(cycle.export, work) for work in plan.users),
            *(partial(cycle.export, work) for work in plan.groups),
            *(partial(cycle.leave, work) for work in plan.leaving_users),
            *(partial(cycle.leave, work) for work in plan.leaving_groups),
        ]
        for step in steps:
            if self.cancelled.is_set():
                raise _Cancelled
            step()

    def _finish(
        self,
        sp: ServicePrincipal,
        job: SynchronizationJob,
        plan: Plan,
        cycle: Cycle,
        fatal: TargetUnavailable | None,
        began: float,
        clock_started: float,
    ) -> CycleReport:
        state = self.state
        run = job.run
        now = state.clock.now()
        attempted = cycle.exported + cycle.failed
        mostly_failing = mostly_failing_cycle(cycle.failed, attempted)
        execution = Execution(
            activity_id=cycle.cycle_id,
            began=began,
            ended=now,
            state="Succeeded",
            entitled=plan.entitled,
            exported=cycle.exported,
            escrowed=cycle.failed,
            imported=len(plan.users) + len(plan.groups),
        )
        if fatal is not None and fatal.code == "Cancelled":
            execution.state = "Failed"
            execution.error_code, execution.error_message = fatal.code, fatal.message
        elif fatal is not None:
            execution.state = "Failed"
            execution.error_code, execution.error_message = fatal.code, fatal.message
            quarantine(run, "EncounteredQuarantineException", fatal.code, fatal.message, now)
        elif mostly_failing:
            code, _ = cycle.codes.most_common(1)[0]
            message = (
                f"{cycle.failed} of {attempted} objects failed to export in this cycle "
                f"(most often: {code}). The job is quarantined until the errors are fixed."
            )
            execution.state = "Failed"
            execution.error_code, execution.error_message = code, message
            quarantine(run, "EncounteredEscrowProportionThreshold", code, message, now)
        else:
            execution.state = "EntryLevelErrors" if cycle.failed else "Succeeded"
            run.quarantine = None
            run.successive_failures = 0
            run.last_success = execution
            if cycle.exported:
                run.last_success_with_exports = execution
            if not cycle.failed:
                run.steady_first = run.steady_first or now
                run.steady_last = now
        if fatal is None:
            run.watermark = plan.watermark
            run.full_pending = False
            run.sync_all_seen = plan.sync_all
        run.last_execution = execution
        run.cycles_completed += 1
        run.running = False
        interval = state.cycle_seconds or DEFAULT_INTERVAL
        run.next_run = run.quarantine.next_attempt if run.quarantine else now + interval
        return CycleReport(
            sp_id=sp.object_id,
            job_id=job.id,
            full=plan.full,
            state=execution.state,
            planned=len(plan.users) + len(plan.groups) + len(plan.leaving_users),
            exported=cycle.exported,
            failed=cycle.failed,
            requests=cycle.target.requests,
            quarantined=run.quarantine is not None,
            error_code=execution.error_code,
            seconds=round(time.perf_counter() - clock_started, 3),
        )

    def provision_on_demand(
        self, sp: ServicePrincipal, job: SynchronizationJob, subject_id: str, members: list[str]
    ) -> OnDemandResult:
        """Provision one user, or one group with the listed members, right now."""
        state = self.state
        started = time.perf_counter()
        with state.lock:
            run = job.run
            only = {subject_id, *members}
            plan = make_plan(state.directory, sp, run, dict(sp.secrets), only=only)
            plan.full = False
            for group_work in plan.groups:
                group_work.members = [m for m in group_work.members if m in members]
            cycle_id = state.ids.uuid("cycles")
            target = self._target(sp)
            kind = "User" if subject_id in state.directory.users else "Group"
            name = (
                state.directory.users[subject_id].user_principal_name
                if kind == "User"
                else state.directory.groups[subject_id].display_name
            )
        cycle = Cycle(
            state, self.log, sp, job, plan, target, cycle_id, flagged=False, on_demand=True
        )
        try:
            for user_work in plan.users:
                cycle.export(user_work, log_noop=user_work.id == subject_id)
            for group_work in plan.groups:
                cycle.export(group_work, remove_members=False)
            for leave in plan.leaving_users + plan.leaving_groups:
                cycle.leave(leave)
        except TargetUnavailable:
            pass
        finally:
            target.close()
        subject_entries = [e for e in cycle.entries if e.source_id == subject_id]
        if not subject_entries:
            entry = cycle.record(
                kind=kind,
                source_id=subject_id,
                source_name=name,
                action="other",
                status="skipped",
                steps=[
                    Step(
                        "EntrySynchronizationScoping",
                        "scoping",
                        "skipped",
                        f"{kind} '{name}' is not in scope: it is not assigned to the application "
                        "(directly or through a direct group membership), or a scoping filter "
                        "excludes it.",
                        (("IsEffectivelyEntitledForProvisioning", "False"),),
                    )
                ],
                started=started,
            )
            details = {
                "errorCode": "NotEffectivelyEntitled",
                "errorMessage": f"The {kind.lower()} is not assigned to the application.",
            }
            return OnDemandResult("Skipped", details, entry)
        entry = subject_entries[-1]
        if entry.status == "failure":
            failure: dict[str, Any] = {
                "errorCode": entry.error_code,
                "errorMessage": entry.error_reason,
            }
            return OnDemandResult("Failure", failure, entry)
        if entry.status == "skipped":
            details = {
                "errorCode": "RedundantExport",
                "errorMessage": "The state of the user in both the source and target systems "
                "already match.",
            }
            return OnDemandResult("Skipped", details, entry)
        return OnDemandResult("Success", {}, entry)
