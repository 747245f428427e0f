"""07-verify-provisioning: prove the assigned users and groups arrived in Iru as expected.

The step compares Iru (read over SCIM) with what Entra should have sent. When they already
match, it writes nothing. Otherwise it triggers provisioning, the way an admin would: provision
on demand for a few users (Graph allows 5 requests per 10 s), or restart the job for anything
larger, then waits for the cycle with a bounded timeout, and compares again. Quarantine and
failed provisioning-log entries are turned into remediation sentences.

The comparison is :func:`runbook_lib._reconcile.reconcile`: one read of each side, whatever the
tenant's size. ``plan`` always reads; when it finds nothing to do, ``verify`` reuses that read
instead of reading everything again, and anything ``apply`` writes makes the next read a fresh
one. Each read is kept for the run (:mod:`runbook_lib._snapshot`), so page 08 compares with
it instead of reading again while no cycle has run and no mapping has changed.

While it reads, JupyterLab shows a progress bar over the Graph and SCIM requests; under
papermill or the CLI a large read prints a few lines instead. The table shows every object of
a small tenant; past 50 objects it shows the first 50 differences and counts them by kind,
and past 50 differences the whole list is written to :data:`DIFFERENCES_FILE` in the run
folder (the current folder outside ``runbook run``).
"""

from __future__ import annotations

import csv
import html
import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

from .._checks import Change, CheckResult, Exhibit, Status, _status_cell
from .._diagnose import (
    describe_log_failure,
    entry_level_errors,
    explain,
    explain_job_status,
    split_log_failures,
    transient_failures,
)
from .._exceptions import GraphError, StepError
from .._expectations import ExpectedGroup, ExpectedState, ExpectedUser, ReadProgress
from .._findings import Finding
from .._graph import odata_quote
from .._planned import PlannedState
from .._reconcile import Reconciliation, reconcile
from .._redact import redact
from .._schema import rule_for
from .._snapshot import forget, recall, remember, run_folder, snapshot_key
from .._tenant import require_app, require_job
from ._base import Step
from .mappings_and_scope import schema_path

__all__ = ["VerifyProvisioning", "read_reconciliation", "wait_for_cycle"]

log = logging.getLogger(__name__)

ON_DEMAND_LIMIT = 5
TRANSIENT_ROUNDS = 2
"""How many more cycles page 07 asks for when the objects that still differ failed only
because Iru was busy or unavailable (429, 5xx) during the cycle, before it reports them."""
TABLE_ROWS = 50
"""Rows of the comparison table at most; the rest are counted, not listed."""
DIFFERENCES_FILE = "07-verify-provisioning-differences.csv"
"""Every difference, one row each, when there are more than :data:`TABLE_ROWS`."""
PROGRESS_LINES_FROM = 50
"""A read of at least this many requests prints a line at 25, 50 and 75% and at the end."""
_ON_DEMAND_MEMBERS = 5
HISTORY_TITLE = "Earlier provisioning failures, since dealt with"
"""The exhibit listing provisioning-log failures that no longer stand (history)."""
HISTORY_ROWS = 10
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


def read_reconciliation(
    step: Step,
    sp: dict[str, Any],
    job: dict[str, Any],
    schema: dict[str, Any],
    *,
    reuse: bool = False,
) -> Reconciliation:
    """Entra and Iru compared: the run's last read when ``reuse`` and it still holds, else a
    fresh read (with the runbook's Graph concurrency), which is kept for the run."""
    runbook = step.runbook
    key = snapshot_key(runbook, sp, job, schema)
    if reuse:
        kept = recall(runbook, key)
        if kept is not None:
            log.info("Reusing the comparison %s read %.0f s ago", kept.read_by, kept.age())
            if kept.read_by != step.name:
                step.notes.append(
                    f"Iru and Entra as {kept.read_by} read them earlier in this run: no "
                    "provisioning cycle has run and no mapping has changed since, so they were "
                    "not read again."
                )
            return kept.result
    read_at = time.time()
    result = _read_with_progress(step, sp["id"], schema)
    remember(runbook, key, result, read_at=read_at, read_by=step.name)
    return result


