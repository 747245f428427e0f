"""Turn provisioning errors into a sentence an admin can act on.

Entra reports problems as error codes in the job's quarantine block and in provisioning log
entries. The table below maps the codes (and tell-tale phrases) admins meet with Iru Endpoint
to a fix; anything unknown still gets the original message and a pointer to the logs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KNOWN_ERRORS", "entry_level_errors", "explain", "explain_job_status"]

KNOWN_ERRORS: tuple[tuple[str, str], ...] = (
    (
        "CredentialValidation",
        "Iru refused the saved token: rotate or copy the SCIM token in Iru Endpoint, save it with "
        "03-configure-provisioning (force_token_update=True), then start provisioning again.",
    ),
    (
        "InvalidCredentials",
        "Iru refused the saved token or Tenant URL: check both with 01-connect, save them with "
        "03-configure-provisioning, then start provisioning again.",
    ),
    (
        "HTTP/404",
        "The Tenant URL is wrong (web-app host, missing /api/v1/scim, or the wrong region): copy "
        "the SCIM API URL from Iru's View Details and save it with 03-configure-provisioning.",
    ),
    (
        "EntryConflict",
        "A user with the same userName already exists in Iru (for example from a native Entra "
        "directory integration or an older SCIM app): make userName unique or remove the copy.",
    ),
    (
        "DuplicateTargetEntries",
        "More than one Iru user matches: remove the duplicate in Iru, then restart provisioning.",
    ),
    (
        "MandatoryFieldsMissing",
        "A required attribute is empty in Entra (for example mail or userPrincipalName): fill it "
        "in or fix the attribute mapping.",
    ),
    (
        "NotEffectivelyEntitled",
        "The assignment record is stale: remove the user or group from the app and assign it again.",
    ),
    (
        "TooManyRequests",
        "Iru throttled the requests: nothing to do, Entra retries on the next cycle.",
    ),
    (
        "EncounteredEscrowProportionThreshold",
        "Most requests failed, so Entra quarantined the job: read the failing entries in the "
        "provisioning logs, fix the cause, then restart provisioning.",
    ),
)


def explain(*texts: str) -> str:
    """The fix for the first known error code or phrase found in ``texts``."""
    blob = " ".join(t for t in texts if t)
    for needle, fix in KNOWN_ERRORS:
        if needle.lower() in blob.lower():
            return fix
    return (
        "Open the provisioning logs (07-verify-provisioning shows the failing entries) and fix "
        "the cause they name, then restart provisioning."
    )


def explain_job_status(job: dict[str, Any]) -> tuple[str, str] | None:
    """(problem, fix) when the job is quarantined or its last run failed, else None.

    Quarantine is ``status.code == "Quarantine"``: a paused job can still carry the
    ``quarantine`` block of an earlier quarantine (Microsoft's job-get example shows one),
    and that is history, not the job's state.
    """
    status = job.get("status") or {}
    if status.get("code") == "Quarantine":
        q = status.get("quarantine") or {}
        error = q.get("error") or {}
        problem = (
            f"the job is in quarantine ({q.get('reason', 'unknown reason')}): "
            f"{error.get('code', '')} {error.get('message', '')}".strip()
        )
        return problem, explain(
            error.get("code", ""), error.get("message", ""), q.get("reason", "")
        )
    last = status.get("lastExecution") or {}
    if last.get("state") == "Failed":
        error = last.get("error") or {}
        problem = (
            f"the last cycle failed: {error.get('code', '')} {error.get('message', '')}".strip()
        )
        return problem, explain(error.get("code", ""), error.get("message", ""))
    return None


def entry_level_errors(job: dict[str, Any]) -> str | None:
    """A sentence when the last cycle ended ``EntryLevelErrors`` (some objects failed), else None.

    The job itself is healthy then; the counts come from the task execution Microsoft
    documents (``countEntitled``, ``countExported``, ``countEscrowed``).
    """
    last = ((job.get("status") or {}).get("lastExecution")) or {}
    if last.get("state") != "EntryLevelErrors":
        return None
    counts = [
        f"{label} {last[key]}"
        for key, label in (
            ("countEntitled", "in scope"),
            ("countExported", "exported"),
            ("countEscrowed", "failed and held for retry"),
        )
        if isinstance(last.get(key), int)
    ]
    error = last.get("error") or {}
    detail = f" ({', '.join(counts)})" if counts else ""
    code = f": {error.get('code')} {error.get('message', '')}".rstrip() if error.get("code") else ""
    return f"the last cycle finished with errors on some objects{detail}{code}"
