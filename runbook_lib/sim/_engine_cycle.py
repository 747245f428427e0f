"""One provisioning cycle's object-by-object work: link, create, update, disable, delete.

:class:`Cycle` gets a plan and a :class:`~._scim_target.ScimTarget` and turns each
planned object into the requests Entra sends, updates the job's escrow (links and
last-exported values) as each request succeeds, and writes one provisioning log entry
per outcome. Object failures are recorded here and raised no further; a
:class:`~._scim_target.TargetUnavailable` is logged and re-raised so the engine can
stop the cycle and quarantine the job.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from ._engine_plan import GroupWork, LeaveWork, Plan, UserWork
from ._jobs import EscrowEntry, JobRun
from ._provisioning_log import LogEntry, ProvisioningLog, Step
from ._schema import ENTERPRISE_USER, GROUP_OBJECT, ObjectRule
from ._scim_payload import Change, group_body, member_ops, patch_ops, read_value, user_body
from ._scim_target import ObjectFailure, ScimTarget, TargetUnavailable
from ._state import ServicePrincipal, SynchronizationJob, TenantState

__all__ = ["CODE_GONE", "TARGET_SYSTEM", "Cycle"]

TARGET_SYSTEM = "customappsso"
CODE_GONE = "SystemForCrossDomainIdentityManagementEntryNotFound"


def _duplicate(kind: str, matching: tuple[str, str | None]) -> ObjectFailure:
    attribute, value = matching
    return ObjectFailure(
        "DuplicateSourceEntries",
        f"More than one {kind} in scope has {attribute} '{value}', the matching attribute, so "
        "the provisioning service cannot tell which one the target object belongs to. Make "
        "the value unique or take one of them out of scope.",
    )


def _noun(kind: str) -> str:
    return "User" if kind == "User" else "Group"


class Cycle:
    """One run of a plan: the HTTP work, escrow updates and log entries."""

    def __init__(
        self,
        state: TenantState,
        log: ProvisioningLog,
        sp: ServicePrincipal,
        job: SynchronizationJob,
        plan: Plan,
        target: ScimTarget,
        cycle_id: str,
        *,
        flagged: bool,
        on_demand: bool,
    ) -> None:
        self.state = state
        self.log = log
        self.sp = sp
        self.job = job
        self.run: JobRun = job.run
        self.plan = plan
        self.target = target
        self.cycle_id = cycle_id
        self.flagged = flagged
        self.on_demand = on_demand
        self.exported = 0
        self.failed = 0
        self.codes: Counter[str] = Counter()
        self.entries: list[LogEntry] = []

    # -- escrow --------------------------------------------------------------------------

    def _entry(self, object_id: str) -> EscrowEntry | None:
        with self.state.lock:
            return self.run.escrow.get(object_id)

    def _link(
        self, object_id: str, kind: str, scim_id: str, display: str, exported: dict[str, str | None]
    ) -> EscrowEntry:
        entry = EscrowEntry(kind, scim_id, display, True, dict(exported))
        with self.state.lock:
            self.run.escrow[object_id] = entry
            self.run.skipped.discard(object_id)
        return entry

    def _unlink(self, object_id: str) -> None:
        with self.state.lock:
            self.run.escrow.pop(object_id, None)

    def _succeeded(self, object_id: str) -> None:
        with self.state.lock:
            self.run.failures.pop(object_id, None)

    # -- logging -------------------------------------------------------------------------

    def record(
        self,
        *,
        kind: str,
        source_id: str,
        source_name: str,
        action: str,
        status: str,
        steps: list[Step],
        target_id: str = "",
        target_name: str = "",
        modified: list[tuple[str, str | None, str | None]] | None = None,
        error: ObjectFailure | TargetUnavailable | None = None,
        started: float,
    ) -> LogEntry:
        state = self.state
        entry = LogEntry(
            id=state.ids.uuid("provisioning-logs"),
            activity=state.clock.now(),
            job_id=self.job.id,
            sp_id=self.sp.object_id,
            sp_name=self.sp.display_name,
            app_id=self.sp.app_id,
            cycle_id=self.cycle_id,
            change_id=state.ids.uuid("provisioning-changes"),
            action=action,
            status=status,
            source_type=kind,
            source_id=source_id,
            source_name=source_name,
            target_type=ENTERPRISE_USER if kind == "User" else GROUP_OBJECT,
            target_id=target_id,
            target_name=target_name or source_name,
            duration_ms=int((time.perf_counter() - started) * 1000),
            steps=steps,
            modified=modified or [],
            error_code=error.code if error is not None else None,
            error_reason=error.message if error is not None else None,
            on_demand=self.on_demand,
        )
        self.log.add(entry)
        self.entries.append(entry)
        return entry

    def _fail(
        self,
        object_id: str,
        kind: str,
        name: str,
        action: str,
        steps: list[Step],
        error: ObjectFailure | TargetUnavailable,
        started: float,
        target_id: str = "",
    ) -> None:
        with self.state.lock:
            self.run.failures[object_id] = self.run.failures.get(object_id, 0) + 1
        self.failed += 1
        self.codes[error.code] += 1
        export_step = "EntryExportAdd" if action == "create" else "EntryExportUpdate"
        if action == "delete":
            export_step = "EntryExportDelete"
        steps.append(Step(export_step, "export", "failure", error.message))
        self.record(
            kind=kind,
            source_id=object_id,
            source_name=name,
            action=action,
            status="failure",
            steps=steps,
            target_id=target_id,
            error=error,
            started=started,
        )

    # -- users ---------------------------------------------------------------------------

    def _type(self, rule: ObjectRule, target: str) -> str:
        attribute = rule.attribute(target)
        return attribute.target_type if attribute is not None else "String"

    def user(self, work: UserWork, *, log_noop: bool = False) -> None:
        """Create, match or update one in-scope user."""
        rule = self.plan.user_rule
        assert rule is not None
        started = time.perf_counter()
        steps = [
            Step(
                "EntryImport",
                "import",
                "success",
                f"Retrieved User '{work.upn}' from Azure Active Directory",
                work.imported,
            ),
            Step(
                "EntrySynchronizationScoping",
                "scoping",
                "success",
                "Determine if User in scope by evaluating against each scoping filter",
                (("IsEffectivelyEntitledForProvisioning", "True"),),
            ),
        ]
        action = "create"
        entry = self._entry(work.id)
        try:
            if work.duplicate:
                raise _duplicate("User", work.matching)
            if entry is not None and (self.plan.full or self.on_demand):
                resource = self.target.get("Users", entry.scim_id)
                if resource is None:
                    self._unlink(work.id)
                    entry = None
                else:
                    actual = {t: read_value(resource, t) for t in work.values}
                    entry = self._link(work.id, "User", entry.scim_id, entry.display, actual)
            if entry is None:
                entry = self._match_or_create(work, rule, steps, started)
                if entry is None:
                    return
            action = "update"
            self._update_user(work, rule, entry, steps, started, log_noop=log_noop)
        except ObjectFailure as failure:
            target_id = entry.scim_id if entry is not None else ""
            self._fail(work.id, "User", work.upn, action, steps, failure, started, target_id)
        except TargetUnavailable as fatal:
            self._fail(work.id, "User", work.upn, action, steps, fatal, started)
            raise

    def _match_or_create(
        self, work: UserWork, rule: ObjectRule, steps: list[Step], started: float
    ) -> EscrowEntry | None:
        attribute, value = work.matching
        if not value:
            raise ObjectFailure(
                "MandatoryFieldsMissing",
                f"The matching attribute '{attribute}' has no value for User '{work.upn}'.",
            )
        found = self.target.find("Users", attribute, value)
        if len(found) > 1:
            raise ObjectFailure(
                "DuplicateTargetEntries",
                f"{len(found)} users in the target match {attribute} '{value}'.",
            )
        if found:
            resource = found[0]
            steps.append(
                Step(
                    "EntryImport",
                    "matching",
                    "success",
                    f"Retrieved '{value}' from {TARGET_SYSTEM}",
                    (("id", str(resource.get("id"))), (attribute, value)),
                )
            )
            actual = {t: read_value(resource, t) for t in work.values}
            return self._link(work.id, "User", str(resource["id"]), value, actual)
        steps.append(
            Step(
                "EntryImport",
                "matching",
                "success",
                f"No User with {attribute} '{value}' exists in {TARGET_SYSTEM}",
            )
        )
        if work.disabled or "Add" not in rule.flow_types:
            why = (
                "it is disabled or deleted in Azure Active Directory and does not exist in the "
                "target, so it is not created"
                if work.disabled
                else "the object mapping does not allow Add"
            )
            steps.append(
                Step("EntrySynchronizationSkip", "export", "skipped", f"User '{work.upn}': {why}.")
            )
            self.record(
                kind="User",
                source_id=work.id,
                source_name=work.upn,
                action="other",
                status="skipped",
                steps=steps,
                started=started,
            )
            self._succeeded(work.id)
            with self.state.lock:
                self.run.skipped.add(work.id)
            return None
        values = {t: (v, self._type(rule, t)) for t, v in work.values.items() if v is not None}
        created = self.target.create("Users", user_body(values))
        scim_id = str(created["id"])
        steps.append(
            Step(
                "EntryExportAdd",
                "export",
                "success",
                f"User '{value}' was created in {TARGET_SYSTEM}",
                (("ReportableIdentifier", value),),
            )
        )
        self._link(work.id, "User", scim_id, value, work.values)
        self.exported += 1
        self._succeeded(work.id)
        self.record(
            kind="User",
            source_id=work.id,
            source_name=work.upn,
            action="create",
            status="success",
            steps=steps,
            target_id=scim_id,
            target_name=value,
            modified=[(t, None, v) for t, v in work.values.items() if v is not None],
            started=started,
        )
        return None

    def _update_user(
        self,
        work: UserWork,
        rule: ObjectRule,
        entry: EscrowEntry,
        steps: list[Step],
        started: float,
        *,
        log_noop: bool,
        retry: bool = True,
    ) -> None:
        changes = [
            Change(t, entry.exported.get(t), v, self._type(rule, t))
            for t, v in work.values.items()
            if t not in work.add_only and entry.exported.get(t) != v
        ]
        if not changes or "Update" not in rule.flow_types:
            with self.state.lock:
                entry.in_scope = True
            self._succeeded(work.id)
            if log_noop:
                steps.append(
                    Step(
                        "EntrySynchronizationSkip",
                        "export",
                        "skipped",
                        "The state of the user in both the source and target systems already "
                        f"match. No change to the User '{work.upn}' currently needs to be made.",
                        (("SkipReason", "RedundantExport"),),
                    )
                )
                self.record(
                    kind="User",
                    source_id=work.id,
                    source_name=work.upn,
                    action="other",
                    status="skipped",
                    steps=steps,
                    target_id=entry.scim_id,
                    target_name=entry.display,
                    started=started,
                )
            return
        flagged = self.flagged and not self.on_demand
        if not self.target.patch("Users", entry.scim_id, patch_ops(changes, flagged=flagged)):
            # The target lost the object: forget the link and match/create it again.
            self._unlink(work.id)
            matched = self._match_or_create(work, rule, steps, started)
            if matched is not None and retry:
                self._update_user(
                    work, rule, matched, steps, started, log_noop=log_noop, retry=False
                )
            return
        with self.state.lock:
            for change in changes:
                entry.exported[change.path] = change.new
            entry.in_scope = True
            entry.display = work.matching[1] or entry.display
        self.exported += 1
        self._succeeded(work.id)
        disable = len(changes) == 1 and changes[0].path == "active"
        disable = disable and (changes[0].new or "").lower() == "false"
        steps.append(
            Step(
                "EntryExportUpdate",
                "export",
                "success",
                f"User '{entry.display}' was updated in {TARGET_SYSTEM}",
                (("ReportableIdentifier", entry.display),),
            )
        )
        self.record(
            kind="User",
            source_id=work.id,
            source_name=work.upn,
            action="disable" if disable else "update",
            status="success",
            steps=steps,
            target_id=entry.scim_id,
            target_name=entry.display,
            modified=[(c.path, c.old, c.new) for c in changes],
            started=started,
        )

    # -- groups --------------------------------------------------------------------------

    def group(self, work: GroupWork, *, remove_members: bool = True) -> None:
        """Create, match or update one in-scope group, then sync its members."""
        rule = self.plan.group_rule
        assert rule is not None
        started = time.perf_counter()
        steps = [
            Step(
                "EntryImport",
                "import",
                "success",
                f"Retrieved Group '{work.name}' from Azure Active Directory",
                (("objectId", work.id), ("displayName", work.name)),
            )
        ]
        entry = self._entry(work.id)
        action = "create" if entry is None else "update"
        verify = False
        try:
            if work.duplicate:
                raise _duplicate("Group", work.matching)
            if entry is not None and (self.plan.full or self.on_demand):
                resource = self.target.get("Groups", entry.scim_id)
                if resource is None:
                    self._unlink(work.id)
                    entry = None
                else:
                    actual = {t: read_value(resource, t) for t in work.values}
                    with self.state.lock:
                        entry.exported = actual
                    verify = True
            if entry is None:
                entry, verify = self._match_or_create_group(work, rule, steps, started)
                if entry is None:
                    return
            elif work.attributes_changed:
                self._update_group(work, rule, entry, steps, started)
            action = "update"
            if rule.attribute("members") is not None:
                self._members(work, entry, steps, started, verify, remove_members)
            self._succeeded(work.id)
        except ObjectFailure as failure:
            target_id = entry.scim_id if entry is not None else ""
            self._fail(work.id, "Group", work.name, action, steps, failure, started, target_id)
        except TargetUnavailable as fatal:
            self._fail(work.id, "Group", work.name, action, steps, fatal, started)
            raise

    def _match_or_create_group(
        self, work: GroupWork, rule: ObjectRule, steps: list[Step], started: float
    ) -> tuple[EscrowEntry | None, bool]:
        attribute, value = work.matching
        if not value:
            raise ObjectFailure(
                "MandatoryFieldsMissing", f"The matching attribute '{attribute}' has no value."
            )
        found = self.target.find("Groups", attribute, value)
        if len(found) > 1:
            raise ObjectFailure(
                "DuplicateTargetEntries",
                f"{len(found)} groups in the target match {attribute} '{value}'.",
            )
        if found:
            resource = found[0]
            steps.append(
                Step(
                    "EntryImport",
                    "matching",
                    "success",
                    f"Retrieved '{value}' from {TARGET_SYSTEM}",
                )
            )
            actual = {t: read_value(resource, t) for t in work.values}
            entry = self._link(work.id, "Group", str(resource["id"]), value, actual)
            self._update_group(work, rule, entry, steps, started)
            return entry, True
        if "Add" not in rule.flow_types:
            return None, False
        values = {t: (v, self._type(rule, t)) for t, v in work.values.items() if v is not None}
        created = self.target.create("Groups", group_body(values))
        scim_id = str(created["id"])
        entry = self._link(work.id, "Group", scim_id, value, work.values)
        self.exported += 1
        steps.append(
            Step(
                "EntryExportAdd",
                "export",
                "success",
                f"Group '{value}' was created in {TARGET_SYSTEM}",
            )
        )
        self.record(
            kind="Group",
            source_id=work.id,
            source_name=work.name,
            action="create",
            status="success",
            steps=list(steps),
            target_id=scim_id,
            target_name=value,
            modified=[(t, None, v) for t, v in work.values.items() if v is not None],
            started=started,
        )
        return entry, False

    def _update_group(
        self,
        work: GroupWork,
        rule: ObjectRule,
        entry: EscrowEntry,
        steps: list[Step],
        started: float,
    ) -> None:
        changes = [
            Change(t, entry.exported.get(t), v, self._type(rule, t))
            for t, v in work.values.items()
            if entry.exported.get(t) != v
        ]
        if not changes or "Update" not in rule.flow_types:
            return
        flagged = self.flagged and not self.on_demand
        if not self.target.patch("Groups", entry.scim_id, patch_ops(changes, flagged=flagged)):
            self._unlink(work.id)
            raise ObjectFailure(
                CODE_GONE, f"Group '{work.name}' no longer exists in the target; it is re-created."
            )
        with self.state.lock:
            for change in changes:
                entry.exported[change.path] = change.new
        self.exported += 1
        self.record(
            kind="Group",
            source_id=work.id,
            source_name=work.name,
            action="update",
            status="success",
            steps=steps
            + [Step("EntryExportUpdate", "export", "success", f"Group '{work.name}' was updated")],
            target_id=entry.scim_id,
            target_name=entry.display,
            modified=[(c.path, c.old, c.new) for c in changes],
            started=started,
        )

    def _members(
        self,
        work: GroupWork,
        entry: EscrowEntry,
        steps: list[Step],
        started: float,
        verify: bool,
        remove_members: bool,
    ) -> None:
        desired: dict[str, str] = {}
        with self.state.lock:
            escrow = self.run.escrow
            for user_id in work.members:
                linked = escrow.get(user_id)
                if linked is not None and linked.kind == "User" and linked.in_scope:
                    desired[user_id] = linked.scim_id
            current = dict(entry.members)
        if verify:
            for user_id, scim_id in desired.items():
                if user_id not in current and self.target.is_member(entry.scim_id, scim_id):
                    current[user_id] = scim_id
            with self.state.lock:
                entry.members = dict(current)
        add = [(u, s) for u, s in desired.items() if u not in current]
        remove = [(u, s) for u, s in current.items() if u not in desired] if remove_members else []
        if not add and not remove:
            return
        flagged = self.flagged and not self.on_demand
        added = [s for _, s in add]
        removed = [s for _, s in remove]
        for operations in member_ops(added, [], flagged=flagged):
            self._patch_members(work, entry, operations)
        with self.state.lock:
            entry.members.update(dict(add))
        for operations in member_ops([], removed, flagged=flagged):
            self._patch_members(work, entry, operations)
        with self.state.lock:
            for user_id, _ in remove:
                entry.members.pop(user_id, None)
        self.exported += 1
        self.record(
            kind="Group",
            source_id=work.id,
            source_name=work.name,
            action="update",
            status="success",
            steps=steps
            + [
                Step(
                    "EntryExportUpdate",
                    "export",
                    "success",
                    f"Group '{work.name}' members were updated in {TARGET_SYSTEM}",
                )
            ],
            target_id=entry.scim_id,
            target_name=entry.display,
            modified=[
                (
                    "members",
                    ",".join(removed) or None,
                    ",".join(added) or None,
                )
            ],
            started=started,
        )

    def _patch_members(
        self, work: GroupWork, entry: EscrowEntry, operations: list[dict[str, Any]]
    ) -> None:
        if not self.target.patch("Groups", entry.scim_id, operations):
            self._unlink(work.id)
            raise ObjectFailure(
                CODE_GONE, f"Group '{work.name}' no longer exists in the target; it is re-created."
            )

    # -- leaving scope -------------------------------------------------------------------

    def leave(self, work: LeaveWork) -> None:
        """Disable, delete or forget an object that left scope or the directory."""
        started = time.perf_counter()
        rule = self.plan.user_rule if work.kind == "User" else self.plan.group_rule
        endpoint = "Users" if work.kind == "User" else "Groups"
        steps = [
            Step(
                "EntrySynchronizationScoping",
                "scoping",
                "success",
                f"{_noun(work.kind)} '{work.display}' is no longer in scope"
                if work.action != "delete"
                else f"{_noun(work.kind)} '{work.display}' was deleted in Azure Active Directory",
            )
        ]
        if work.action == "drop" or rule is None:
            self._unlink(work.id)
            return
        entry = self._entry(work.id)
        if entry is None:
            return
        try:
            if work.action == "disable":
                self._disable(work, entry, steps, started)
                return
            if "Delete" not in rule.flow_types or (self.plan.skip_out_of_scope and work.exists):
                self._unlink(work.id)
                return
            self.target.delete(endpoint, entry.scim_id)
            self._unlink(work.id)
            self.exported += 1
            self._succeeded(work.id)
            steps.append(
                Step("EntryExportDelete", "export", "success", f"'{work.display}' was deleted")
            )
            self.record(
                kind=work.kind,
                source_id=work.id,
                source_name=work.display,
                action="delete",
                status="success",
                steps=steps,
                target_id=entry.scim_id,
                target_name=work.display,
                started=started,
            )
        except ObjectFailure as failure:
            self._fail(
                work.id,
                work.kind,
                work.display,
                work.action,
                steps,
                failure,
                started,
                entry.scim_id,
            )
        except TargetUnavailable as fatal:
            self._fail(work.id, work.kind, work.display, work.action, steps, fatal, started)
            raise

    def _disable(
        self, work: LeaveWork, entry: EscrowEntry, steps: list[Step], started: float
    ) -> None:
        if self.plan.skip_out_of_scope or work.active is None:
            with self.state.lock:
                entry.in_scope = False
            return
        old = entry.exported.get("active")
        if old != work.active:
            change = Change("active", old, work.active, "Boolean")
            flagged = self.flagged and not self.on_demand
            if not self.target.patch("Users", entry.scim_id, patch_ops([change], flagged=flagged)):
                self._unlink(work.id)
                return
            self.exported += 1
            steps.append(
                Step(
                    "EntryExportUpdate",
                    "export",
                    "success",
                    f"User '{work.display}' was disabled in {TARGET_SYSTEM}",
                )
            )
            self.record(
                kind="User",
                source_id=work.id,
                source_name=work.display,
                action="disable",
                status="success",
                steps=steps,
                target_id=entry.scim_id,
                target_name=work.display,
                modified=[("active", old, work.active)],
                started=started,
            )
        with self.state.lock:
            entry.exported["active"] = work.active
            entry.in_scope = False
        self._succeeded(work.id)
