"""Every error runbook_lib raises, in one place.

An admin reads these messages in a notebook, so each error carries two sentences: what went
wrong (``message``) and what to do about it (``remediation``). ``hint`` optionally names the
runbook page that fixes the problem; notebooks render it as a HINT link.

The tree::

    RunbookError
    ├── ConfigurationError      a setting is missing or malformed (names the RUNBOOK_* variable)
    ├── SignInError             Entra ID refused to issue a token
    ├── GraphError              Microsoft Graph answered with an error (status, code, request id)
    │   ├── GraphAuthError      401 / 403: the token or its permissions are wrong
    │   ├── GraphNotFound       404: the object does not exist (yet)
    │   ├── GraphThrottled      429 / 503 / 504 retries were exhausted
    │   └── GraphOutcomeUnknown a create's answer was lost; it was not sent again blindly
    ├── ScimError               the Iru SCIM endpoint answered unexpectedly
    │   └── PreflightError      the pre-flight probe failed; ``kind`` says why
    ├── StepError               a runbook step cannot continue as asked
    │   └── AmbiguousAppError   several enterprise apps share the display name
    ├── ConsistencyTimeout      an object Graph just created never became readable
    └── StepFailed              a notebook step ended with failed checks (raised by notebooks)

Library errors keep the original exception as ``__cause__`` (``raise ... from exc``). Secret
values never appear in messages: every message passes through :func:`runbook_lib._redact.redact`.
"""

from __future__ import annotations

from typing import Any

from ._redact import redact

__all__ = [
    "AmbiguousAppError",
    "ConfigurationError",
    "ConsistencyTimeout",
    "GraphAuthError",
    "GraphError",
    "GraphNotFound",
    "GraphOutcomeUnknown",
    "GraphThrottled",
    "PreflightError",
    "RunbookError",
    "ScimError",
    "SignInError",
    "StepError",
    "StepFailed",
]


class RunbookError(Exception):
    """Base class: a message, a remediation sentence and an optional HINT page."""

    def __init__(self, message: str, remediation: str = "", *, hint: str = "") -> None:
        self.message = redact(message)
        self.remediation = redact(remediation)
        self.hint = hint
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.remediation:
            return f"{self.message} Fix: {self.remediation}"
        return self.message


class ConfigurationError(RunbookError):
    """A setting is missing or malformed; the message names the RUNBOOK_* variable."""


class SignInError(RunbookError):
    """Entra ID (or the authority in RUNBOOK_AUTHORITY) refused to issue a token."""

    def __init__(
        self, message: str, remediation: str = "", *, hint: str = "", aadsts: str = ""
    ) -> None:
        super().__init__(message, remediation, hint=hint)
        self.aadsts = aadsts


class GraphError(RunbookError):
    """Graph answered with an error body; keeps what Microsoft support asks for."""

    def __init__(
        self,
        message: str,
        remediation: str = "",
        *,
        status: int = 0,
        code: str = "",
        request_id: str = "",
        method: str = "",
        path: str = "",
        hint: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.path = path
        detail = f"Graph {method} {path} returned HTTP {status}"
        if code:
            detail += f" ({code})"
        detail += f": {message}"
        if request_id:
            detail += f" [request-id {request_id}]"
        super().__init__(detail, remediation, hint=hint)
        self.graph_message = redact(message)


class GraphAuthError(GraphError):
    """401 or 403: the access token is invalid or lacks a permission or directory role."""


class GraphNotFound(GraphError):
    """404: the object does not exist, or Graph has not replicated it yet."""


class GraphThrottled(GraphError):
    """429, 503 or 504 kept coming back after the bounded number of retries."""


class GraphOutcomeUnknown(GraphError):
    """A create (a POST that is not safe to repeat) lost its answer - a dropped connection, a
    timeout or a 5xx - and the client had no way to read whether it worked, so it did not
    send it again: a second one could make a duplicate. Re-read, then decide."""


class ScimError(RunbookError):
    """The Iru SCIM endpoint gave an answer the runbook cannot use."""

    def __init__(
        self, message: str, remediation: str = "", *, hint: str = "", status: int = 0
    ) -> None:
        super().__init__(message, remediation, hint=hint)
        self.status = status


class PreflightError(ScimError):
    """The pre-flight probe of the Iru SCIM endpoint failed.

    ``kind`` is one of ``insecure_url``, ``bad_url``, ``connection``, ``dns``, ``timeout``,
    ``tls``, ``not_found``, ``unauthorized``, ``not_scim``, ``server_error`` (Iru answered
    5xx, still after the retries), ``throttled`` (429, still after the retries).
    """

    def __init__(
        self, kind: str, message: str, remediation: str = "", *, hint: str = "", status: int = 0
    ) -> None:
        super().__init__(message, remediation, hint=hint, status=status)
        self.kind = kind


class StepError(RunbookError):
    """A runbook step cannot continue with the tenant as it is."""


class AmbiguousAppError(StepError):
    """More than one enterprise app carries the display name; the runbook will not guess."""

    def __init__(self, name: str, matches: list[dict[str, Any]]) -> None:
        self.matches = matches
        lines = "; ".join(f"objectId {m.get('id')} (appId {m.get('appId')})" for m in matches)
        super().__init__(
            f"{len(matches)} enterprise apps are named '{name}': {lines}.",
            "Rename or delete the extra apps in Entra admin center > Enterprise apps, "
            "or set RUNBOOK_APP_NAME (the app_name parameter) to a unique name.",
            hint="02-create-enterprise-app",
        )


class ConsistencyTimeout(RunbookError):
    """An object Graph just created did not become readable within the wait limit."""


class StepFailed(RunbookError):
    """A notebook step finished with failed checks; the message lists them."""
