"""runbook_lib: connect Microsoft Entra ID SCIM provisioning to Iru Endpoint, and prove it works.

The public API is what ``__all__`` lists. Start with :class:`Runbook` (settings, credential and
clients) and the steps in :mod:`runbook_lib.steps`; notebooks use :mod:`runbook_lib.notebook`.
Errors are documented in one place: :mod:`runbook_lib._exceptions`.

The names are loaded on first use (PEP 562 ``__getattr__``), so importing the package, or a
light module of it such as :mod:`runbook_lib.notebook`, does not import pydantic, httpx and
azure-identity until something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        GraphOutcomeUnknown,
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
    "GraphOutcomeUnknown",
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

_HOMES = {
    "auth_method": "_auth",
    "sign_in_kind": "_auth",
    "Change": "_checks",
    "CheckResult": "_checks",
    "Status": "_checks",
    "StepResult": "_checks",
    "Runbook": "_context",
    "AmbiguousAppError": "_exceptions",
    "ConfigurationError": "_exceptions",
    "ConsistencyTimeout": "_exceptions",
    "GraphAuthError": "_exceptions",
    "GraphError": "_exceptions",
    "GraphNotFound": "_exceptions",
    "GraphOutcomeUnknown": "_exceptions",
    "GraphThrottled": "_exceptions",
    "PreflightError": "_exceptions",
    "RunbookError": "_exceptions",
    "ScimError": "_exceptions",
    "SignInError": "_exceptions",
    "StepError": "_exceptions",
    "StepFailed": "_exceptions",
    "GrantedPermissions": "_granted",
    "read_granted": "_granted",
    "GraphClient": "_graph",
    "odata_quote": "_graph",
    "user_key": "_graph",
    "PERMISSIONS": "_permissions",
    "Permission": "_permissions",
    "IruScimClient": "_scim",
    "PreflightResult": "_scim",
    "ScimGroup": "_scim",
    "ScimMember": "_scim",
    "ScimUser": "_scim",
    "Settings": "_settings",
    "load_settings": "_settings",
    "require_secret": "_settings",
}
"""The private module each public name lives in."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
