"""09-considerations: sync timing, disable versus delete, Blueprint groups, the free tier.

Mostly explanation, backed by the tenant's own numbers (the job's interval). With
``run_demo=True`` it also *shows* the deprovisioning paths on a test user: disabled in Entra
becomes inactive in Iru; deleted in Entra (soft delete) is inactive too; purged in Entra is
deleted in Iru. The demo really disables and deletes that user, so it runs only when asked,
only on the user named, and only when the permissions for every stage are there (checked
before the first write). Microsoft does not let an app-only sign-in purge a deleted user,
so the purge stage runs only for an admin signed in with the User Administrator role.
"""

from __future__ import annotations

import html
from typing import Any, ClassVar

from .._auth import sign_in_kind
from .._checks import Change, CheckResult, Exhibit
from .._exceptions import GraphNotFound, StepError
from .._granted import GrantedPermissions, read_granted
from .._permissions import PERMISSIONS
from .._planned import PlannedState
from .._tenant import find_user, require_app, require_job
from ._base import Step
from .verify_provisioning import _last_cycle, wait_for_cycle

__all__ = ["Considerations", "interval_minutes"]

_DEMO_PERMISSION = next(p for p in PERMISSIONS if p.name == "User.ReadWrite.All")
# Directory roles that may permanently delete a user (delegated sign-in only).
_PURGE_ROLES = frozenset({"User Administrator", "Global Administrator"})
_EXPECTED = {
    "Assigned and enabled": "active",
    "Disabled in Entra": "inactive",
    "Deleted in Entra (soft delete)": "inactive",
    "Purged in Entra": "not in Iru",
}
# How a check says what Iru should show, and what it showed instead (each said once).
_SHOULD = {"active": "active in Iru", "inactive": "inactive in Iru", "not in Iru": "deleted in Iru"}
_FOUND = {
    "active": "the user is still active in Iru",
    "inactive": "the user is inactive in Iru",
    "not in Iru": "the user is not in Iru",
}


def interval_minutes(interval: str) -> str:
    """'PT40M' -> '40 minutes' (ISO 8601 durations as Graph reports them)."""
    text = interval.removeprefix("PT")
    if text.endswith("M") and text[:-1].isdigit():
        return f"{int(text[:-1])} minutes"
    if text.endswith("H") and text[:-1].isdigit():
        return f"{int(text[:-1])} hours"
    return interval or "unknown"


