"""01-connect: sign in to Entra, reach Graph, and pre-flight the Iru SCIM endpoint.

Nothing is written. The step fails early, with a named cause, so that an admin does not find
out about a wrong token only when provisioning quarantines an hour later.
"""

from __future__ import annotations

from typing import ClassVar

from .._auth import get_token
from .._checks import Change, CheckResult
from .._exceptions import GraphError, PreflightError, RunbookError, SignInError
from ._base import Step

__all__ = ["Connect"]


class Connect(Step):
    """Read-only checks: sign-in, Graph access and the Iru SCIM pre-flight."""

    name: ClassVar[str] = "01-connect"
    title: ClassVar[str] = "Connect: sign in to Entra ID and pre-flight Iru SCIM"

    def plan(self) -> list[Change]:
        return []

    def apply(self, changes: list[Change]) -> list[Change]:
        return []

    def verify(self) -> list[CheckResult]:
        checks: list[CheckResult] = []
        rb = self.runbook
        try:
            get_token(rb.credential, rb.settings.graph_scope)
            checks.append(
                CheckResult.passed("Signed in to Entra ID", f"tenant {rb.settings.tenant_id}")
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
