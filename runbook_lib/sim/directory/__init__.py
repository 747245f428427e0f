"""The Entra directory: users, groups and their direct members, and the seeded tenant.

Stands in for the directory objects that Microsoft Graph's user and group pages describe
(https://learn.microsoft.com/graph/api/resources/user,
https://learn.microsoft.com/graph/api/resources/group): :mod:`._store` keeps them as small
records with a change counter (the watermark incremental provisioning cycles read), and
:mod:`._seed` builds the fixed small tenant (Adele Vance, "Iru Pilot"...) or a generated
large one from the seed.

Records only: how Graph renders and queries them is in :mod:`runbook_lib.sim.graph`, how
the provisioning engine scopes them is in :mod:`runbook_lib.sim.provisioning.engine`.
"""

from __future__ import annotations

__all__: list[str] = []
