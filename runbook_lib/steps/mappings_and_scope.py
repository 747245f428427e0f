"""04-mappings-and-scope: User and Group mappings on, scope 'assigned only', optional objectId.

The vendor page asks for three things here: both object mappings enabled (Iru needs groups for
Blueprint Assignment Maps), the scope *Sync only assigned users and groups* (``SyncAll`` =
``false``, a provisioning secret rather than part of the schema), and, for Microsoft Device
Compliance, ``externalId`` coming from ``objectId`` for users and groups. Switching the scope
from "all" to "assigned" on a running job needs a restart (a known Entra issue), so the step
restarts the job only in that case.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .._checks import Change, CheckResult, Exhibit
from .._exceptions import StepError
from .._planned import PlannedState
from .._schema import (
    expected_external_id,
    external_id_changes,
    external_id_source,
    mapping_rows,
    object_mapping,
    render_mapping_table,
    with_changes,
)
from .._settings import require_secret
from .._tenant import SavedSecrets, read_secrets, require_app, require_job, save_secrets
from ._base import Step

__all__ = ["MappingsAndScope", "schema_path"]

SCOPE = "Scope"
ASSIGNED = "Sync only assigned users and groups"
RESTART_CRITERIA = {"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}}


def schema_path(sp_id: str, job_id: str) -> str:
    return f"servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema"


class MappingsAndScope(Step):
    """Enable the User and Group mappings, scope to assigned, map externalId if asked."""

    name: ClassVar[str] = "04-mappings-and-scope"
    title: ClassVar[str] = "Mappings and scope"

    def __init__(self, runbook: Any, *, device_compliance: bool = False) -> None:
        super().__init__(runbook)
        self.device_compliance = device_compliance
        self.expected = expected_external_id(device_compliance)
        self._scope_saved = False

    def _read(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], SavedSecrets]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        job = require_job(graph, sp["id"])
        schema = graph.get(schema_path(sp["id"], job["id"]))
        return sp, job, schema, read_secrets(graph, sp["id"])

    def _show(self, schema: dict[str, Any]) -> None:
        rows = mapping_rows(schema, self.expected)
        text = "\n".join(
            f"  {r.object:<5} {r.target:<60} <- {r.source}"
            + (f"   (expected {r.expected})" if r.differs else "")
            for r in rows
        )
        self.exhibits = [Exhibit("Attribute mappings", render_mapping_table(rows), text)]

    def plan(self) -> list[Change]:
        _sp, job, schema, secrets = self._read()
        self._show(schema)
        changes: list[Change] = []
        for obj in ("User", "Group"):
            mapping = object_mapping(schema, obj)
            if mapping is not None and not mapping.get("enabled", False):
                changes.append(Change("enable", f"{obj} object mapping", mapping.get("name", "")))
        changes += [
            Change("map", f"{obj} externalId", f"{current} -> {expression}")
            for obj, current, expression in external_id_changes(schema, self.expected)
        ]
        sync_all = secrets.get("SyncAll", "")
        if not secrets.readable and not sync_all:
            # The saved scope cannot be read back here: save it again (harmless) and say so.
            self.notes.append(
                f"{secrets.why}, so the saved scope cannot be read; it is saved again as "
                f"'{ASSIGNED}' on every run."
            )
            changes.append(Change("set", SCOPE, f"(cannot be read) -> {ASSIGNED}"))
        elif sync_all.lower() != "false":
            was = "Sync all users and groups" if sync_all.lower() == "true" else "(not set)"
            changes.append(Change("set", SCOPE, f"{was} -> {ASSIGNED}"))
            state = (job.get("schedule") or {}).get("state")
            if sync_all.lower() == "true" and state == "Active":
                changes.append(
                    Change(
                        "restart", "provisioning job", "needed after switching from all to assigned"
                    )
                )
        return changes

    def apply(self, changes: list[Change]) -> list[Change]:
        graph = self.runbook.graph
        sp, job, schema, _secrets = self._read()
        enable = tuple(c.target.split()[0] for c in changes if c.action == "enable")
        external = {
            c.target.split()[0]: self.expected[c.target.split()[0]]
            for c in changes
            if c.action == "map"
        }
        if enable or external:
            graph.put(
                schema_path(sp["id"], job["id"]),
                with_changes(schema, enable=enable, external_id=external),
            )
        if any(c.target == SCOPE for c in changes):
            token = require_secret(self.runbook.settings, "scim_token").get_secret_value()
            save_secrets(
                graph,
                sp["id"],
                {"SyncAll": "false"},
                token=token,
                base_address=self.runbook.settings.scim_url,
            )
            self._scope_saved = True
        if any(c.action == "restart" for c in changes):
            graph.post(
                f"servicePrincipals/{sp['id']}/synchronization/jobs/{job['id']}/restart",
                RESTART_CRITERIA,
            )
        return list(changes)

    def verify(self) -> list[CheckResult]:
        _sp, _job, schema, secrets = self._read()
        self._show(schema)
        checks: list[CheckResult] = []
        for obj in ("User", "Group"):
            mapping = object_mapping(schema, obj)
            title = f"{obj} object mapping enabled"
            if mapping is None:
                checks.append(
                    CheckResult.failed(
                        title,
                        f"the schema has no mapping for {obj} objects",
                        "Reset the schema to the scim template's default (Graph DELETE .../schema) "
                        "and run this step again.",
                        self.name,
                    )
                )
            elif mapping.get("enabled", False):
                checks.append(CheckResult.passed(title, mapping.get("name", "")))
            else:
                checks.append(
                    CheckResult.failed(title, "disabled", "Run this step again.", self.name)
                )
        for obj, expression in self.expected.items():
            current = external_id_source(schema, obj)
            title = f"{obj} externalId comes from objectId (Device Compliance)"
            if current == expression:
                checks.append(CheckResult.passed(title, current))
            else:
                checks.append(
                    CheckResult.failed(
                        title, f"mapped from {current}", "Run this step again.", self.name
                    )
                )
        if not secrets.readable and not secrets.get("SyncAll"):
            checks.append(
                CheckResult.warned(
                    "Scope is assigned users and groups only",
                    f"{secrets.why}; "
                    + (
                        "SyncAll = false was saved on this run"
                        if self._scope_saved
                        else "the saved scope cannot be read back"
                    ),
                    "Check Provisioning > Settings > Scope on the app's page in Entra admin "
                    "center.",
                )
            )
        elif secrets.get("SyncAll", "").lower() == "false":
            checks.append(
                CheckResult.passed("Scope is assigned users and groups only", "SyncAll = false")
            )
        else:
            checks.append(
                CheckResult.failed(
                    "Scope is assigned users and groups only",
                    f"SyncAll is {secrets.get('SyncAll', '(not set)')!r}",
                    "Run this step again.",
                    self.name,
                )
            )
        return checks

    # -- dry run -----------------------------------------------------------------------------
    def plan_fresh(self, state: PlannedState, exc: StepError) -> list[Change]:
        """No job yet (03 only planned it): plan against a new job, whose mappings are the
        scim template's defaults and whose secrets are the ones 03 saves."""
        view = self.planned_view(state, exc)
        job = view.job or state.job_view()
        planned = (view.sp, job, view.schema, view.secrets)
        with self.planned_reads(_read=lambda: planned):
            changes = self.plan()
        self.not_read(
            "the job's attribute mappings and saved scope",
            "the provisioning job does not exist yet, so they are planned from the scim "
            "template's default mappings and the secrets 03-configure-provisioning saves",
        )
        return changes

    def planned_effects(self, planned: list[Change]) -> dict[str, Any]:
        """The mapping edits and the scope, for pages 07 and 08 to plan against."""
        enable = [c.target.split()[0] for c in planned if c.action == "enable"]
        external = {
            c.target.split()[0]: self.expected[c.target.split()[0]]
            for c in planned
            if c.action == "map"
        }
        effects: dict[str, Any] = {}
        if enable or external:
            effects["schema"] = {"enable": enable, "external_id": external}
        if any(c.target == SCOPE for c in planned):
            effects["secrets"] = {"SyncAll": "false"}
        return effects
