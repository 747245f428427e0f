"""01-connect: sign in to Entra, reach Graph, and pre-flight the Iru SCIM endpoint.

Nothing is written. The step fails early, with a named cause, so that an admin does not find
out about a wrong token only when provisioning quarantines an hour later.
"""

from __future__ import annotations

from typing import ClassVar

from .._auth import auth_method, sign_in_kind
from .._checks import Change, CheckResult, Status
from .._context import Runbook
from .._exceptions import GraphError, PreflightError, RunbookError, SignInError
from .._granted import read_granted
from .._permissions import ADMIN_ROLES, PERMISSIONS, grant_instructions
from ._base import Step

__all__ = ["Connect", "permission_checks"]


def permission_checks(rb: Runbook) -> list[CheckResult]:
    """Compare the identity's Graph permissions with the runbook's table, before any write.

    A missing required permission fails with the pages it blocks and how to grant it; a
    missing optional one warns; grants that cannot be read at all give a warning (a later
    403 still names the permission from the same table).
    """
    kind = sign_in_kind(rb.settings)
    granted = read_granted(rb.graph, kind, rb.settings.client_id)
    notes = " ".join(granted.notes)
    if granted.source == "none":
        return [
            CheckResult.warned(
                "Microsoft Graph permissions",
                f"could not be read: {notes}",
                "Check them by hand against docs/settings.md; a page that lacks one stops "
                "with HTTP 403 naming it.",
            )
        ]
    checks: list[CheckResult] = []
    missing = [p for p in PERMISSIONS if not p.satisfied_by(set(granted.names))]
    for p in missing:
        pages = ", ".join(p.pages)
        detail = f"missing: needed by page(s) {pages} to {p.why}"
        fix = grant_instructions(p, kind, rb.settings.client_id)
        title = f"Permission {p.name}"
        if p.required:
            checks.append(CheckResult.failed(title, detail, fix, "00-overview"))
        else:
            checks.append(CheckResult.warned(title, detail, fix))
    held = [p.name for p in PERMISSIONS if p not in missing]
    if not any(p.required for p in missing):
        source = "from Graph" if granted.source == "graph" else "from the access token"
        checks.insert(
            0,
            CheckResult.passed(
                "Microsoft Graph permissions", f"{', '.join(held)} granted ({source})"
            ),
        )
    if kind == "delegated":
        if not granted.roles_known:
            checks.append(
                CheckResult.warned(
                    "Directory role to configure provisioning",
                    "your directory roles could not be read",
                    f"Make sure you hold one of: {', '.join(ADMIN_ROLES)}.",
                )
            )
        elif not granted.roles & set(ADMIN_ROLES):
            checks.append(
                CheckResult.failed(
                    "Directory role to configure provisioning",
                    f"you hold {', '.join(sorted(granted.roles)) or 'no directory role'}",
                    f"Ask for one of: {', '.join(ADMIN_ROLES)} (Entra admin center > Roles "
                    "and administrators), or sign in app-only with RUNBOOK_AUTH=client-secret.",
                    "00-overview",
                )
            )
        else:
            role = sorted(granted.roles & set(ADMIN_ROLES))[0]
            checks.append(CheckResult.passed("Directory role to configure provisioning", role))
    return checks


class Connect(Step):
    """Read-only checks: sign-in, Graph access and the Iru SCIM pre-flight."""

    name: ClassVar[str] = "01-connect"
    title: ClassVar[str] = "Connect: sign in to Entra ID and pre-flight Iru SCIM"

    def plan(self) -> list[Change]:
        return []

    def apply(self, changes: list[Change]) -> list[Change]:
        return []

    def dry_run_checks(self, planned: list[Change]) -> list[CheckResult]:
        """Sign-in, Graph, permissions and the SCIM pre-flight only read: a dry run runs them
        all, so a wrong secret, an http:// URL or a missing permission fail it as a real run."""
        return self.verify()

    def verify(self) -> list[CheckResult]:
        checks: list[CheckResult] = []
        rb = self.runbook
        try:
            rb.graph.access_token()
            checks.append(
                CheckResult.passed(
                    "Signed in to Entra ID",
                    f"tenant {rb.settings.tenant_id}, {auth_method(rb.settings)} sign-in",
                )
            )
        except SignInError as exc:
            checks.append(
                CheckResult.failed("Signed in to Entra ID", exc.message, exc.remediation, exc.hint)
            )
            return checks
        try:
            rb.graph.get("servicePrincipals", **{"$top": "1", "$select": "id"})
            checks.append(
                CheckResult.passed("Microsoft Graph answers", "service principals are readable")
            )
        except GraphError as exc:
            checks.append(
                CheckResult.failed(
                    "Microsoft Graph answers", exc.message, exc.remediation, "01-connect"
                )
            )
        if checks[-1].status is Status.PASS:
            checks += permission_checks(rb)
        try:
            result = rb.scim.preflight()
            checks.append(
                CheckResult.passed(
                    "Iru SCIM endpoint answers like Entra expects",
                    f"user and group lookups on {result.url} returned empty ListResponses",
                )
            )
        except PreflightError as exc:
            checks.append(
                CheckResult.failed(
                    f"Iru SCIM pre-flight ({exc.kind.replace('_', ' ')})",
                    exc.message,
                    exc.remediation,
                    exc.hint,
                )
            )
        except RunbookError as exc:
            checks.append(
                CheckResult.failed("Iru SCIM pre-flight", exc.message, exc.remediation, exc.hint)
            )
        return checks
