"""The plumbing every stand-in shares; it imitates nothing of Microsoft's or Iru's.

HTTPS servers on loopback (:mod:`._http`) with a throwaway certificate authority
(:mod:`._ca`), the simulated clock that ``fast_forward`` moves (:mod:`._clock`), seeded id
streams (:mod:`._ids`), the request log with its redaction (:mod:`._request_log`),
injected faults and latency (:mod:`._faults`), and the sandbox's own ``/_sandbox`` admin
routes (:mod:`._admin`), which drive the :class:`~runbook_lib.sim.Sandbox` handle through
a protocol because they sit below it.

Nothing here imports another part of the sandbox: every other sub-package may use it.
The one Microsoft format kept here is how Graph writes a time
(:func:`._clock.graph_time`), because the provisioning records below the Graph handlers
render times too.
"""

from __future__ import annotations

__all__: list[str] = []