class Considerations(Step):
    """Explain timing and deprovisioning; optionally demonstrate disable and delete."""

    name: ClassVar[str] = "09-considerations"
    title: ClassVar[str] = "Considerations"

    def __init__(
        self,
        runbook: Any,
        *,
        demo_user: str = "",
        run_demo: bool = False,
        timeout_minutes: float = 10.0,
    ) -> None:
        super().__init__(runbook)
        self.demo_user = demo_user.strip()
        self.run_demo = run_demo
        self.timeout = timeout_minutes * 60.0
        self.observed: list[tuple[str, str, str]] = []
        self.demo_refused = ""
        self._grants: GrantedPermissions | None = None

    def _context(self) -> tuple[dict[str, Any], dict[str, Any]]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        return sp, require_job(graph, sp["id"])

    def _demo_user(self) -> dict[str, Any] | None:
        if not (self.run_demo and self.demo_user):
            return None
        return find_user(self.runbook.graph, self.demo_user, "id,userPrincipalName,accountEnabled")

    def _timing(self, job: dict[str, Any]) -> None:
        interval = interval_minutes((job.get("schedule") or {}).get("interval", ""))
        rows = [
            ("Cycle interval (set by Microsoft)", interval),
            ("Sooner for a few users", "provision on demand (page 07, trigger='on_demand')"),
            (
                "Sooner for everything",
                "pause, then start provisioning (page 08) or restart (page 07)",
            ),
            (
                "Effect on users already in Iru",
                "none: they stay as they are until their data changes",
            ),
        ]
        text = "\n".join(f"  {k:<34} {v}" for k, v in rows)
        body = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows
        )
        self.exhibits.append(Exhibit("Sync timing", f"<table><tbody>{body}</tbody></table>", text))

    def plan(self) -> list[Change]:
        _sp, job = self._context()
        self._timing(job)
        user = self._demo_user()
        if user is None:
            if self.run_demo:
                self.notes.append(
                    f"Demo user '{self.demo_user}' does not exist (any more): nothing to show."
                )
            return []
        upn = user["userPrincipalName"]
        granted = self._granted()
        if granted.source != "none" and not _DEMO_PERMISSION.satisfied_by(set(granted.names)):
            self.demo_refused = (
                f"the demo needs {_DEMO_PERMISSION.name} to disable and delete {upn}, and the "
                "signed-in identity does not hold it; nothing was changed"
            )
            self.notes.append(f"Demo skipped: {self.demo_refused}.")
            return []
        changes = [
            Change("provision", f"user {upn}", "assign, then a cycle, so Iru has it"),
            Change("disable", f"user {upn}", "accountEnabled = false in Entra, then a cycle"),
            Change("delete", f"user {upn}", "soft delete in Entra, then a cycle"),
        ]
        if self._can_purge(granted):
            changes.append(Change("purge", f"user {upn}", "permanent delete, then a cycle"))
        else:
            self.notes.append(
                "The purge stage is left out: Microsoft supports permanently deleting a user "
                "only for a signed-in User Administrator (not app-only sign-in). The deleted "
                "user stays restorable for 30 days; Entra purges it then, and Iru's copy "
                "follows."
            )
        return changes

    def _granted(self) -> GrantedPermissions:
        if self._grants is None:
            self._grants = read_granted(
                self.runbook.graph,
                sign_in_kind(self.runbook.settings),
                self.runbook.settings.client_id,
            )
        return self._grants

    @staticmethod
    def _can_purge(granted: GrantedPermissions) -> bool:
        return granted.kind == "delegated" and bool(granted.roles & _PURGE_ROLES)

    def _iru_state(self, upn: str) -> str:
        user = self.runbook.scim.find_user(upn)
        if user is None:
            return "not in Iru"
        return "active" if user.active else "inactive"

    def _cycle(self, sp_id: str, job_id: str) -> None:
        graph = self.runbook.graph
        base = f"servicePrincipals/{sp_id}/synchronization/jobs/{job_id}"
        before = _last_cycle(graph.get(base))
        graph.post(
            f"{base}/restart", {"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}}
        )
        wait_for_cycle(self, sp_id, job_id, before, self.timeout)

    def _observe(self, sp_id: str, job_id: str, uid: str, upn: str, stage: str, entra: str) -> None:
        """A cycle, then what Iru shows for ``stage``.

        A cycle that another run started can end before this run's change was read, so one
        more cycle when Iru does not show the change yet. When it still does not, and the user
        in Entra is no longer as this demo left it, someone else changed it: that is said
        instead of a failed check.
        """
        self._cycle(sp_id, job_id)
        iru = self._iru_state(upn)
        if iru != _EXPECTED[stage]:
            self._cycle(sp_id, job_id)
            iru = self._iru_state(upn)
        if iru != _EXPECTED[stage]:
            try:
                user = self.runbook.graph.get(f"users/{uid}", **{"$select": "id,accountEnabled"})
                now = "enabled" if user.get("accountEnabled", True) else "disabled"
            except GraphNotFound:
                now = "deleted"
            if now != entra and not (entra == "purged" and now == "deleted"):
                raise self._interrupted(
                    upn, f"it should be {entra} at this stage, Entra shows it {now}"
                )
        self.observed.append((stage, entra, iru))

    def _interrupted(self, upn: str, what: str) -> StepError:
        return StepError(
            f"The demo user {upn} was changed by someone else during the demo ({what}): "
            "perhaps another run of this page is showing the same demo on it at the same time.",
            "Nothing to undo. Let the other run finish; to see the demo here, run this page "
            "again with another test user as demo_user.",
            hint=self.name,
        )

    def apply(self, changes: list[Change]) -> list[Change]:
        graph = self.runbook.graph
        sp, job = self._context()
        user = self._demo_user()
        if user is None:
            return []
        uid, upn = user["id"], user["userPrincipalName"]
        from .assign_users_and_groups import AssignUsersAndGroups

        assign = AssignUsersAndGroups(self.runbook, users=[upn])
        assign.apply(assign.plan())
        ids = (sp["id"], job["id"], uid, upn)
        self._observe(*ids, "Assigned and enabled", "enabled")
        try:
            graph.request("PATCH", f"users/{uid}", json={"accountEnabled": False})
            self._observe(*ids, "Disabled in Entra", "disabled")
            graph.delete(f"users/{uid}")
        except GraphNotFound as exc:
            raise self._interrupted(upn, "someone else deleted it") from exc
        self._observe(*ids, "Deleted in Entra (soft delete)", "deleted")
        if any(c.action == "purge" for c in changes):
            graph.delete(f"directory/deletedItems/{uid}")
            self._observe(*ids, "Purged in Entra", "purged")
        rows = "".join(
            f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td></tr>"
            for a, b, c in self.observed
        )
        self.exhibits.append(
            Exhibit(
                f"Disable versus delete, shown on {upn}",
                f"<table><thead><tr><th>Stage</th><th>Entra</th><th>Iru</th></tr></thead><tbody>{rows}</tbody></table>",
                "\n".join(f"  {a:<30} Entra: {b:<9} Iru: {c}" for a, b, c in self.observed),
            )
        )
        return list(changes)

    def verify(self) -> list[CheckResult]:
        _sp, job = self._context()
        if not self.exhibits:
            self._timing(job)
        timing = CheckResult.passed(
            "Sync timing read from the job",
            interval_minutes((job.get("schedule") or {}).get("interval", "")),
        )
        if self.demo_refused:
            return [
                timing,
                CheckResult.warned(
                    "Disable/delete demo",
                    self.demo_refused,
                    "Grant the permission (see 01-connect) or run the demo in the sandbox.",
                ),
            ]
        if not self.observed:
            return [timing]
        checks = []
        for stage, _entra, iru in self.observed:
            title = f"{stage}: {_SHOULD[_EXPECTED[stage]]}"
            if iru == _EXPECTED[stage]:
                checks.append(CheckResult.passed(title, "read from Iru after the cycle"))
            else:
                checks.append(
                    CheckResult.failed(
                        title,
                        f"after the cycle, {_FOUND.get(iru, iru)}",
                        "Read 07-verify-provisioning's log failures for this user.",
                        "07-verify-provisioning",
                    )
                )
        return checks

    # -- dry run -----------------------------------------------------------------------------
    def plan_fresh(self, state: PlannedState, exc: StepError) -> list[Change]:
        """No app or job yet: the timing shows a new job's interval, and the demo is planned
        as usual (the demo user and the permissions can be read already)."""
        view = self.planned_view(state, exc)
        planned = (view.sp, view.job or state.job_view())
        with self.planned_reads(_context=lambda: planned):
            changes = self.plan()
        self.not_read(
            "the job's sync interval",
            "the job does not exist yet; the interval Entra gives a new job is shown",
        )
        return changes
