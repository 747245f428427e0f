"""The :class:`~._sandbox.Sandbox` methods for assignments, jobs, cycles and logs.

Tests and rehearsals read what Entra would show in the portal (assignments, job
status, provisioning logs) and control time: :meth:`fast_forward` is "wait 40
minutes" without the wait, :meth:`run_cycle` is "the next cycle, now", and
:meth:`wait_idle` waits for the background worker to finish what ``start`` began.
"""

from __future__ import annotations

from typing import Any

from .graph._assignments import render_assignment
from .provisioning._jobs import SynchronizationJob, render_status
from .provisioning._provisioning_log import render_entry
from .provisioning.engine._engine import CycleReport
from .provisioning.engine._worker import ProvisioningWorker
from .tenant._state import ServicePrincipal, TenantState

__all__ = ["ProvisioningHandle"]


class ProvisioningHandle:
    """Provisioning inspection and control (mixed into :class:`~._sandbox.Sandbox`)."""

    state: TenantState
    worker: ProvisioningWorker | None

    def _worker(self) -> ProvisioningWorker:
        if self.worker is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self.worker

    def _service_principal(self, sp_id: str) -> ServicePrincipal:
        sp = self.state.get_service_principal(sp_id)
        if sp is None:
            raise KeyError(f"no service principal with id {sp_id!r}")
        return sp

    def _scim_job(self, sp_id: str) -> SynchronizationJob:
        sp = self._service_principal(sp_id)
        with self.state.lock:
            if not sp.jobs:
                raise KeyError(f"service principal {sp_id!r} has no provisioning job")
            return next(iter(sp.jobs.values()))

    def assignments(self, sp_id: str) -> list[dict[str, Any]]:
        """The app role assignments of a service principal (no replication delay)."""
        sp = self._service_principal(sp_id)
        with self.state.lock:
            return [render_assignment(a, sp.display_name) for a in sp.assignments.values()]

    def job_status(self, sp_id: str) -> dict[str, Any]:
        """The ``status`` object of the service principal's job, plus its schedule state."""
        sp = self._service_principal(sp_id)
        job = self._scim_job(sp_id)
        with self.state.lock:
            status = render_status(job.run, sp.credentials_saved)
            status["scheduleState"] = job.run.schedule_state
            return status

    def schema(self, sp_id: str) -> dict[str, Any]:
        """The job's saved synchronization schema document (a copy)."""
        import copy

        job = self._scim_job(sp_id)
        with self.state.lock:
            return copy.deepcopy(job.run.schema)

    def provisioning_logs(self, sp_id: str | None = None) -> list[dict[str, Any]]:
        """Provisioning log entries (Graph JSON), oldest first; optionally for one app."""
        tenant_id = self.state.tenant_id
        return [
            render_entry(entry, tenant_id)
            for entry in self.state.provisioning_log.entries()
            if sp_id is None or entry.sp_id == sp_id
        ]

    def fast_forward(self, seconds: float) -> list[CycleReport]:
        """Advance simulated time by ``seconds`` and run the cycles that fell due."""
        return self._worker().fast_forward(seconds)

    def run_cycle(self, sp_id: str | None = None) -> list[CycleReport]:
        """Run a cycle now: for ``sp_id``'s job, or for every started job."""
        if sp_id is not None:
            self._service_principal(sp_id)
            report = self._worker().run_now(sp_id)
            return [report] if report is not None else []
        reports: list[CycleReport] = []
        with self.state.lock:
            started = [
                sp.object_id
                for sp in self.state.service_principals.values()
                if any(job.run.schedule_state == "Active" for job in sp.jobs.values())
            ]
        for started_id in started:
            report = self._worker().run_now(started_id)
            if report is not None:
                reports.append(report)
        return reports

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait for pending and running cycles to finish; False on timeout."""
        return self._worker().wait_idle(timeout)
