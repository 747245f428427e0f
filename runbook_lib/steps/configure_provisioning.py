"""03-configure-provisioning: the provisioning job with Bearer authentication.

Mirrors the portal's *Provisioning > New configuration > Bearer authentication*: a job made
from the ``scim`` template, the Tenant URL (``BaseAddress``) and Secret token (``SecretToken``)
saved, and *Test connection* (``validateCredentials``) passed **before** anything is saved, so
a wrong token never reaches the tenant.

The saved token cannot be read back (Graph masks it), so the step decides whether to re-save it
by running Test connection with the saved credentials: if they still work and the URL matches,
nothing is written.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .._checks import Change, CheckResult
from .._exceptions import GraphError, GraphNotFound, StepError
from .._settings import require_secret
from .._tenant import (
    SCIM_TEMPLATE_ID,
    find_scim_job,
    read_secrets,
    require_app,
    save_secrets,
)
from ._base import Step

__all__ = ["ConfigureProvisioning", "test_connection_remediation"]

_JOB = "provisioning job"
_URL = "Tenant URL (BaseAddress)"
_TOKEN = "Secret token (SecretToken)"


def test_connection_remediation(message: str) -> str:
    """A fix for a failed Test connection, judged from Graph's message."""
    text = message.lower()
    if "401" in text or "403" in text or "credential" in text or "unauthori" in text:
        return (
            "Iru refused the token: copy it again (or rotate it) in Iru Endpoint > Integrations "
            "> your SCIM integration and set RUNBOOK_SCIM_TOKEN."
        )
    if "404" in text or "not found" in text:
        return (
            "Nothing serves SCIM at the Tenant URL: copy the SCIM API URL from Iru's View "
            "Details (https://<subdomain>.api.kandji.io/api/v1/scim) into RUNBOOK_SCIM_URL."
        )
    if "https" in text:
        return "Use the https:// SCIM API URL; Entra refuses plain http."
    return "Run 01-connect: its pre-flight names the cause of a failing Test connection."