def _read_with_progress(step: Step, sp_id: str, schema: dict[str, Any]) -> Reconciliation:
    """One read, shown as a progress bar (JupyterLab) or, when large, a few lines."""
    runbook = step.runbook
    bar = runbook.progress_bar(total=100, description="Reading Entra and Iru (% of requests)")
    shown = 0
    told: set[int] = set()

    def on_progress(now: ReadProgress) -> None:
        nonlocal shown
        percent = int(100 * now.fraction)
        if percent > shown:
            shown = percent
            bar(percent)
        if now.total < PROGRESS_LINES_FROM:
            return
        for quarter in (25, 50, 75):
            if percent >= quarter and quarter not in told:
                told.add(quarter)
                runbook.progress(
                    f"Reading Entra and Iru: {quarter}% ({now.done:,} of the {now.total:,} "
                    "requests known so far)"
                )

    try:
        result = reconcile(
            runbook.graph,
            runbook.scim,
            sp_id,
            schema,
            concurrency=runbook.settings.graph_concurrency,
            progress=on_progress,
        )
    finally:
        bar(None)
    reads = result.reads
    if reads.total >= PROGRESS_LINES_FROM:
        runbook.progress(
            f"Read Entra ({reads.graph_done:,} Graph requests) and Iru ({reads.scim_done:,} "
            f"SCIM pages) in {result.seconds:.0f} s."
        )
    return result


def write_differences(findings: list[Finding], folder: Path) -> Path:
    """Every finding as a row of :data:`DIFFERENCES_FILE` in ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DIFFERENCES_FILE
    fields = ("kind", "object", "expected", "found", "fix")
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(fields)
        for finding in findings:
            writer.writerow([redact(str(getattr(finding, f))) for f in fields])
    return path


def _subject(finding: Finding) -> tuple[str, str]:
    """``("user", upn)`` or ``("group", name)`` from a finding's object."""
    kind, _, name = finding.object.partition(" ")
    return kind, name


def _object_ids(expected: ExpectedState) -> dict[tuple[str, str], str]:
    """(kind, name) -> Entra object id, for every user and group compared."""
    ids = {("user", u.user_name): u.object_id for u in expected.users}
    ids.update({("group", g.display_name): g.object_id for g in expected.groups})
    return ids


def _problem(finding: Finding) -> str:
    if finding.kind.endswith("_missing"):
        return "not in Iru"
    if finding.kind == "group_members":
        return f"{finding.found} (expected {finding.expected})"
    return f"{finding.found}, expected {finding.expected}"


