"""What the simulated Entra tenant holds, behind one lock: what the stand-ins stand on.

:mod:`._state` has the app registrations, the enterprise apps (service principals) with
their provisioning jobs, secrets and app role assignments, and models replication delay
the way "Create an enterprise application" and "Assign users and groups" in Microsoft's
Entra docs warn about (https://learn.microsoft.com/entra/identity/enterprise-apps/).
:mod:`._tokens` keeps the access tokens the sign-in stand-in issued (the only link
between sign-in and Graph), :mod:`._grants` which Microsoft Graph permissions each
client holds (the permissions reference, https://learn.microsoft.com/graph/permissions-reference),
and :mod:`._well_known` the ids every tenant shares.

The sign-in server, the Graph handlers and the provisioning engine all read and change
this state; it imports none of them, only the records it is made of (the directory, the
provisioning job records) and the plumbing.
"""

from __future__ import annotations

__all__: list[str] = []
