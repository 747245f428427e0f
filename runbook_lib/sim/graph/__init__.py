"""The Microsoft Graph stand-in: the v1.0 subset the runbook calls.

Each handler module follows the Graph API reference pages it names
(https://learn.microsoft.com/graph/api/overview): :mod:`._app` routes requests, checks
tokens and the documented permissions (:mod:`._permissions`) and runs ``$batch``
(:mod:`._batch`); :mod:`._odata` and :mod:`._odata_filter` implement the query options
(https://learn.microsoft.com/graph/query-parameters); :mod:`._wire` produces Graph's
headers and error bodies.

Per-route handlers: applications and service principals (:mod:`._applications`), users
and groups (:mod:`._directory`, :mod:`._directory_writes`), app role assignments
(:mod:`._assignments`), synchronization templates, jobs and secrets
(:mod:`._synchronization`, :mod:`._job_control`, :mod:`._on_demand`), provisioning logs
(:mod:`._audit`) and the reads that show granted permissions (:mod:`._grant_reads`).
The ``*_shapes`` modules hold the JSON a client sees.

Handlers sit above the tenant state and the provisioning engine, and below the
:class:`~runbook_lib.sim.Sandbox` handle that serves them.
"""

from __future__ import annotations

__all__: list[str] = []
