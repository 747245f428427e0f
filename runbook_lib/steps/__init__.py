"""One module per runbook step; each implements plan() -> apply() -> verify()."""

from __future__ import annotations

from ._base import Step
from .configure_provisioning import ConfigureProvisioning
from .connect import Connect
from .create_enterprise_app import CreateEnterpriseApp
from .overview import Prerequisites

__all__ = [
    "STEPS",
    "ConfigureProvisioning",
    "Connect",
    "CreateEnterpriseApp",
    "Prerequisites",
    "Step",
]

STEPS: dict[str, type[Step]] = {
    step.name: step for step in (Prerequisites, Connect, CreateEnterpriseApp, ConfigureProvisioning)
}
"""Every step by its stable id (the notebook file name)."""
