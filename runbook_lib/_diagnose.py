"""Turn provisioning errors into a sentence an admin can act on.

Entra reports problems as error codes in the job's quarantine block and in provisioning log
entries. The table below maps the codes (and tell-tale phrases) admins meet with Iru Endpoint
to a fix; anything unknown still gets the original message and a pointer to the logs.

Health is judged from the tenant as it is now: the job's status, its last cycle, and the
objects that still differ in Iru. The provisioning log keeps failures for weeks, so
:func:`split_log_failures` tells a failure that still matters from one a later cycle fixed,
which is history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "KNOWN_ERRORS",
    "describe_log_failure",
    "entry_level_errors",
    "explain",
    "explain_job_status",
    "split_log_failures",
    "transient_failures",
]

TRANSIENT_CODES = frozenset(
    {
        "TooManyRequests",
        "ServiceUnavailable",
        "InternalServerError",
        "Timeout",
        "Unavailable",
        "WebExceptionProtocolError",  # the connection dropped before Iru answered
    }
)
"""Provisioning-log error codes for an Iru that was busy or down for a moment (HTTP 429, 5xx,
no answer). Entra holds such objects for retry (escrow) and sends them again on its next
cycle; nothing in the tenant or the mappings needs fixing."""

KNOWN_ERRORS: tuple[tuple[str, str], ...] = (
    # First match wins: "…CredentialValidationUnavailable" (Iru did not answer) must not read
    # as "…CredentialValidationFailure" (Iru refused the token).
    (
        "CredentialValidationUnavailable",
        "Iru did not answer the credential check (it was unavailable or throttling), so the "
        "token was not judged: wait a few minutes and start provisioning again; if it persists, "
        "run 01-connect, whose pre-flight names the cause.",
    ),
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
        # Before the error codes a quarantine message also carries (TooManyRequests...).
        "EncounteredEscrowProportionThreshold",
        "Most objects failed in one cycle, so Entra quarantined the job. If the provisioning "
        "logs show Iru throttling or unavailable (429, 503), wait until Iru answers again and "
        "run this page again: it restarts the job. Otherwise fix the cause the logs name first.",
    ),
    (
        "TooManyRequests",
        "Iru throttled the requests: nothing to do, Entra retries on the next cycle.",
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


def _when(entry: dict[str, Any]) -> datetime | None:
    text = str(entry.get("activityDateTime") or "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _status(entry: dict[str, Any]) -> str:
    return str((entry.get("provisioningStatusInfo") or {}).get("status") or "")


def _subject_id(entry: dict[str, Any]) -> str:
    return str((entry.get("sourceIdentity") or {}).get("id") or "")


def split_log_failures(
    entries: list[dict[str, Any]],
    job: dict[str, Any],
    differing: set[str],
    compared: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The failed provisioning-log entries, as (current, history); both newest first.

    ``entries`` are newest first (``$orderby=activityDateTime desc``); ``differing`` holds
    the Entra object ids that still differ in Iru. The log keeps every failure for 30 days,
    so a failure is only *current* when the tenant still shows it:

    * its object still differs in Iru; or
    * it happened in the job's last cycle (at or after ``lastExecution.timeBegan``), that
      cycle did not succeed (``EntryLevelErrors`` or ``Failed``), no later entry shows the
      object provisioned (provision on demand, for example), and it is not a transient
      failure (:data:`TRANSIENT_CODES`) of an object in ``compared`` (the ids just compared
      with Iru): such an object matches Iru now, and Entra retries the request by itself.

    Every other failure was dealt with by a later cycle or a later success: history.
    """
    last = ((job.get("status") or {}).get("lastExecution")) or {}
    began = _when({"activityDateTime": last.get("timeBegan")})
    cycle_failed = last.get("state") in ("EntryLevelErrors", "Failed")
    current: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if _status(entry) != "failure":
            continue
        subject, when = _subject_id(entry), _when(entry)
        fixed_later = any(
            _status(newer) == "success"
            and _subject_id(newer) == subject
            and (when is None or (_when(newer) or when) >= when)
            for newer in entries[:index]
        )
        in_last_cycle = began is None or (when is not None and when >= began)
        settled = subject in compared and transient_failures([entry]) is not None
        if (subject and subject in differing) or (
            not fixed_later and not settled and in_last_cycle and (cycle_failed or began is None)
        ):
            current.append(entry)
        else:
            history.append(entry)
    return current, history


def describe_log_failure(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    """(when, object, action, error) of a provisioning-log entry, for a table or a line."""
    when = _when(entry)
    shown = when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "unknown time"
    who = (entry.get("sourceIdentity") or {}).get("displayName") or _subject_id(entry)
    info = (entry.get("provisioningStatusInfo") or {}).get("errorInformation") or {}
    error = f"{info.get('errorCode', '')} {info.get('reason', '')}".strip()
    return shown, str(who or "an object"), str(entry.get("provisioningAction") or ""), error


def transient_failures(entries: list[dict[str, Any]]) -> dict[str, int] | None:
    """Error code -> count when every entry in ``entries`` failed for a transient reason (see
    :data:`TRANSIENT_CODES`), else None (also for no entries): one more cycle may fix the
    former; the latter need the admin."""
    counts: dict[str, int] = {}
    for entry in entries:
        info = (entry.get("provisioningStatusInfo") or {}).get("errorInformation") or {}
        code = str(info.get("errorCode") or "")
        if code not in TRANSIENT_CODES:
            return None
        counts[code] = counts.get(code, 0) + 1
    return counts or None
