"""One provisioning cycle's object-by-object work: link, create, update, disable, delete.

:class:`Cycle` gets a plan and a :class:`~._scim_target.ScimTarget` and turns each
planned object into the requests Entra sends, updates the job's escrow (links and
last-exported values) as each request succeeds, and writes one provisioning log entry
per outcome. Object failures are recorded here and raised no further; a
:class:`~._scim_target.TargetUnavailable` is logged and re-raised so the engine can
stop the cycle and quarantine the job.

Users and groups go through one export path, :meth:`Cycle.export`: read back or match
the target object, create it or patch the attributes that differ, then sync members
(only a group mapping maps ``members``). Where Entra treats the two kinds differently,
the path reads the difference from the object's :class:`ExportKind` in :data:`KINDS`
instead of branching on the kind's name.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...tenant._state import ServicePrincipal, TenantState
from .._jobs import EscrowEntry, JobRun, SynchronizationJob
from .._provisioning_log import LogEntry, ProvisioningLog, Step
from .._schema import ENTERPRISE_USER, GROUP_OBJECT, ObjectRule
from ._plan import LeaveWork, ObjectWork, Plan
from ._scim_payload import Change, group_body, member_ops, patch_ops, read_value, user_body
from ._scim_target import ObjectFailure, ScimTarget, TargetUnavailable

__all__ = ["CODE_GONE", "KINDS", "TARGET_SYSTEM", "Cycle", "ExportKind"]

TARGET_SYSTEM = "customappsso"
CODE_GONE = "SystemForCrossDomainIdentityManagementEntryNotFound"


@dataclass(frozen=True, slots=True)
class ExportKind:
    """What differs between exporting a user and exporting a group.

    :param name: the object type in the logs ("User", "Group").
    :param endpoint: the SCIM collection ("Users", "Groups").
    :param body: builds the POST body from ``{target: (value, type)}``.
    :param detailed_log: Entra's user entries say more than its group entries: a scoping
        step after the import, the object named when the matching value is missing, the
        matched id, a step when nothing matched, a ReportableIdentifier on exports, and a
        logged skip (with the object remembered as skipped) when it is not created.
    :param linked_on_match: when a failure counts as an update of the linked target
        object rather than a create. Users: once this cycle has read the object back or
        matched it. Groups: when the escrow linked it before the cycle began, or once the
        attributes of a matched group are exported (a failure before that is a create
        without the target's id).
    :param rematch_when_gone: when a PATCH finds the object gone, a user is matched (or
        created) again at once; a group fails and is re-created next cycle.
    :param display_follows_matching: the linked object's display name follows the
        matching value after an update (users; a group keeps the name it was linked with).
    :param can_disable: an update that only sets ``active`` to false is logged as a
        disable (users; groups are never disabled, only deleted).
    """

    name: str
    endpoint: str
    body: Callable[[dict[str, tuple[str, str]]], dict[str, Any]]
    detailed_log: bool
    linked_on_match: bool
    rematch_when_gone: bool
    display_follows_matching: bool
    can_disable: bool


KINDS: dict[str, ExportKind] = {
    "User": ExportKind(
        "User",
        "Users",
        user_body,
        detailed_log=True,
        linked_on_match=True,
        rematch_when_gone=True,
        display_follows_matching=True,
        can_disable=True,
    ),
    "Group": ExportKind(
        "Group",
        "Groups",
        group_body,
        detailed_log=False,
        linked_on_match=False,
        rematch_when_gone=False,
        display_follows_matching=False,
        can_disable=False,
    ),
}
"""The export differences of each object kind, by :attr:`ObjectWork.kind`."""


def _duplicate(kind: str, matching: tuple[str, str | None]) -> ObjectFailure:
    attribute, value = matching
    return ObjectFailure(
        "DuplicateSourceEntries",
        f"More than one {kind} in scope has {attribute} '{value}', the matching attribute, so "
        "the provisioning service cannot tell which one the target object belongs to. Make "
        "the value unique or take one of them out of scope.",
    )


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

    def _log_export(
        self,
        work: ObjectWork,
        action: str,
        steps: list[Step],
        started: float,
        *,
        status: str = "success",
        target: tuple[str, str] = ("", ""),
        modified: list[tuple[str, str | None, str | None]] | None = None,
    ) -> None:
        """Log one outcome of an export; ``target`` is the (id, name) of the target object.

        The entry gets a copy of ``steps``: later steps of the same object do not change it.
        """
        target_id, target_name = target
        self.record(
            kind=work.kind,
            source_id=work.id,
            source_name=work.name,
            action=action,
            status=status,
            steps=list(steps),
            target_id=target_id,
            target_name=target_name,
            modified=modified,
            started=started,
        )

    # -- export: users and groups --------------------------------------------------------

    def _type(self, rule: ObjectRule, target: str) -> str:
        attribute = rule.attribute(target)
        return attribute.target_type if attribute is not None else "String"

    def export(
        self, work: ObjectWork, *, log_noop: bool = False, remove_members: bool = True
    ) -> None:
        """Create, match or update one in-scope user or group, then sync its members.

        ``log_noop`` logs a skip when nothing needs changing (on-demand runs);
        ``remove_members`` False only adds members (on-demand runs list a few of them).
        """
        kind = KINDS[work.kind]
        rule = self.plan.rule(work.kind)
        assert rule is not None
        started = time.perf_counter()
        steps = [
            Step(
                "EntryImport",
                "import",
                "success",
                f"Retrieved {kind.name} '{work.name}' from Azure Active Directory",
                work.imported,
            )
        ]
        if kind.detailed_log:
            steps.append(
                Step(
                    "EntrySynchronizationScoping",
                    "scoping",
                    "success",
                    f"Determine if {kind.name} in scope by evaluating against each scoping filter",
                    (("IsEffectivelyEntitledForProvisioning", "True"),),
                )
            )
        entry = self._entry(work.id)
        action = "update" if entry is not None and not kind.linked_on_match else "create"
        try:
            if work.duplicate:
                raise _duplicate(kind.name, work.matching)
            verify = False
            if entry is not None and (self.plan.full or self.on_demand):
                entry, verify = self._read_back(work, kind, entry), True
            if entry is None:
                linked, created = self._match_or_create(work, kind, rule, steps, started)
                if linked is None:
                    return
                verify = not created
                if kind.linked_on_match:
                    entry, action = linked, "update"
                if not created:
                    self._update(work, kind, rule, linked, steps, started, log_noop=log_noop)
                entry = linked
            else:
                if kind.linked_on_match:
                    action = "update"
                if work.attributes_changed:
                    self._update(work, kind, rule, entry, steps, started, log_noop=log_noop)
            action = "update"
            if rule.attribute("members") is not None:
                self._members(work, entry, steps, started, verify, remove_members)
            self._succeeded(work.id)
        except ObjectFailure as failure:
            target_id = entry.scim_id if entry is not None else ""
            self._fail(work.id, kind.name, work.name, action, steps, failure, started, target_id)
        except TargetUnavailable as fatal:
            self._fail(work.id, kind.name, work.name, action, steps, fatal, started)
            raise

    def _read_back(
        self, work: ObjectWork, kind: ExportKind, entry: EscrowEntry
    ) -> EscrowEntry | None:
        """Full and on-demand cycles re-read a linked object; None when it is gone."""
        resource = self.target.get(kind.endpoint, entry.scim_id)
        if resource is None:
            self._unlink(work.id)
            return None
        actual = {t: read_value(resource, t) for t in work.values}
        with self.state.lock:
            entry.exported = actual
            entry.in_scope = True
            self.run.skipped.discard(work.id)
        return entry

    def _match_or_create(
        self,
        work: ObjectWork,
        kind: ExportKind,
        rule: ObjectRule,
        steps: list[Step],
        started: float,
    ) -> tuple[EscrowEntry | None, bool]:
        """Link the target object with the matching value, or create it.

        Returns the linked entry (None when the object is not created) and whether it
        was created by this call.
        """
        attribute, value = work.matching
        detailed = kind.detailed_log
        if not value:
            about = f" for {kind.name} '{work.name}'" if detailed else ""
            raise ObjectFailure(
                "MandatoryFieldsMissing",
                f"The matching attribute '{attribute}' has no value{about}.",
            )
        found = self.target.find(kind.endpoint, attribute, value)
        if len(found) > 1:
            raise ObjectFailure(
                "DuplicateTargetEntries",
                f"{len(found)} {kind.endpoint.lower()} in the target match {attribute} '{value}'.",
            )
        if found:
            resource = found[0]
            details = (("id", str(resource.get("id"))), (attribute, value)) if detailed else ()
            steps.append(
                Step(
                    "EntryImport",
                    "matching",
                    "success",
                    f"Retrieved '{value}' from {TARGET_SYSTEM}",
                    details,
                )
            )
            actual = {t: read_value(resource, t) for t in work.values}
            return self._link(work.id, kind.name, str(resource["id"]), value, actual), False
        if detailed:
            steps.append(
                Step(
                    "EntryImport",
                    "matching",
                    "success",
                    f"No {kind.name} with {attribute} '{value}' exists in {TARGET_SYSTEM}",
                )
            )
        if work.disabled or "Add" not in rule.flow_types:
            if detailed:
                self._skip_create(work, kind, steps, started)
            return None, False
        values = {t: (v, self._type(rule, t)) for t, v in work.values.items() if v is not None}
        created = self.target.create(kind.endpoint, kind.body(values))
        scim_id = str(created["id"])
        entry = self._link(work.id, kind.name, scim_id, value, work.values)
        self.exported += 1
        steps.append(
            Step(
                "EntryExportAdd",
                "export",
                "success",
                f"{kind.name} '{value}' was created in {TARGET_SYSTEM}",
                (("ReportableIdentifier", value),) if detailed else (),
            )
        )
        created_values: list[tuple[str, str | None, str | None]] = [
            (t, None, v) for t, v in work.values.items() if v is not None
        ]
        self._log_export(
            work, "create", steps, started, target=(scim_id, value), modified=created_values
        )
        return entry, True

    def _skip_create(
        self, work: ObjectWork, kind: ExportKind, steps: list[Step], started: float
    ) -> None:
        why = (
            "it is disabled or deleted in Azure Active Directory and does not exist in the "
            "target, so it is not created"
            if work.disabled
            else "the object mapping does not allow Add"
        )
        steps.append(
            Step(
                "EntrySynchronizationSkip",
                "export",
                "skipped",
                f"{kind.name} '{work.name}': {why}.",
            )
        )
        self._log_export(work, "other", steps, started, status="skipped")
        self._succeeded(work.id)
        with self.state.lock:
            self.run.skipped.add(work.id)

    def _update(
        self,
        work: ObjectWork,
        kind: ExportKind,
        rule: ObjectRule,
        entry: EscrowEntry,
        steps: list[Step],
        started: float,
        *,
        log_noop: bool,
        retry: bool = True,
    ) -> None:
        """PATCH the attributes whose value differs from what the target last had."""
        changes = [
            Change(t, entry.exported.get(t), v, self._type(rule, t))
            for t, v in work.values.items()
            if t not in work.add_only and entry.exported.get(t) != v
        ]
        if not changes or "Update" not in rule.flow_types:
            with self.state.lock:
                entry.in_scope = True
            if log_noop:
                self._log_noop(work, kind, entry, steps, started)
            return
        flagged = self.flagged and not self.on_demand
        if not self.target.patch(kind.endpoint, entry.scim_id, patch_ops(changes, flagged=flagged)):
            # The target lost the object: forget the link.
            self._unlink(work.id)
            if not kind.rematch_when_gone:
                raise ObjectFailure(
                    CODE_GONE,
                    f"{kind.name} '{work.name}' no longer exists in the target; it is re-created.",
                )
            matched, created = self._match_or_create(work, kind, rule, steps, started)
            if matched is not None and not created and retry:
                self._update(
                    work, kind, rule, matched, steps, started, log_noop=log_noop, retry=False
                )
            return
        with self.state.lock:
            for change in changes:
                entry.exported[change.path] = change.new
            entry.in_scope = True
            if kind.display_follows_matching:
                entry.display = work.matching[1] or entry.display
        self.exported += 1
        disable = kind.can_disable and len(changes) == 1 and changes[0].path == "active"
        disable = disable and (changes[0].new or "").lower() == "false"
        if kind.detailed_log:
            updated = Step(
                "EntryExportUpdate",
                "export",
                "success",
                f"{kind.name} '{entry.display}' was updated in {TARGET_SYSTEM}",
                (("ReportableIdentifier", entry.display),),
            )
        else:
            updated = Step(
                "EntryExportUpdate", "export", "success", f"{kind.name} '{work.name}' was updated"
            )
        self._log_export(
            work,
            "disable" if disable else "update",
            [*steps, updated],
            started,
            target=(entry.scim_id, entry.display),
            modified=[(c.path, c.old, c.new) for c in changes],
        )

    def _log_noop(
        self,
        work: ObjectWork,
        kind: ExportKind,
        entry: EscrowEntry,
        steps: list[Step],
        started: float,
    ) -> None:
        noun = kind.name
        steps.append(
            Step(
                "EntrySynchronizationSkip",
                "export",
                "skipped",
                f"The state of the {noun.lower()} in both the source and target systems already "
                f"match. No change to the {noun} '{work.name}' currently needs to be made.",
                (("SkipReason", "RedundantExport"),),
            )
        )
        self._log_export(
            work, "other", steps, started, status="skipped", target=(entry.scim_id, entry.display)
        )

    def _members(
        self,
        work: ObjectWork,
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
        updated = Step(
            "EntryExportUpdate",
            "export",
            "success",
            f"{work.kind} '{work.name}' members were updated in {TARGET_SYSTEM}",
        )
        self._log_export(
            work,
            "update",
            [*steps, updated],
            started,
            target=(entry.scim_id, entry.display),
            modified=[("members", ",".join(removed) or None, ",".join(added) or None)],
        )

    def _patch_members(
        self, work: ObjectWork, entry: EscrowEntry, operations: list[dict[str, Any]]
    ) -> None:
        if not self.target.patch(KINDS[work.kind].endpoint, entry.scim_id, operations):
            self._unlink(work.id)
            raise ObjectFailure(
                CODE_GONE, f"Group '{work.name}' no longer exists in the target; it is re-created."
            )

    # -- leaving scope -------------------------------------------------------------------

    def leave(self, work: LeaveWork) -> None:
        """Disable, delete or forget an object that left scope or the directory."""
        started = time.perf_counter()
        rule = self.plan.rule(work.kind)
        endpoint = KINDS[work.kind].endpoint
        steps = [
            Step(
                "EntrySynchronizationScoping",
                "scoping",
                "success",
                f"{work.kind} '{work.display}' is no longer in scope"
                if work.action != "delete"
                else f"{work.kind} '{work.display}' was deleted in Azure Active Directory",
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
            self._log_leave(work, "delete", steps, started, entry.scim_id)
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

    def _log_leave(
        self,
        work: LeaveWork,
        action: str,
        steps: list[Step],
        started: float,
        target_id: str,
        modified: list[tuple[str, str | None, str | None]] | None = None,
    ) -> None:
        self.record(
            kind=work.kind,
            source_id=work.id,
            source_name=work.display,
            action=action,
            status="success",
            steps=steps,
            target_id=target_id,
            target_name=work.display,
            modified=modified,
            started=started,
        )

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
            operations = patch_ops([change], flagged=flagged)
            if not self.target.patch(KINDS[work.kind].endpoint, entry.scim_id, operations):
                self._unlink(work.id)
                return
            self.exported += 1
            steps.append(
                Step(
                    "EntryExportUpdate",
                    "export",
                    "success",
                    f"{work.kind} '{work.display}' was disabled in {TARGET_SYSTEM}",
                )
            )
            self._log_leave(
                work, "disable", steps, started, entry.scim_id, [("active", old, work.active)]
            )
        with self.state.lock:
            entry.exported["active"] = work.active
            entry.in_scope = False
        self._succeeded(work.id)