class VerifyProvisioning(Step):
    """Compare Iru with Entra; trigger a cycle when they differ; report a pass/fail table."""

    name: ClassVar[str] = "07-verify-provisioning"
    title: ClassVar[str] = "Verify provisioning"

    def __init__(
        self,
        runbook: Any,
        *,
        trigger: str = "auto",
        timeout_minutes: float = 10.0,
        write_differences: bool = True,
    ) -> None:
        super().__init__(runbook)
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
        self.trigger = trigger
        self.timeout = timeout_minutes * 60.0
        self.write_differences = write_differences
        """Past :data:`TABLE_ROWS` differences, write them all to :data:`DIFFERENCES_FILE`."""
        self.differences_file: Path | None = None
        """Where :meth:`verify` wrote every difference (None when the table shows them all)."""
        self._snapshot: (
            tuple[dict[str, Any], dict[str, Any], dict[str, Any], Reconciliation] | None
        ) = None
        """The last read of the tenant, reused by ``verify`` while nothing was applied."""

    @property
    def reconciliation(self) -> Reconciliation | None:
        """The last comparison this step read (None before ``plan`` or ``verify``)."""
        return None if self._snapshot is None else self._snapshot[3]

    @property
    def findings(self) -> list[Finding] | None:
        """The differences of :attr:`reconciliation`, for reports (``runbook check``)."""
        result = self.reconciliation
        return None if result is None else list(result.findings)

    def _context(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        job = require_job(graph, sp["id"])
        schema = graph.get(schema_path(sp["id"], job["id"]))
        return sp, job, schema

    def _state(
        self, *, fresh: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Reconciliation]:
        if fresh or self._snapshot is None:
            sp, job, schema = self._context()
            self._snapshot = (sp, job, schema, read_reconciliation(self, sp, job, schema))
        return self._snapshot

    def plan(self) -> list[Change]:
        _sp, job, _schema, result = self._state()
        expected, mismatches = result.expected, result.findings
        if not expected.users and not expected.groups:
            self.notes.append("Nothing is assigned to the app yet: run 06-assign-users-and-groups.")
        unhealthy = explain_job_status(job)
        running = (job.get("schedule") or {}).get("state") == "Active"
        if unhealthy and running and self.trigger in ("auto", "restart"):
            # Quarantined, or the last cycle failed: only a new cycle shows whether the cause
            # (a token, the Tenant URL) has been fixed since, whether or not objects differ.
            # (A paused job stays paused: someone paused it on purpose.)
            return [
                Change(
                    "restart",
                    "provisioning job",
                    f"{unhealthy[0]}; a new cycle shows whether the cause is fixed",
                )
            ]
        if not mismatches or self.trigger == "none":
            return []
        how = self._how(mismatches, expected)
        if how == "wait":
            return [Change("wait", "next provisioning cycle", f"{len(mismatches)} difference(s)")]
        if how == "on_demand":
            # Users first: a group's member links need its users to exist in Iru.
            names = sorted({_subject(m) for m in mismatches}, key=lambda k: (k[0] != "user", k))
            return [Change("provision on demand", f"{k} {n}", "differs in Iru") for k, n in names]
        state = (job.get("schedule") or {}).get("state")
        if state != "Active":
            self.notes.append("Provisioning is not on: run 05-enable-provisioning first.")
        return [Change("restart", "provisioning job", f"{len(mismatches)} difference(s) with Iru")]

    def _how(self, mismatches: list[Finding], expected: ExpectedState) -> str:
        if self.trigger != "auto":
            return self.trigger
        users = {_subject(m)[1] for m in mismatches if _subject(m)[0] == "user"}
        groups = [m for m in mismatches if _subject(m)[0] == "group"]
        # Provisioning a user on demand does not add them to their groups in Iru: a user who
        # is a member of an assigned group needs a cycle, which exports the membership too.
        in_groups = any(users & g.member_user_names for g in expected.groups)
        few = len(users) <= ON_DEMAND_LIMIT
        return "on_demand" if not groups and few and not in_groups else "restart"

    def apply(self, changes: list[Change]) -> list[Change]:
        graph = self.runbook.graph
        snapshot = self._snapshot
        self._snapshot = None  # whatever happens next, verify reads the tenant afresh
        if snapshot is None:
            snapshot = self._state()
            self._snapshot = None
        forget(self.runbook)  # nor may page 08 reuse a read from before these writes
        sp, _job, schema, result = snapshot
        job = require_job(graph, sp["id"])
        base = f"servicePrincipals/{sp['id']}/synchronization/jobs/{job['id']}"
        before = _last_cycle(job)
        applied: list[Change] = []
        on_demand = [c for c in changes if c.action == "provision on demand"]
        if on_demand:
            expected = result.expected
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
        deadline = time.monotonic() + self.timeout
        job = wait_for_cycle(self, sp["id"], job["id"], before, self.timeout)
        for attempt in range(1, TRANSIENT_ROUNDS + 1):
            retry = self._transient_retry(sp, job, deadline)
            if retry is None:
                break
            self.runbook.progress(
                f"{retry} failed in that cycle only because Iru was busy or unavailable; "
                f"Entra holds them for its next cycle. Asking for one now ({attempt} of "
                f"{TRANSIENT_ROUNDS})."
            )
            before = _last_cycle(job)
            # The same restart as above: clearing the watermark makes the cycle evaluate every
            # object again, the ones Entra escrowed included (synchronizationJobRestartCriteria).
            graph.post(
                f"{base}/restart",
                {"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}},
            )
            applied.append(
                Change("restart", "provisioning job", f"again: {retry} failed transiently")
            )
            job = wait_for_cycle(
                self, sp["id"], job["id"], before, max(deadline - time.monotonic(), 0.0)
            )
            self._snapshot = None  # that cycle changed Iru: verify reads it again
        return applied

    def _transient_retry(
        self, sp: dict[str, Any], job: dict[str, Any], deadline: float
    ) -> str | None:
        """What failed transiently, when the objects that still differ after a cycle failed
        only because Iru was busy or unavailable, and there is time for another cycle; else
        None. The comparison read here is kept for :meth:`verify`."""
        if time.monotonic() >= deadline or explain_job_status(job):
            return None
        self._snapshot = None
        _sp, job, _schema, result = self._state()
        if not result.findings:
            return None
        ids = _object_ids(result.expected)
        differing = {ids[_subject(m)] for m in result.findings if _subject(m) in ids}
        try:
            entries = self._recent_log(job)
        except GraphError:
            return None  # verify reports the logs as unreadable
        current, _history = split_log_failures(entries, job, differing)
        counts = transient_failures(current)
        if counts is None:
            return None
        return f"{len(current)} object(s) ({', '.join(f'{n} {c}' for c, n in counts.items())})"

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
        sp, job, _schema, result = self._state(fresh=False)
        expected, mismatches = result.expected, result.findings
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
        by_name: dict[tuple[str, str], list[str]] = {}
        for m in mismatches:
            by_name.setdefault(_subject(m), []).append(_problem(m))
        ids = _object_ids(expected)
        differing = {ids[key] for key in by_name if key in ids}
        log_checks, unresolved = self._log_checks(job, differing, set(ids.values()))
        entry_errors = entry_level_errors(job)
        if entry_errors and (unresolved or mismatches):
            checks.append(
                CheckResult.warned(
                    "Last cycle had no failed objects",
                    entry_errors,
                    "The provisioning log check below names the failing objects and the fix.",
                )
            )
        elif entry_errors:
            checks.append(
                CheckResult.passed(
                    "Objects the last cycle failed on were provisioned since",
                    f"{entry_errors}; none of them differs in Iru now",
                )
            )
        checks += log_checks
        failed = [(kind, name, "; ".join(p)) for (kind, name), p in by_name.items()]
        failed_users = [r for r in failed if r[0] == "user"]
        failed_groups = [r for r in failed if r[0] == "group"]
        self.differences_file = None
        if len(by_name) > TABLE_ROWS and self.write_differences:
            self.differences_file = write_differences(mismatches, run_folder() or Path.cwd())
        self.exhibits = [self._exhibit(expected, by_name, result, self.differences_file)] + [
            e for e in self.exhibits if e.title == HISTORY_TITLE
        ]
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

    def _recent_log(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The job's last 100 provisioning-log entries, newest first."""
        entries = self.runbook.graph.get(
            "auditLogs/provisioning",
            **{
                "$filter": f"jobId eq {odata_quote(job['id'])}",
                "$orderby": "activityDateTime desc",
                "$top": "100",
            },
        )
        return list((entries or {}).get("value", []))

    def _log_checks(
        self, job: dict[str, Any], differing: set[str], compared: set[str]
    ) -> tuple[list[CheckResult], list[dict[str, Any]]]:
        """The provisioning-log check, and the failures that are still current.

        A failure counts when the tenant still shows it (see
        :func:`runbook_lib._diagnose.split_log_failures`); older ones, which a later cycle or
        a later success dealt with, are shown as history with their time, not as a failure.
        """
        self.exhibits = [e for e in self.exhibits if e.title != HISTORY_TITLE]
        title = "No unresolved failures in the provisioning logs"
        try:
            read = self._recent_log(job)
        except GraphError as exc:
            return [
                CheckResult.warned(
                    "Provisioning logs readable",
                    f"HTTP {exc.status}: {exc.graph_message}",
                    exc.remediation
                    if exc.status == 403
                    else "Run this page again; the logs can lag the cycle by a few minutes.",
                )
            ], []
        current, history = split_log_failures(read, job, differing, compared)
        if history:
            self.exhibits.append(self._history(history))
        earlier = (
            f"; {len(history)} earlier failure(s) were dealt with since and are listed under "
            f"'{HISTORY_TITLE}'"
            if history
            else ""
        )
        if not current:
            return [CheckResult.passed(title, f"{len(read)} recent entries read{earlier}")], []
        when, who, _action, error = describe_log_failure(current[0])  # newest first
        info = (current[0].get("provisioningStatusInfo") or {}).get("errorInformation") or {}
        return [
            CheckResult.failed(
                title,
                f"{len(current)} failure(s) still stand; latest for {who} at {when}: "
                f"{error}{earlier}",
                explain(info.get("errorCode", ""), info.get("reason", "")),
                self.name,
            )
        ], current

    @staticmethod
    def _history(history: list[dict[str, Any]]) -> Exhibit:
        """Failures a later cycle or success dealt with, newest first, with their time."""
        rows = [describe_log_failure(e) for e in history[:HISTORY_ROWS]]
        more = len(history) - len(rows)
        text = "\n".join(f"  {w}  {who}  {a}: {err}" for w, who, a, err in rows)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        tail = f"{more} older failure(s) not listed." if more > 0 else ""
        return Exhibit(
            HISTORY_TITLE,
            "<table><thead><tr><th>When</th><th>Object</th><th>Action</th><th>Error</th></tr>"
            f"</thead><tbody>{body}</tbody></table>" + (f"<p>{tail}</p>" if tail else ""),
            text + (f"\n  {tail}" if tail else ""),
        )

    @classmethod
    def _exhibit(
        cls,
        expected: ExpectedState,
        by_name: dict[tuple[str, str], list[str]],
        result: Reconciliation,
        full_list: Path | None = None,
    ) -> Exhibit:
        """Every object for a small tenant; past :data:`TABLE_ROWS`, the differences only,
        counted by kind, with ``full_list`` named when it holds them all."""
        if len(expected.users) + len(expected.groups) <= TABLE_ROWS:
            rows = [
                ("user", u.user_name, "; ".join(by_name.get(("user", u.user_name), [])))
                for u in expected.users
            ] + [
                ("group", g.display_name, "; ".join(by_name.get(("group", g.display_name), [])))
                for g in expected.groups
            ]
            return cls._table(rows)
        rows = [(k, n, "; ".join(p)) for (k, n), p in list(by_name.items())[:TABLE_ROWS]]
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(result.by_kind().items()))
        summary = (
            f"{len(expected.users):,} user(s) and {len(expected.groups):,} group(s) compared; "
            f"{len(by_name):,} differ"
            + (f" ({counts})" if counts else "")
            + (f"; the first {TABLE_ROWS} are listed" if len(by_name) > TABLE_ROWS else "")
            + "."
            + (
                f" All {len(result.findings):,} differences are in {full_list}."
                if full_list is not None
                else ""
            )
        )
        table = cls._table(rows)
        return Exhibit(
            table.title,
            f"<p>{html.escape(summary)}</p>" + (table.html if rows else ""),
            f"  {summary}" + ("\n" + table.text if rows else ""),
        )

    @staticmethod
    def _table(rows: list[tuple[str, str, str]]) -> Exhibit:
        text = "\n".join(
            f"  {'PASS' if not p else 'FAIL'}  {k:<5} {n}" + (f": {p}" if p else "")
            for k, n, p in rows
        )
        body = "".join(
            f"<tr>{_status_cell(Status.PASS if not p else Status.FAIL)}<td>{k}</td>"
            f"<td>{html.escape(n)}</td><td>{html.escape(p)}</td></tr>"
            for k, n, p in rows
        )
        return Exhibit(
            "Iru compared with Entra",
            "<table><thead><tr><th>Status</th><th>Type</th><th>Name</th><th>Difference</th></tr>"
            f"</thead><tbody>{body}</tbody></table>",
            text or "  (nothing in scope)",
        )

    # -- dry run -----------------------------------------------------------------------------
    def plan_fresh(self, state: PlannedState, exc: StepError) -> list[Change]:
        """No app or job yet (02/03 only planned them): Iru cannot be compared with them, so
        everyone page 06 plans to assign is taken as not in Iru yet, and :meth:`plan` decides
        the trigger from that, as it would from a comparison."""
        view = self.planned_view(state, exc)
        job = view.job or state.job_view()
        users = [a for a in state.assigned if a["kind"] == "user"]
        groups = [a for a in state.assigned if a["kind"] == "group"]
        expected = ExpectedState(
            users=[ExpectedUser(u["id"], u["name"], True, None) for u in users],
            groups=[ExpectedGroup(g["id"], g["name"], None, frozenset()) for g in groups],
        )
        fix = "the first provisioning cycle sends it"
        findings = [
            Finding("data", "user_missing", f"user {u['name']}", "in Iru", "not yet", fix)
            for u in users
        ] + [
            Finding("data", "group_missing", f"group {g['name']}", "in Iru", "not yet", fix)
            for g in groups
        ]
        planned = (view.sp, job, view.schema, Reconciliation(expected, findings))
        with self.planned_reads(_state=lambda fresh=True: planned):
            changes = self.plan()
        self.not_read(
            "Iru compared with Entra",
            "the app, its job and its assignments are only planned, so everyone to be assigned "
            "is taken as not in Iru yet; the real run compares them after the first cycle and "
            "triggers only what still differs",
        )
        return changes
