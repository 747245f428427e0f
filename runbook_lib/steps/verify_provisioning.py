"""07-verify-provisioning: prove the assigned users and groups arrived in Iru as expected.

The step compares Iru (read over SCIM) with what Entra should have sent. When they already
match, it writes nothing. Otherwise it triggers provisioning, the way an admin would: provision
on demand for a few users (Graph allows 5 requests per 10 s), or restart the job for anything
larger, then waits for the cycle with a bounded timeout, and compares again. Quarantine and
failed provisioning-log entries are turned into remediation sentences.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any, ClassVar

from .._checks import Change, CheckResult, Exhibit
from .._diagnose import entry_level_errors, explain, explain_job_status
from .._exceptions import GraphError, StepError
from .._expectations import ExpectedState, Mismatch, compare, expected_state
from .._graph import odata_quote
from .._schema import rule_for
from .._tenant import require_app, require_job
from ._base import Step
from .mappings_and_scope import schema_path

__all__ = ["VerifyProvisioning", "wait_for_cycle"]

ON_DEMAND_LIMIT = 5
_ON_DEMAND_MEMBERS = 5
TRIGGERS = ("auto", "on_demand", "restart", "wait", "none")


def _last_cycle(job: dict[str, Any]) -> tuple[Any, Any]:
    last = (job.get("status") or {}).get("lastExecution") or {}
    return last.get("activityIdentifier"), last.get("timeEnded")


def wait_for_cycle(
    step: Step, sp_id: str, job_id: str, before: tuple[Any, Any], timeout: float
) -> dict[str, Any]:
    """Poll the job until a cycle newer than ``before`` has ended, or ``timeout`` seconds pass."""
    graph = step.runbook.graph
    path = f"servicePrincipals/{sp_id}/synchronization/jobs/{job_id}"
    deadline = time.monotonic() + timeout
    bar = step.runbook.progress_bar(total=timeout, description="Waiting for the provisioning cycle")
    started = time.monotonic()
    try:
        while True:
            job: dict[str, Any] = graph.get(path)
            current = _last_cycle(job)
            if current != before and current[1]:
                step.runbook.progress("The provisioning cycle finished.")
                return job
            if (job.get("status") or {}).get("code") == "Quarantine":
                step.runbook.progress("The job went into quarantine.")
                return job
            if time.monotonic() >= deadline:
                step.runbook.progress(f"No cycle finished within {timeout:.0f} s.")
                return job
            time.sleep(graph.poll_interval)
            bar(time.monotonic() - started)
    finally:
        bar(None)


class VerifyProvisioning(Step):
    """Compare Iru with Entra; trigger a cycle when they differ; report a pass/fail table."""

    name: ClassVar[str] = "07-verify-provisioning"
    title: ClassVar[str] = "Verify provisioning"

    def __init__(
        self, runbook: Any, *, trigger: str = "auto", timeout_minutes: float = 10.0
    ) -> None:
        super().__init__(runbook)
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
        self.trigger = trigger
        self.timeout = timeout_minutes * 60.0

    def _context(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        job = require_job(graph, sp["id"])
        schema = graph.get(schema_path(sp["id"], job["id"]))
        return sp, job, schema

    def _state(
        self,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], ExpectedState, list[Mismatch]]:
        sp, job, schema = self._context()
        expected = expected_state(self.runbook.graph, sp["id"], schema)
        return sp, job, schema, expected, compare(expected, self.runbook.scim)

    def plan(self) -> list[Change]:
        _sp, job, _schema, expected, mismatches = self._state()
        if not expected.users and not expected.groups:
            self.notes.append("Nothing is assigned to the app yet: run 06-assign-users-and-groups.")
        if not mismatches or self.trigger == "none":
            return []
        how = self._how(mismatches)
        if how == "wait":
            return [Change("wait", "next provisioning cycle", f"{len(mismatches)} difference(s)")]
        if how == "on_demand":
            # Users first: a group's member links need its users to exist in Iru.
            names = sorted(
                {(m.kind, m.name) for m in mismatches}, key=lambda k: (k[0] != "user", k)
            )
            return [Change("provision on demand", f"{k} {n}", "differs in Iru") for k, n in names]
        state = (job.get("schedule") or {}).get("state")
        if state != "Active":
            self.notes.append("Provisioning is not on: run 05-enable-provisioning first.")
        return [Change("restart", "provisioning job", f"{len(mismatches)} difference(s) with Iru")]

    def _how(self, mismatches: list[Mismatch]) -> str:
        if self.trigger != "auto":
            return self.trigger
        users = {m.name for m in mismatches if m.kind == "user"}
        groups = [m for m in mismatches if m.kind == "group"]
        return "on_demand" if not groups and len(users) <= ON_DEMAND_LIMIT else "restart"

    def apply(self, changes: list[Change]) -> list[Change]:
        graph = self.runbook.graph
        sp, job, schema = self._context()
        base = f"servicePrincipals/{sp['id']}/synchronization/jobs/{job['id']}"
        before = _last_cycle(job)
        applied: list[Change] = []
        on_demand = [c for c in changes if c.action == "provision on demand"]
        if on_demand:
            expected = expected_state(graph, sp["id"], schema)
            for change in on_demand[:ON_DEMAND_LIMIT]:
                body = self._on_demand_body(schema, expected, change.target)
                answer = graph.post(f"{base}/provisionOnDemand", body)
                applied.append(
                    Change("provision on demand", change.target, self._on_demand_result(answer))
                )
            return applied  # provision on demand is synchronous: no cycle to wait for
        if any(c.action == "restart" for c in changes):
            graph.post(
                f"{base}/restart",
                {"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}},
            )
            applied.append(Change("restart", "provisioning job", "a new cycle was requested"))
        wait_for_cycle(self, sp["id"], job["id"], before, self.timeout)
        return applied

    def _on_demand_body(
        self, schema: dict[str, Any], expected: ExpectedState, target: str
    ) -> dict[str, Any]:
        """The provisionOnDemand parameters for ``user <upn>`` or ``group <name>``.

        The rule is the one whose object mappings carry that kind of object, not simply the
        first. A group goes with up to five of its expected members as ``links.members``
        (Graph's limit); the rest arrive with the next cycle.
        """
        kind, _, name = target.partition(" ")
        users = {u.user_name.lower(): u for u in expected.users}
        if kind == "user":
            wanted = users.get(name.lower())
            if wanted is None:
                raise StepError(
                    f"User {name} is no longer in scope, so it cannot be provisioned on demand.",
                    "Run this page again: the comparison is read afresh.",
                    hint=self.name,
                )
            subject: dict[str, Any] = {"objectId": wanted.object_id, "objectTypeName": "User"}
            return {"parameters": [{"ruleId": rule_for(schema, "User"), "subjects": [subject]}]}
        group = next((g for g in expected.groups if g.display_name == name), None)
        if group is None:
            raise StepError(
                f"Group {name} is no longer assigned, so it cannot be provisioned on demand.",
                "Run this page again: the comparison is read afresh.",
                hint=self.name,
            )
        members = [users[m].object_id for m in sorted(group.member_user_names) if m in users]
        if len(members) > _ON_DEMAND_MEMBERS:
            self.notes.append(
                f"Group {name} has {len(members)} members; provision on demand sends at most "
                f"{_ON_DEMAND_MEMBERS} with it, the next cycle sends the rest (or use "
                "trigger='restart')."
            )
        subject = {
            "objectId": group.object_id,
            "objectTypeName": "Group",
            "links": {
                "members": [
                    {"objectId": m, "objectTypeName": "User"} for m in members[:_ON_DEMAND_MEMBERS]
                ]
            },
        }
        return {"parameters": [{"ruleId": rule_for(schema, "Group"), "subjects": [subject]}]}

    @staticmethod
    def _on_demand_result(answer: dict[str, Any] | None) -> str:
        """Graph returns the result as JSON inside a string; pull out the status."""
        try:
            key = json.loads((answer or {}).get("key", "{}"))
            value = json.loads((answer or {}).get("value", "{}") or "{}")
        except (TypeError, ValueError):
            return "result not readable"
        result = key.get("result") or (value.get("statusInfo") or {}).get("status") or "unknown"
        action = value.get("action")
        return f"{result}" + (f" ({action})" if action else "")

    def verify(self) -> list[CheckResult]:
        sp, job, _schema, expected, mismatches = self._state()
        checks: list[CheckResult] = []
        problem = explain_job_status(job)
        if problem:
            checks.append(
                CheckResult.failed("Provisioning job is healthy", problem[0], problem[1], self.name)
            )
        else:
            checks.append(
                CheckResult.passed(
                    "Provisioning job is healthy", (job.get("status") or {}).get("code", "")
                )
            )
        entry_errors = entry_level_errors(job)
        if entry_errors:
            checks.append(
                CheckResult.warned(
                    "Last cycle had no failed objects",
                    entry_errors,
                    "The provisioning log check below names the failing objects and the fix.",
                )
            )
        checks += self._log_checks(sp["id"], job["id"])
        by_name: dict[tuple[str, str], list[str]] = {}
        for m in mismatches:
            by_name.setdefault((m.kind, m.name), []).append(m.problem)
        rows: list[tuple[str, str, str]] = []
        for user in expected.users:
            issues = by_name.get(("user", user.user_name), [])
            rows.append(("user", user.user_name, "; ".join(issues)))
        for group in expected.groups:
            issues = by_name.get(("group", group.display_name), [])
            rows.append(("group", group.display_name, "; ".join(issues)))
        self.exhibits = [self._table(rows)]
        failed_users = [r for r in rows if r[0] == "user" and r[2]]
        failed_groups = [r for r in rows if r[0] == "group" and r[2]]
        fix = "Read the provisioning log failures above; once fixed, run this page again to trigger a new cycle."
        if failed_users:
            checks.append(
                CheckResult.failed(
                    "Every in-scope user is in Iru as expected",
                    f"{len(failed_users)} of {len(expected.users)} differ: "
                    + "; ".join(f"{n} ({p})" for _k, n, p in failed_users[:5]),
                    fix,
                    self.name,
                )
            )
        else:
            checks.append(
                CheckResult.passed(
                    "Every in-scope user is in Iru as expected",
                    f"{len(expected.users)} user(s): userName, active and externalId match",
                )
            )
        if expected.groups_enabled:
            if failed_groups:
                checks.append(
                    CheckResult.failed(
                        "Every assigned group is in Iru with exactly its direct members",
                        "; ".join(f"{n} ({p})" for _k, n, p in failed_groups[:5]),
                        fix,
                        self.name,
                    )
                )
            else:
                checks.append(
                    CheckResult.passed(
                        "Every assigned group is in Iru with exactly its direct members",
                        f"{len(expected.groups)} group(s)",
                    )
                )
        else:
            checks.append(
                CheckResult.warned(
                    "Groups are provisioned",
                    "the Group object mapping is disabled",
                    "Enable it with 04-mappings-and-scope.",
                )
            )
        return checks

    def _log_checks(self, sp_id: str, job_id: str) -> list[CheckResult]:
        try:
            entries = self.runbook.graph.get(
                "auditLogs/provisioning",
                **{
                    "$filter": f"jobId eq {odata_quote(job_id)}",
                    "$orderby": "activityDateTime desc",
                    "$top": "100",
                },
            )
        except GraphError as exc:
            return [
                CheckResult.warned(
                    "Provisioning logs readable",
                    f"HTTP {exc.status}: {exc.graph_message}",
                    exc.remediation
                    if exc.status == 403
                    else "Run this page again; the logs can lag the cycle by a few minutes.",
                )
            ]
        failures = [
            e
            for e in (entries or {}).get("value", [])
            if ((e.get("provisioningStatusInfo") or {}).get("status") == "failure")
        ]
        if not failures:
            return [
                CheckResult.passed(
                    "No failures in the recent provisioning logs",
                    f"{len((entries or {}).get('value', []))} recent entries read",
                )
            ]
        latest = failures[0]  # newest first ($orderby activityDateTime desc)
        info = (latest.get("provisioningStatusInfo") or {}).get("errorInformation") or {}
        who = (latest.get("sourceIdentity") or {}).get("displayName") or "an object"
        return [
            CheckResult.failed(
                "No failures in the recent provisioning logs",
                f"{len(failures)} failure(s); latest for {who}: {info.get('errorCode', '')} {info.get('reason', '')}".strip(),
                explain(info.get("errorCode", ""), info.get("reason", "")),
                self.name,
            )
        ]

    @staticmethod
    def _table(rows: list[tuple[str, str, str]]) -> Exhibit:
        text = "\n".join(
            f"  {'PASS' if not p else 'FAIL'}  {k:<5} {n}" + (f": {p}" if p else "")
            for k, n, p in rows
        )
        body = "".join(
            f"<tr><td>{'✅' if not p else '❌'}</td><td>{k}</td><td>{html.escape(n)}</td><td>{html.escape(p)}</td></tr>"
            for k, n, p in rows
        )
        return Exhibit(
            "Iru compared with Entra",
            f"<table><thead><tr><th></th><th>Type</th><th>Name</th><th>Difference</th></tr></thead><tbody>{body}</tbody></table>",
            text or "  (nothing in scope)",
        )
