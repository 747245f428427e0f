"""The built-in sandbox: local HTTPS stand-ins for Entra ID sign-in, Microsoft Graph
and an Iru Endpoint SCIM endpoint.

Tests, ``make run`` and the docs all run the runbook against it. It is deterministic
under a seed and needs no network: start a :class:`Sandbox`, hand its :meth:`~Sandbox.env`
to the runbook, and inspect what happened through the handle.

>>> from runbook_lib.sim import Sandbox, SandboxConfig
>>> with Sandbox(SandboxConfig(seed=1)) as sb:          # doctest: +SKIP
...     settings = sb.env()
"""

from __future__ import annotations

from ._cli import add_sim_arguments, config_from_environment, run_sim, write_env_file
from ._log import RequestRecord
from ._sandbox import SANDBOX_APP_NAME, SECRET_ENV_KEYS, Sandbox, SandboxConfig

__all__ = [
    "SANDBOX_APP_NAME",
    "SECRET_ENV_KEYS",
    "RequestRecord",
    "Sandbox",
    "SandboxConfig",
    "add_sim_arguments",
    "config_from_environment",
    "run_sim",
    "write_env_file",
]
