"""A difference between the tenant as it is and as the runbook expects it, in one shape.

Step 07's table, ``runbook check``'s exit code and its reports (``check.json``, ``check.md``,
JUnit XML) all read the same :class:`Finding` objects, so what an admin sees in a notebook and
what a monitoring pipeline alerts on cannot disagree.

Findings fall in three groups:

* ``configuration``: the provisioning job and its settings (mappings, scope, job paused or
  quarantined, credentials failing Test connection);
* ``assignments``: who is assigned (an Assignment Map group unassigned, members of nested
  groups that Entra will not provision);
* ``data``: what arrived in Iru (users or groups missing, a wrong externalId or active flag,
  wrong members, objects Iru holds that Entra no longer sends).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["CATEGORIES", "Category", "Finding"]

Category = Literal["configuration", "assignments", "data"]
CATEGORIES: tuple[Category, ...] = ("configuration", "assignments", "data")


@dataclass(frozen=True)
class Finding:
    """One difference, reported once.

    :param category: ``configuration``, ``assignments`` or ``data`` (see the module docstring).
    :param kind: a stable machine name, e.g. ``user_missing``, ``user_external_id``,
        ``user_active``, ``group_missing``, ``group_members``, ``group_external_id``,
        ``group_name_shared``,
        ``job_paused``, ``job_quarantined``, ``mapping``, ``scope``, ``credentials``,
        ``assignment_map_group``, ``nested_group``.
    :param object: what it is about, e.g. ``user adele@contoso.com`` or ``group Iru Pilot``.
    :param expected: what Entra says it should be.
    :param found: what it is.
    :param fix: one sentence an admin can act on.
    """

    category: Category
    kind: str
    object: str
    expected: str
    found: str
    fix: str

    def line(self) -> str:
        """One line for a terminal or a log."""
        return f"[{self.category}] {self.object}: expected {self.expected}, found {self.found}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of :meth:`to_dict` (keys other than the six fields are ignored)."""
        category = str(data["category"])
        if category not in CATEGORIES:
            raise ValueError(f"unknown finding category {category!r}")
        return cls(
            category,
            str(data["kind"]),
            str(data["object"]),
            str(data["expected"]),
            str(data["found"]),
            str(data["fix"]),
        )