class ConfigureProvisioning(Step):
    """Create the scim job and save Tenant URL + Secret token after a passing Test connection."""

    name: ClassVar[str] = "03-configure-provisioning"
    title: ClassVar[str] = "Configure provisioning (Bearer authentication)"

    def __init__(self, runbook: Any, *, force_token_update: bool = False) -> None:
        super().__init__(runbook)
        self.force_token_update = force_token_update

    # -- helpers ----------------------------------------------------------------------------
    def _sp(self) -> dict[str, Any]:
        return require_app(self.runbook.graph, self.runbook.app_name)

    def _job(self, sp_id: str) -> dict[str, Any] | None:
        graph = self.runbook.graph
        result: dict[str, Any] | None = graph.wait_for(
            lambda: find_scim_job(graph, sp_id) or {},
            what="the app's synchronization jobs",
            progress=self.runbook.progress,
        )
        return result or None

    def _credentials(self) -> list[dict[str, str]]:
        token = require_secret(self.runbook.settings, "scim_token").get_secret_value()
        return [
            {"key": "BaseAddress", "value": self.runbook.settings.scim_url},
            {"key": "SecretToken", "value": token},
        ]

    def _saved_credentials_work(self, sp_id: str, job_id: str) -> tuple[bool, str]:
        try:
            self.runbook.graph.post(
                f"servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/validateCredentials",
                {"useSavedCredentials": True, "credentials": []},
            )
            return True, ""
        except GraphError as exc:
            return False, exc.graph_message

    def _require_url(self) -> str:
        url = self.runbook.settings.scim_url
        if not url:
            raise StepError(
                "RUNBOOK_SCIM_URL is not set.",
                "Copy the SCIM API URL from Iru Endpoint (integration > View Details).",
                hint="00-overview",
            )
        return url

    # -- contract ------------------------------------------------------------------------------
    def plan(self) -> list[Change]:
        url = self._require_url()
        sp = self._sp()
        job = self._job(sp["id"])
        changes: list[Change] = []
        if job is None:
            changes.append(Change("create", _JOB, f"from the '{SCIM_TEMPLATE_ID}' template"))
        secrets = read_secrets(self.runbook.graph, sp["id"])
        saved_url = secrets.get("BaseAddress", "")
        if saved_url.rstrip("/") != url.rstrip("/"):
            changes.append(Change("set", _URL, f"{saved_url or '(not set)'} -> {url}"))
        if not secrets.get("SecretToken"):
            changes.append(Change("set", _TOKEN, "not saved yet"))
        elif self.force_token_update:
            changes.append(Change("set", _TOKEN, "replaced on request (force_token_update)"))
        elif job is not None and saved_url.rstrip("/") == url.rstrip("/"):
            works, why = self._saved_credentials_work(sp["id"], job["id"])
            if not works:
                changes.append(
                    Change("set", _TOKEN, f"the saved token fails Test connection: {why}")
                )
        elif job is not None:
            changes.append(Change("set", _TOKEN, "saved again with the new Tenant URL"))
        if any(c.target == _URL for c in changes) and not any(c.target == _TOKEN for c in changes):
            changes.append(Change("set", _TOKEN, "saved again with the new Tenant URL"))
        return changes

    def apply(self, changes: list[Change]) -> list[Change]:
        graph = self.runbook.graph
        sp = self._sp()
        sp_id = sp["id"]
        credentials = self._credentials()
        # 1. Test connection first: nothing is written when Iru refuses the URL or token.
        try:
            graph.post(
                f"servicePrincipals/{sp_id}/synchronization/jobs/validateCredentials",
                {
                    "useSavedCredentials": False,
                    "templateId": SCIM_TEMPLATE_ID,
                    "credentials": credentials,
                },
            )
        except GraphError as exc:
            raise StepError(
                f"Test connection failed, so nothing was saved: {exc.graph_message}",
                test_connection_remediation(exc.graph_message),
                hint="01-connect",
            ) from exc
        applied: list[Change] = [Change("test", "connection to Iru SCIM", "passed")]
        # 2. The job.
        job = self._job(sp_id)
        if job is None:
            job = graph.post(
                f"servicePrincipals/{sp_id}/synchronization/jobs", {"templateId": SCIM_TEMPLATE_ID}
            )
            job_id = job["id"]
            graph.wait_for(
                lambda: graph.get(f"servicePrincipals/{sp_id}/synchronization/jobs/{job_id}"),
                what=f"job {job_id}",
                progress=self.runbook.progress,
            )
            applied.append(Change("create", _JOB, job_id))
        # 3. Secrets: PUT replaces the whole set; save_secrets keeps the other saved values.
        values = {c["key"]: c["value"] for c in credentials}
        save_secrets(graph, sp_id, {"BaseAddress": values["BaseAddress"]}, values["SecretToken"])
        applied += [c for c in changes if c.target in (_URL, _TOKEN)]
        return applied

    def verify(self) -> list[CheckResult]:
        graph = self.runbook.graph
        url = self._require_url()
        sp = self._sp()
        checks: list[CheckResult] = []
        job = self._job(sp["id"])
        if job is None:
            return [
                CheckResult.failed(
                    "Provisioning job exists",
                    "the app has no scim job",
                    "Run this step again.",
                    self.name,
                )
            ]
        checks.append(
            CheckResult.passed(
                "Provisioning job exists", f"{job['id']} (template {job.get('templateId')})"
            )
        )
        secrets = read_secrets(graph, sp["id"])
        saved = secrets.get("BaseAddress", "")
        if saved.rstrip("/") == url.rstrip("/"):
            checks.append(CheckResult.passed("Tenant URL saved", saved))
        else:
            checks.append(
                CheckResult.failed(
                    "Tenant URL saved",
                    f"saved value is {saved or '(none)'}",
                    "Run this step again.",
                    self.name,
                )
            )
        if secrets.get("SecretToken"):
            checks.append(
                CheckResult.passed("Secret token saved", "present (Graph never returns its value)")
            )
        else:
            checks.append(
                CheckResult.failed(
                    "Secret token saved",
                    "no SecretToken is saved",
                    "Run this step again.",
                    self.name,
                )
            )
        try:
            works, why = self._saved_credentials_work(sp["id"], job["id"])
        except GraphNotFound:
            works, why = False, "job not readable yet"
        if works:
            checks.append(
                CheckResult.passed("Test connection with the saved credentials", "succeeded")
            )
        else:
            checks.append(
                CheckResult.failed(
                    "Test connection with the saved credentials",
                    why,
                    test_connection_remediation(why),
                    "01-connect",
                )
            )
        return checks
