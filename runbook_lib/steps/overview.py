"""00-overview: are the prerequisites in place? Reads settings only, calls nothing.

Secrets are reported as present or missing, never shown.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from .._auth import auth_method, sign_in_kind, sign_in_problems
from .._checks import Change, CheckResult
from .._exceptions import ConfigurationError
from .._settings import require_secret
from ._base import Step

__all__ = ["Prerequisites"]


class Prerequisites(Step):
    """Check the RUNBOOK_* settings an admin must gather before step 01."""

    name: ClassVar[str] = "00-overview"
    title: ClassVar[str] = "What you need first"

    def plan(self) -> list[Change]:
        return []

    def apply(self, changes: list[Change]) -> list[Change]:
        return []

    def dry_run_checks(self, planned: list[Change]) -> list[CheckResult]:
        """The settings checks only read, so a dry run runs them all, as a real run does."""
        return self.verify()

    def verify(self) -> list[CheckResult]:
        s = self.runbook.settings
        checks: list[CheckResult] = []

        def need(value: str, title: str, detail: str, fix: str) -> None:
            if value:
                checks.append(CheckResult.passed(title, detail))
            else:
                checks.append(CheckResult.failed(title, "not set", fix, self.name))

        method = auth_method(s)
        problems = sign_in_problems(s)
        for problem, fix in problems:
            checks.append(CheckResult.failed("Sign-in settings", problem, fix, self.name))
        if not problems:
            who = (
                f"app registration {s.client_id}"
                if sign_in_kind(s) == "application"
                else f"you, through {'app ' + s.client_id if s.client_id else 'Microsoft Graph Command Line Tools'}"
            )
            checks.append(
                CheckResult.passed(
                    "Sign-in method (RUNBOOK_AUTH)",
                    f"{method} as {who}, tenant {s.tenant_id}",
                )
            )
        scheme = urlsplit(s.scim_url).scheme
        if not s.scim_url:
            checks.append(
                CheckResult.failed(
                    "Iru SCIM API URL (RUNBOOK_SCIM_URL)",
                    "not set",
                    "In Iru Endpoint, add a SCIM integration and copy the SCIM API URL from View Details.",
                    self.name,
                )
            )
        elif scheme != "https":
            checks.append(
                CheckResult.failed(
                    "Iru SCIM API URL (RUNBOOK_SCIM_URL)",
                    f"{s.scim_url} is not https://",
                    "Use the https:// URL from Iru's View Details; Entra refuses plain http.",
                    "01-connect",
                )
            )
        else:
            checks.append(CheckResult.passed("Iru SCIM API URL (RUNBOOK_SCIM_URL)", s.scim_url))
        try:
            require_secret(s, "scim_token")
            checks.append(
                CheckResult.passed("Iru SCIM token (RUNBOOK_SCIM_TOKEN)", "available (not shown)")
            )
        except ConfigurationError as exc:
            checks.append(
                CheckResult.failed(
                    "Iru SCIM token (RUNBOOK_SCIM_TOKEN)", exc.message, exc.remediation, self.name
                )
            )
        checks.append(CheckResult.passed("Enterprise app name (RUNBOOK_APP_NAME)", s.app_name))
        checks.append(CheckResult.passed("Graph endpoint", s.graph_url))
        if s.ca_bundle is not None:
            checks.append(CheckResult.passed("Extra CA bundle (RUNBOOK_CA_BUNDLE)", "configured"))
        return checks
