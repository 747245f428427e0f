"""Entra's provisioning service: jobs, schemas and expressions, logs, and the engine.

Follows "How application provisioning works in Microsoft Entra ID"
(https://learn.microsoft.com/entra/identity/app-provisioning/how-provisioning-works), the
synchronization API pages of Microsoft Graph (synchronizationJob, synchronizationSchema,
provisioningObjectSummary) and "Application provisioning in quarantine status"
(https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-quarantine-status).

The modules directly here are what a job *is* and keeps, below the tenant state that
holds them: the job's run state, escrow, executions and quarantine record
(:mod:`._jobs`), its schema and attribute mappings (:mod:`._schema`) with the mapping
expression language (:mod:`._expressions`), the synchronization secret keys
(:mod:`._secrets`) and the provisioning log (:mod:`._provisioning_log`).

What a job *does* is in :mod:`.engine`, above the tenant state: planning a cycle,
exporting users and groups to the SCIM endpoint, quarantine, the Test connection probe
and the worker that runs cycles when they are due.
"""

from __future__ import annotations

__all__: list[str] = []
