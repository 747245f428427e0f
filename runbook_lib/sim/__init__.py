"""The built-in sandbox: local HTTPS stand-ins for Entra ID sign-in, Microsoft Graph
(with a seeded directory and a provisioning engine) and an Iru Endpoint SCIM endpoint.

Tests, ``make run`` and the docs all run the runbook against it. It is deterministic
under a seed and needs no network: start a :class:`Sandbox`, hand its :meth:`~Sandbox.env`
to the runbook, and inspect what happened through the handle. Once the runbook has
started provisioning, the sandbox's engine pushes the assigned users and groups to the
Iru stand-in the way Entra would; :meth:`~Sandbox.fast_forward` skips to the next cycle.

>>> from runbook_lib.sim import Sandbox, SandboxConfig
>>> with Sandbox(SandboxConfig(seed=1)) as sb:          # doctest: +SKIP
...     settings = sb.env()

Inside, each sub-package stands in for one part of Entra or Iru: ``signin``,
``directory``, ``tenant`` (the state the others share), ``provisioning`` (with the engine
in ``provisioning.engine``), ``graph`` and ``iru``, on the ``plumbing`` they all use; the
handle and the CLI are the modules here. Imports only point down that stack
(docs/sandbox-imports.md draws it; tests/test_sim_imports.py keeps it so).
"""

from __future__ import annotations

from ._cli import (
    add_sim_arguments,
    config_from_environment,
    faults_from_arguments,
    run_sim,
    write_env_file,
)
from ._sandbox import SANDBOX_APP_NAME, SECRET_ENV_KEYS, TIERS, Sandbox, SandboxConfig
from .directory._seed import (
    ALL_COMPANY,
    DEFAULT_DOMAIN,
    DEFAULT_GROUPS,
    DEFAULT_USERS,
    IRU_MAC_CONTRACTORS,
    IRU_MAC_USERS,
    IRU_PILOT,
    SALES,
)
from .plumbing._faults import FaultRule, parse_fault
from .plumbing._request_log import RequestRecord
from .provisioning._schema import SCIM_RULE_ID, SCIM_RULE_NAME
from .provisioning.engine._engine import CycleReport

__all__ = [
    "ALL_COMPANY",
    "DEFAULT_DOMAIN",
    "DEFAULT_GROUPS",
    "DEFAULT_USERS",
    "IRU_MAC_CONTRACTORS",
    "IRU_MAC_USERS",
    "IRU_PILOT",
    "SALES",
    "SANDBOX_APP_NAME",
    "SCIM_RULE_ID",
    "SCIM_RULE_NAME",
    "SECRET_ENV_KEYS",
    "TIERS",
    "CycleReport",
    "FaultRule",
    "RequestRecord",
    "Sandbox",
    "SandboxConfig",
    "add_sim_arguments",
    "config_from_environment",
    "faults_from_arguments",
    "parse_fault",
    "run_sim",
    "write_env_file",
]
