"""08-update-mappings-and-restart: an existing setup moved to externalId <- objectId.

For Microsoft Device Compliance, Iru matches users and groups to Intune by ``externalId``, which
must carry the Entra ``objectId``. Entra's default maps users from ``mailNickname``, so an
existing setup usually needs the User mapping changed. As the vendor page says, changed values
reach Iru promptly only when provisioning is paused and started again; the step does that and
then shows the new externalId values arriving in Iru.

Iru is compared with Entra by :func:`runbook_lib._reconcile.reconcile`, read once per run:
``plan`` uses the comparison page 07 kept for the run (:mod:`runbook_lib._snapshot`) while no
provisioning cycle has run and no mapping has changed since, and reads afresh otherwise;
``verify`` reuses that comparison when nothing was applied, and always reads afresh after an
apply.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .._checks import Change, CheckResult
from .._exceptions import StepError
from .._expectations import ExpectedState
from .._findings import Finding
from .._planned import PlannedState
from .._reconcile import Reconciliation
from .._schema import expected_external_id, external_id_changes, with_changes
from .._snapshot import forget
from .._tenant import require_app, require_job
from ._base import Step
from .mappings_and_scope import schema_path
from .verify_provisioning import _last_cycle, read_reconciliation, wait_for_cycle

__all__ = ["UpdateMappingsAndRestart"]

_EXTERNAL_ID = frozenset({"user_external_id", "group_external_id"})
_MISSING = frozenset({"user_missing", "group_missing"})


class UpdateMappingsAndRestart(Step):
    """Map externalId from objectId for users and groups, then pause and start provisioning."""

    name: ClassVar[str] = "08-update-mappings-and-restart"
    title: ClassVar[str] = "Update externalId mappings and restart provisioning"

    def __init__(self, runbook: Any, *, timeout_minutes: float = 10.0) -> None:
        super().__init__(runbook)
        self.timeout = timeout_minutes * 60.0
        self.expected = expected_external_id(True)
        self._compared: tuple[str, Reconciliation] | None = None
        """(service principal id, comparison) of the last read, until something is applied."""
        self._applied = False

    def _read(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        job = require_job(graph, sp["id"])
        return sp, job, graph.get(schema_path(sp["id"], job["id"]))

    def _mapping_changes(self, schema: dict[str, Any]) -> list[Change]:
        changes = []
        changes += [
            Change("map", f"{obj} externalId", f"{current} -> {expression}")
            for obj, current, expression in external_id_changes(schema, self.expected)
        ]
        return changes

    def _compare(
        self, sp: dict[str, Any], job: dict[str, Any], schema: dict[str, Any], *, reuse: bool
    ) -> Reconciliation:
        """The comparison: this step's own, or the run's (when ``reuse``), or a fresh read."""
        if not reuse or self._compared is None or self._compared[0] != sp["id"]:
            result = read_reconciliation(self, sp, job, schema, reuse=reuse)
            self._compared = (sp["id"], result)
        return self._compared[1]

    def plan(self) -> list[Change]:
        self._compared = None
        self._applied = False
        sp, job, schema = self._read()
        changes = self._mapping_changes(schema)
        if not changes:
            found = self._compare(sp, job, schema, reuse=True).findings
            stale = [f.object for f in found if f.kind in _EXTERNAL_ID]
            if not stale:
                return []
            detail = f"{len(stale)} object(s) in Iru still carry the old externalId"
        else:
            detail = "pushes the new externalId values to Iru"
        return changes + [
            Change("pause", "provisioning job", detail),
            Change("start", "provisioning job", detail),
        ]

    def apply(self, changes: list[Change]) -> list[Change]:
        graph = self.runbook.graph
        self._compared = None  # the writes below change what Iru holds: verify reads afresh
        self._applied = True
        forget(self.runbook)
        sp, job, schema = self._read()
        base = f"servicePrincipals/{sp['id']}/synchronization/jobs/{job['id']}"
        external = {
            c.target.split()[0]: self.expected[c.target.split()[0]]
            for c in changes
            if c.action == "map"
        }
        if external:
            graph.put(schema_path(sp["id"], job["id"]), with_changes(schema, external_id=external))
        before = _last_cycle(graph.get(base))
        graph.post(f"{base}/pause")
        graph.post(f"{base}/start")
        wait_for_cycle(self, sp["id"], job["id"], before, self.timeout)
        return list(changes)

    def verify(self) -> list[CheckResult]:
        sp, job, schema = self._read()
        checks = []
        remaining = self._mapping_changes(schema)
        if remaining:
            checks.append(
                CheckResult.failed(
                    "externalId comes from objectId for users and groups",
                    "; ".join(c.line() for c in remaining),
                    "Run this step again.",
                    self.name,
                )
            )
        else:
            checks.append(
                CheckResult.passed(
                    "externalId comes from objectId for users and groups", "[objectId]"
                )
            )
        # Nothing applied and the mapping as plan saw it: Iru is as plan compared it.
        result = self._compare(sp, job, schema, reuse=not (self._applied or remaining))
        expected = result.expected
        stale: list[Finding] = [f for f in result.findings if f.kind in _EXTERNAL_ID | _MISSING]
        if stale:
            checks.append(
                CheckResult.failed(
                    "Iru carries objectId as externalId",
                    f"{len(stale)} difference(s): "
                    + "; ".join(f"{f.object}: {f.found}" for f in stale[:5]),
                    "Wait for the next cycle or run this step again; 07-verify-provisioning shows the provisioning log errors.",
                    self.name,
                )
            )
        else:
            count = len(expected.users) + len(expected.groups)
            checks.append(
                CheckResult.passed(
                    "Iru carries objectId as externalId", f"{count} provisioned object(s) checked"
                )
            )
        return checks

    # -- dry run -----------------------------------------------------------------------------
    def plan_fresh(self, state: PlannedState, exc: StepError) -> list[Change]:
        """No app or job yet: the mapping is planned from the template's default with page
        04's planned edits; Iru's externalIds cannot be compared yet, so only a mapping change
        leads to the pause and start."""
        view = self.planned_view(state, exc)
        planned = (view.sp, view.job or state.job_view(), view.schema)
        with self.planned_reads(
            _read=lambda: planned,
            _compare=lambda *args, **kwargs: Reconciliation(ExpectedState()),
        ):
            changes = self.plan()
        self.not_read(
            "whether Iru carries objectId as externalId",
            "the app and its job are only planned; the real run compares Iru with Entra after "
            "page 07's cycle and pauses and starts provisioning only if old values remain",
        )
        return changes
