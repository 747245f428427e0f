"""05-enable-provisioning: Provisioning Status On (the job started), and its status shown.

Starting is the only write; a started job keeps its schedule, so the step does nothing when the
job is already active. Starting also lifts a quarantine, so the status shown afterwards is
checked for a quarantine that came back.
"""

from __future__ import annotations

import html
from typing import Any, ClassVar

from .._checks import Change, CheckResult, Exhibit
from .._diagnose import explain_job_status
from .._exceptions import StepError
from .._planned import PlannedState
from .._tenant import require_app, require_job
from ._base import Step

__all__ = ["EnableProvisioning", "status_exhibit"]


def status_exhibit(job: dict[str, Any]) -> Exhibit:
    """The job's status as the portal's provisioning overview shows it."""
    status = job.get("status") or {}
    schedule = job.get("schedule") or {}
    last = status.get("lastExecution") or {}
    rows = [
        ("Status", status.get("code", "")),
        ("Schedule", schedule.get("state", "")),
        ("Interval", schedule.get("interval", "")),
        ("Last cycle", last.get("state", "not run yet")),
        ("Last cycle ended", last.get("timeEnded") or ""),
        ("Objects exported in last cycle", last.get("countExported", "")),
    ]
    text = "\n".join(f"  {k:<32} {v}" for k, v in rows)
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return Exhibit("Provisioning status", f"<table><tbody>{body}</tbody></table>", text)


class EnableProvisioning(Step):
    """Start the provisioning job unless it is already running."""

    name: ClassVar[str] = "05-enable-provisioning"
    title: ClassVar[str] = "Turn provisioning on"

    def _job(self) -> tuple[str, dict[str, Any]]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        return sp["id"], require_job(graph, sp["id"])

    def plan(self) -> list[Change]:
        _sp_id, job = self._job()
        self.exhibits = [status_exhibit(job)]
        state = (job.get("schedule") or {}).get("state")
        quarantined = (job.get("status") or {}).get("code") == "Quarantine"
        if state != "Active":
            return [Change("start", "provisioning job", f"schedule is {state or 'Disabled'}")]
        if quarantined:
            return [Change("start", "provisioning job", "lifts the quarantine")]
        return []

    def apply(self, changes: list[Change]) -> list[Change]:
        sp_id, job = self._job()
        self.runbook.graph.post(f"servicePrincipals/{sp_id}/synchronization/jobs/{job['id']}/start")
        self.started = True
        return list(changes)

    def verify(self) -> list[CheckResult]:
        _sp_id, job = self._job()
        self.exhibits = [status_exhibit(job)]
        state = (job.get("schedule") or {}).get("state")
        checks = []
        if state == "Active":
            checks.append(
                CheckResult.passed(
                    "Provisioning is on",
                    f"runs every {(job.get('schedule') or {}).get('interval', 'PT40M')}",
                )
            )
        else:
            checks.append(
                CheckResult.failed(
                    "Provisioning is on", f"schedule is {state}", "Run this step again.", self.name
                )
            )
        problem = explain_job_status(job)
        code = (job.get("status") or {}).get("code")
        if problem and getattr(self, "started", False) and code != "Quarantine":
            # Just started (which lifts a quarantine): the failure shown is the last cycle
            # *before* the start; only the next cycle says whether its cause is fixed.
            checks.append(
                CheckResult.warned(
                    "Job is healthy",
                    f"started now; before that, {problem[0]}",
                    "Run 07-verify-provisioning: it runs a new cycle and shows whether the "
                    "cause is fixed.",
                )
            )
        elif problem:
            checks.append(
                CheckResult.failed(
                    "Job is healthy", problem[0], problem[1], "07-verify-provisioning"
                )
            )
        else:
            checks.append(
                CheckResult.passed("Job is healthy", (job.get("status") or {}).get("code", ""))
            )
        return checks

    # -- dry run -----------------------------------------------------------------------------
    def plan_fresh(self, state: PlannedState, exc: StepError) -> list[Change]:
        """No job yet (03 only planned it): a new job is created stopped, so it is started."""
        view = self.planned_view(state, exc)
        job = view.job or state.job_view()
        with self.planned_reads(_job=lambda: (view.sp["id"], job)):
            changes = self.plan()
        self.not_read(
            "the provisioning job's status",
            "the job does not exist yet; a new job is created with provisioning off",
        )
        return changes

    def planned_effects(self, planned: list[Change]) -> dict[str, Any]:
        return {"schedule": "Active"} if any(c.action == "start" for c in planned) else {}
