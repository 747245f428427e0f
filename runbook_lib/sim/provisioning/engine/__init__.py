"""The provisioning engine: what Entra does with a started job, cycle by cycle.

Follows "How application provisioning works"
(https://learn.microsoft.com/entra/identity/app-provisioning/how-provisioning-works) and
"Tutorial: Develop and plan provisioning for a SCIM endpoint"
(https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups),
whose request shapes it sends:

* :mod:`._plan` works out, under the tenant lock, which users and groups are in scope and
  what their mapped values are;
* :mod:`._export` turns each planned user or group into SCIM requests (match, create,
  patch attributes and members), one export path for both kinds, and disables or deletes
  what left scope;
* :mod:`._engine` runs a cycle (or provisionOnDemand) and records its execution;
  :mod:`._quarantine` decides when a job is quarantined and when it tries again;
* :mod:`._scim_target` and :mod:`._scim_payload` are the SCIM client and its bodies,
  :mod:`._probe` the Test connection request, :mod:`._worker` the scheduler.
"""

from __future__ import annotations

__all__: list[str] = []
