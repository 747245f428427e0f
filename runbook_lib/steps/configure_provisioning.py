"""03-configure-provisioning: the provisioning job with Bearer authentication.

Mirrors the portal's *Provisioning > New configuration > Bearer authentication*: a job made
from the ``scim`` template, the Tenant URL (``BaseAddress``) and Secret token (``SecretToken``)
saved, and *Test connection* (``validateCredentials`` on the job) passed **before** they are
saved, so a wrong token never reaches the tenant. The order is the one Microsoft documents for
Graph: create the job, validate the credentials on it, then PUT the secrets.

The saved token cannot be read back (Graph masks it), so the step decides whether to re-save it
by running Test connection with the saved credentials: if they still work and the URL matches,
nothing is written. Reading the saved secrets is not documented; where Graph refuses it or
masks the URL too, Test connection with the saved credentials decides alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .._checks import Change, CheckResult
from .._exceptions import GraphAuthError, GraphError, GraphNotFound, RunbookError, StepError
from .._planned import PlannedState, secrets_after_save
from .._settings import require_secret
from .._tenant import (
    SCIM_TEMPLATE_ID,
    SavedSecrets,
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
    # Graph prefixes every answer with "Error validating credentials", so an unavailable or
    # throttling Iru is told apart first: it did not refuse the token.
    if any(code in text for code in ("429", "500", "502", "503", "504", "unavailable")):
        return (
            "Iru did not answer the Test connection (it was unavailable or throttling), so the "
            "token was not judged: try again in a few minutes; nothing was saved."
        )
    if any(
        word in text for word in ("401", "403", "unauthori", "invalid credentials", "invalid token")
    ):
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
        except GraphAuthError:
            raise  # a missing permission is not a failing token
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
        if job is None:
            return [
                Change("create", _JOB, f"from the '{SCIM_TEMPLATE_ID}' template"),
                Change("test", "connection to Iru SCIM", "with RUNBOOK_SCIM_URL and the token"),
                Change("set", _URL, f"(not set) -> {url}"),
                Change("set", _TOKEN, "not saved yet"),
            ]
        secrets = read_secrets(self.runbook.graph, sp["id"])
        if not secrets.readable:
            return self._plan_unreadable(sp["id"], job["id"], url, secrets.why)
        changes: list[Change] = []
        saved_url = secrets.get("BaseAddress")
        if saved_url.rstrip("/") != url.rstrip("/"):
            changes.append(Change("set", _URL, f"{saved_url} -> {url}"))
            changes.append(Change("set", _TOKEN, "saved again with the new Tenant URL"))
        elif not secrets.get("SecretToken"):
            changes.append(Change("set", _TOKEN, "not saved yet"))
        elif self.force_token_update:
            changes.append(Change("set", _TOKEN, "replaced on request (force_token_update)"))
        else:
            works, why = self._saved_credentials_work(sp["id"], job["id"])
            if not works:
                changes.append(
                    Change("set", _TOKEN, f"the saved token fails Test connection: {why}")
                )
        if changes:
            changes.insert(0, Change("test", "connection to Iru SCIM", "before saving"))
        return changes

    def _plan_unreadable(self, sp_id: str, job_id: str, url: str, why: str) -> list[Change]:
        """Graph would not show the saved values: decide from Test connection instead."""
        if self.force_token_update:
            reason = "replaced on request (force_token_update)"
        else:
            works, failure = self._saved_credentials_work(sp_id, job_id)
            if works:
                self.notes.append(
                    f"{why}, so the saved Tenant URL cannot be compared with {url}; Test "
                    "connection with the saved credentials passed, so they were left as they "
                    "are. Run with force_token_update=True to save RUNBOOK_SCIM_URL and the "
                    "token again."
                )
                return []
            reason = f"the saved credentials fail Test connection: {failure}"
        return [
            Change("test", "connection to Iru SCIM", "before saving"),
            Change("set", _URL, url),
            Change("set", _TOKEN, reason),
        ]

    def apply(self, changes: list[Change]) -> list[Change]:
        """The order of Microsoft's "configure provisioning using Graph" walkthrough: create
        the job, Test connection on that job with the new credentials, then save them."""
        graph = self.runbook.graph
        sp = self._sp()
        sp_id = sp["id"]
        credentials = self._credentials()
        applied: list[Change] = []
        # 1. The job (a job with nothing saved is harmless: the next run completes it).
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
        if not any(c.target in (_URL, _TOKEN) for c in changes):
            return applied
        # 2. Test connection on the job: nothing is saved when Iru refuses the URL or token.
        try:
            graph.wait_for(
                lambda: graph.post(
                    f"servicePrincipals/{sp_id}/synchronization/jobs/{job['id']}"
                    "/validateCredentials",
                    {"useSavedCredentials": False, "credentials": credentials},
                ),
                what=f"job {job['id']} to accept Test connection",
                progress=self.runbook.progress,
            )
        except GraphError as exc:
            made = " The provisioning job was created; it holds no credentials." if applied else ""
            raise StepError(
                f"Test connection failed, so the Tenant URL and token were not saved: "
                f"{exc.graph_message}{made}",
                test_connection_remediation(exc.graph_message),
                hint="01-connect",
            ) from exc
        applied.append(Change("test", "connection to Iru SCIM", "passed"))
        # 3. Secrets: PUT replaces the whole set; save_secrets keeps the other saved values.
        values = {c["key"]: c["value"] for c in credentials}
        save_secrets(
            graph,
            sp_id,
            {},
            token=values["SecretToken"],
            base_address=values["BaseAddress"],
        )
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
        saved = secrets.get("BaseAddress")
        if not secrets.readable:
            checks.append(
                CheckResult.warned(
                    "Tenant URL saved",
                    f"{secrets.why}; the Test connection below proves the saved URL and token "
                    "reach a SCIM endpoint that accepts the token",
                    "Compare the Tenant URL on the app's Provisioning page with RUNBOOK_SCIM_URL.",
                )
            )
        elif saved.rstrip("/") == url.rstrip("/"):
            checks.append(CheckResult.passed("Tenant URL saved", saved))
            if secrets.get("SecretToken"):
                checks.append(
                    CheckResult.passed(
                        "Secret token saved", "present (Graph never returns its value)"
                    )
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
        else:
            checks.append(
                CheckResult.failed(
                    "Tenant URL saved",
                    f"saved value is {saved or '(none)'}",
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

    # -- dry run -----------------------------------------------------------------------------
    def plan_fresh(self, state: PlannedState, exc: StepError) -> list[Change]:
        """No app yet (02 only planned it): plan for the new app, which has no job."""
        view = self.planned_view(state, exc, job=False)
        with self.planned_reads(_sp=lambda: view.sp, _job=lambda sp_id: None):
            changes = self.plan()
        self.not_read(
            "the provisioning job and its saved Tenant URL and token",
            "the app does not exist yet, so they are planned for a new app: no job, nothing saved",
        )
        return changes

    def planned_effects(self, planned: list[Change]) -> dict[str, Any]:
        """A new job, with the secrets :func:`~runbook_lib._tenant.save_secrets` saves in it."""
        if not any(c.action == "create" and c.target == _JOB for c in planned):
            return {}
        effects: dict[str, Any] = {"job": {"templateId": SCIM_TEMPLATE_ID}}
        if any(c.target in (_URL, _TOKEN) for c in planned):
            new_job = SavedSecrets({}, False, "a new job has no secrets")
            effects["secrets"] = secrets_after_save(
                new_job, {}, base_address=self.runbook.settings.scim_url
            )
        return effects

    def dry_run_checks(self, planned: list[Change]) -> list[CheckResult]:
        """Before saving, a real run tests the connection; a dry run probes the same URL and
        token with the SCIM pre-flight (what Test connection sends), writing nothing."""
        if not any(c.action == "test" for c in planned):
            return []
        title = "Test connection to Iru SCIM (pre-flight, nothing saved)"
        try:
            result = self.runbook.scim.preflight()
        except RunbookError as exc:
            return [
                CheckResult.failed(
                    title,
                    "Test connection would fail, so the Tenant URL and token would not be "
                    f"saved: {exc.message}",
                    exc.remediation or test_connection_remediation(exc.message),
                    exc.hint or "01-connect",
                )
            ]
        return [CheckResult.passed(title, f"{result.url} answers like Entra expects")]
