"""Iru compared with what Entra should have sent: one read of each side, compared by key.

:func:`reconcile` reads Entra (see :mod:`runbook_lib._expectations`) and Iru at once: Iru's
users and groups are each read in one paged pass at the largest page the server grants, in the
same thread pool as the Graph reads. The comparison is done in memory with dictionaries keyed
by userName (case-insensitive) and group displayName, so its cost and memory follow the
number of in-scope objects, and it reports every difference exactly once as a
:class:`~runbook_lib._findings.Finding` of category ``data``:

* ``user_missing``: an enabled in-scope user is not in Iru;
* ``user_active``: a user's ``active`` differs from Entra. A user disabled in Entra is expected
  to be absent (Entra never creates a user that is disabled when it enters scope) or present
  with ``active`` false, never active;
* ``user_external_id``: a user's ``externalId`` differs from the mapped Entra attribute;
* ``group_missing``: an assigned group is not in Iru;
* ``group_members``: a group's members differ from its direct user members in Entra. Only users
  that are in Iru count: a missing user is reported once, as ``user_missing``, not again for
  every group it belongs to; disabled users are left out of the member comparison, since
  Entra may or may not have created them;
* ``group_external_id``: a group's ``externalId`` differs from the mapped Entra attribute.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ._expectations import ExpectedState, expected_state
from ._findings import Finding
from ._graph import GraphClient
from ._scim import IruScimClient, ScimGroup, ScimUser

__all__ = ["KINDS", "Reconciliation", "compare_state", "read_iru", "reconcile"]

KINDS = (
    "user_missing",
    "user_active",
    "user_external_id",
    "group_missing",
    "group_members",
    "group_external_id",
)

_RUN_AGAIN = (
    "Run 07-verify-provisioning: it starts a provisioning cycle and shows the provisioning "
    "log error if the difference stays."
)
_MEMBERS_SHOWN = 10


@dataclass
class Reconciliation:
    """One read of Entra and Iru and the differences between them."""

    expected: ExpectedState
    findings: list[Finding] = field(default_factory=list)
    iru_users: int = 0
    iru_groups: int = 0

    @property
    def clean(self) -> bool:
        return not self.findings

    def by_kind(self) -> dict[str, int]:
        """How many findings of each kind (kinds with none left out)."""
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts


def read_iru(
    scim: IruScimClient, pool: ThreadPoolExecutor | None = None
) -> tuple[list[ScimUser], list[ScimGroup]]:
    """All of Iru's users and groups (with members), each read once."""
    if pool is None:
        return scim.list_all_users(), scim.list_all_groups()
    users = pool.submit(scim.list_all_users)
    groups = pool.submit(scim.list_all_groups)
    return users.result(), groups.result()


def reconcile(
    graph: GraphClient,
    scim: IruScimClient,
    sp_id: str,
    schema: dict[str, Any],
    *,
    concurrency: int = 8,
) -> Reconciliation:
    """Read Entra and Iru once and compare them (see the module docstring)."""
    if concurrency <= 1:
        expected = expected_state(graph, sp_id, schema, concurrency=1)
        users, groups = read_iru(scim)
    else:
        with ThreadPoolExecutor(concurrency, thread_name_prefix="reconcile") as pool:
            iru_users = pool.submit(scim.list_all_users)
            iru_groups = pool.submit(scim.list_all_groups)
            expected = expected_state(graph, sp_id, schema, pool=pool)
            users, groups = iru_users.result(), iru_groups.result()
    return Reconciliation(
        expected=expected,
        findings=compare_state(expected, users, groups),
        iru_users=len(users),
        iru_groups=len(groups),
    )


def _shown(value: object) -> str:
    return "(none)" if value is None else repr(value)


def _names(names: list[str]) -> str:
    head = ", ".join(names[:_MEMBERS_SHOWN])
    more = len(names) - _MEMBERS_SHOWN
    return head + (f" and {more} more" if more > 0 else "")


def compare_state(
    expected: ExpectedState, users: list[ScimUser], groups: list[ScimGroup]
) -> list[Finding]:
    """Every difference between Iru's ``users``/``groups`` and ``expected``, each once."""
    findings: list[Finding] = []
    iru_users = {u.user_name.casefold(): u for u in users}
    name_by_id = {u.id: u.user_name.casefold() for u in users}
    disabled: set[str] = set()
    if expected.users_enabled:
        for want in expected.users:
            key = want.user_name.casefold()
            got = iru_users.get(key)
            what = f"user {want.user_name}"
            if not want.active:
                disabled.add(key)
            if got is None:
                if want.active:
                    findings.append(
                        Finding(
                            "data",
                            "user_missing",
                            what,
                            "in Iru",
                            "not in Iru",
                            _RUN_AGAIN,
                        )
                    )
                continue
            # A server that does not say is taken as active (SCIM's default for a new user).
            active = True if got.active is None else got.active
            if active != want.active:
                findings.append(
                    Finding(
                        "data",
                        "user_active",
                        what,
                        f"active {str(want.active).lower()}",
                        f"active {str(active).lower()}",
                        _RUN_AGAIN
                        if want.active
                        else "The user is disabled in Entra; a provisioning cycle deactivates "
                        "it in Iru. " + _RUN_AGAIN,
                    )
                )
            if want.external_id is not None and got.external_id != want.external_id:
                findings.append(
                    Finding(
                        "data",
                        "user_external_id",
                        what,
                        f"externalId {_shown(want.external_id)}",
                        f"externalId {_shown(got.external_id)}",
                        "Run 08-update-mappings-and-restart: pausing and starting provisioning "
                        "pushes the mapped value again.",
                    )
                )
    if not expected.groups_enabled:
        return findings
    iru_groups = {g.display_name: g for g in groups}
    for wanted in expected.groups:
        what = f"group {wanted.display_name}"
        got_group = iru_groups.get(wanted.display_name)
        if got_group is None:
            findings.append(
                Finding("data", "group_missing", what, "in Iru", "not in Iru", _RUN_AGAIN)
            )
            continue
        have = {name_by_id.get(m.value, f"(unknown id {m.value})") for m in got_group.members}
        # A member is expected only once its user is in Iru (a missing user is reported as
        # user_missing already); a disabled user may or may not be there, so is not judged.
        want_members = {m for m in wanted.member_user_names if m in iru_users} - disabled
        missing = sorted(want_members - have)
        extra = sorted(have - wanted.member_user_names - disabled)
        if missing or extra:
            found = "; ".join(
                part
                for part in (
                    f"missing {_names(missing)}" if missing else "",
                    f"unexpected {_names(extra)}" if extra else "",
                )
                if part
            )
            findings.append(
                Finding(
                    "data",
                    "group_members",
                    what,
                    f"{len(wanted.member_user_names - disabled)} direct user member(s) from Entra",
                    found,
                    _RUN_AGAIN,
                )
            )
        if wanted.external_id is not None and got_group.external_id != wanted.external_id:
            findings.append(
                Finding(
                    "data",
                    "group_external_id",
                    what,
                    f"externalId {_shown(wanted.external_id)}",
                    f"externalId {_shown(got_group.external_id)}",
                    "Run 08-update-mappings-and-restart: pausing and starting provisioning "
                    "pushes the mapped value again.",
                )
            )
    return findings
