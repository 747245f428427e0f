"""One module per runbook step; each implements plan() -> apply() -> verify()."""

from __future__ import annotations

from ._base import Step
from .assign_users_and_groups import AssignUsersAndGroups
from .configure_provisioning import ConfigureProvisioning
from .connect import Connect
from .considerations import Considerations
from .create_enterprise_app import CreateEnterpriseApp
from .enable_provisioning import EnableProvisioning
from .mappings_and_scope import MappingsAndScope
from .overview import Prerequisites
from .update_mappings_and_restart import UpdateMappingsAndRestart
from .verify_provisioning import VerifyProvisioning

__all__ = [
    "STEPS",
    "AssignUsersAndGroups",
    "ConfigureProvisioning",
    "Connect",
    "Considerations",
    "CreateEnterpriseApp",
    "EnableProvisioning",
    "MappingsAndScope",
    "Prerequisites",
    "Step",
    "UpdateMappingsAndRestart",
    "VerifyProvisioning",
]

STEPS: dict[str, type[Step]] = {
    step.name: step
    for step in (
        Prerequisites,
        Connect,
        CreateEnterpriseApp,
        ConfigureProvisioning,
        MappingsAndScope,
        EnableProvisioning,
        AssignUsersAndGroups,
        VerifyProvisioning,
        UpdateMappingsAndRestart,
        Considerations,
    )
}
"""Every step by its stable id (the notebook file name), in runbook order."""
