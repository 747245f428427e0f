"""runbook_lib: connect Microsoft Entra ID SCIM provisioning to Iru Endpoint, and prove it works.

The public API is what ``__all__`` lists. Start with :class:`Runbook` (settings, credential and
clients) and the steps in :mod:`runbook_lib.steps`; notebooks use :mod:`runbook_lib.notebook`.
Errors are documented in one place: :mod:`runbook_lib._exceptions`.
"""

from __future__ import annotations

from ._auth import auth_method, sign_in_kind
from ._checks import Change, CheckResult, Status, StepResult
from ._context import Runbook
from ._exceptions import (
    AmbiguousAppError,
    ConfigurationError,
    ConsistencyTimeout,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphThrottled,
    PreflightError,
    RunbookError,
    ScimError,
    SignInError,
    StepError,
    StepFailed,
)
from ._granted import GrantedPermissions, read_granted
from ._graph import GraphClient, odata_quote, user_key
from ._permissions import PERMISSIONS, Permission
from ._scim import IruScimClient, PreflightResult, ScimGroup, ScimMember, ScimUser
from ._settings import Settings, load_settings, require_secret

__version__ = "0.1.0"

__all__ = [
    "AmbiguousAppError",
    "Change",
    "CheckResult",
    "ConfigurationError",
    "ConsistencyTimeout",
    "GrantedPermissions",
    "GraphAuthError",
    "GraphClient",
    "GraphError",
    "GraphNotFound",
    "GraphThrottled",
    "IruScimClient",
    "PERMISSIONS",
    "Permission",
    "PreflightError",
    "PreflightResult",
    "Runbook",
    "RunbookError",
    "ScimError",
    "ScimGroup",
    "ScimMember",
    "ScimUser",
    "Settings",
    "SignInError",
    "Status",
    "StepError",
    "StepFailed",
    "StepResult",
    "auth_method",
    "load_settings",
    "odata_quote",
    "read_granted",
    "require_secret",
    "sign_in_kind",
    "user_key",
]
