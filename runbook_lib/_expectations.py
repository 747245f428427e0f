"""What Iru should hold, read from Entra with as few requests as Graph allows.

Scope "assigned only": users assigned to the app plus the **direct** user members of assigned
groups (nested groups are not expanded, as Entra does not expand them). A user's expected
``externalId`` follows the schema's mapping when it is a direct attribute (``mailNickname`` by
default, ``objectId`` for Device Compliance).

The read costs what the data costs:

* the app's assignments, 999 a page (``servicePrincipals/{id}/appRoleAssignedTo``); a group's
  id and name come from the assignment itself, so no group is read on its own unless its
  externalId mapping needs another attribute;
* each assigned group's user members, 999 a page, through the ``microsoft.graph.user`` cast
  with only the properties the comparison uses;
* the directly assigned users that no group read brought, 20 to a JSON ``$batch``.

Independent reads (one per group, one per batch) run in a bounded thread pool
(:attr:`~runbook_lib.Settings.graph_concurrency`). A user Graph answers 404 for was deleted:
Entra removes it from Iru on its own, so it is not expected.

:func:`compare` is kept for callers of the earlier interface; new code uses
:func:`runbook_lib._reconcile.reconcile`, which returns :class:`~runbook_lib._findings.Finding`
objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ._exceptions import GraphError, GraphNotFound
from ._graph import BATCH_LIMIT, GraphClient
from ._schema import attribute_mapping, direct_source, object_mapping

if TYPE_CHECKING:
    from ._scim import IruScimClient

__all__ = [
    "ExpectedGroup",
    "ExpectedState",
    "ExpectedUser",
    "Mismatch",
    "compare",
    "expected_state",
]

PAGE = 999
"""``$top`` for every directory list (Graph's maximum)."""

# User properties a direct externalId mapping may name that Graph can $select under the same
# name. ``objectId`` is Graph's ``id``; anything else is not compared (a mapping from an
# extension attribute or an expression cannot be predicted without Entra's engine).
_SELECTABLE_USER = frozenset(
    {
        "userPrincipalName",
        "mailNickname",
        "mail",
        "displayName",
        "givenName",
        "surname",
        "employeeId",
        "jobTitle",
        "department",
    }
)
_SELECTABLE_GROUP = frozenset({"displayName", "mail", "mailNickname", "description"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True, slots=True)
class ExpectedUser:
    object_id: str
    user_name: str
    active: bool
    external_id: str | None


@dataclass(frozen=True, slots=True)
class ExpectedGroup:
    object_id: str
    display_name: str
    external_id: str | None
    member_user_names: frozenset[str]
    """Lower-cased userPrincipalNames of the group's direct user members."""


@dataclass
class ExpectedState:
    users: list[ExpectedUser] = field(default_factory=list)
    groups: list[ExpectedGroup] = field(default_factory=list)
    groups_enabled: bool = True
    users_enabled: bool = True
    graph_requests: int = 0
    """Graph requests the read took (from the client's counter; shared clients may skew it)."""


@dataclass(frozen=True)
class Mismatch:
    """The earlier, untyped difference (``kind`` is ``user`` or ``group``)."""

    kind: str
    name: str
    problem: str


def _source_field(source: str | None, selectable: frozenset[str]) -> str | None:
    """The Graph property to $select for an externalId source, ``id`` for objectId."""
    if source is None:
        return None
    if source == "objectId":
        return "id"
    if source in selectable and _NAME.match(source):
        return source
    return None


def _value(entity: dict[str, Any], prop: str | None) -> str | None:
    if prop is None:
        return None
    value = entity.get(prop)
    return None if value is None else str(value)


_T = TypeVar("_T")
_R = TypeVar("_R")


def _run_all(
    pool: ThreadPoolExecutor | None, fn: Callable[[_T], _R], items: Iterable[_T]
) -> list[_R]:
    """``fn`` over ``items``, in the pool when there is one; results in the input order."""
    if pool is None:
        return [fn(item) for item in items]
    return list(pool.map(fn, items))


def expected_state(
    graph: GraphClient,
    sp_id: str,
    schema: dict[str, Any],
    *,
    concurrency: int = 8,
    pool: ThreadPoolExecutor | None = None,
) -> ExpectedState:
    """Read assignments and members from Entra and derive what Iru should hold.

    :param concurrency: how many reads may be in flight at once (1: one at a time).
    :param pool: an executor to run the reads in (the caller's, shared with its Iru reads);
        when omitted, one of ``concurrency`` threads is made for this read.
    """
    if pool is None and concurrency > 1:
        with ThreadPoolExecutor(concurrency, thread_name_prefix="graph-read") as own:
            return expected_state(graph, sp_id, schema, pool=own)
    start_count = graph.request_count
    user_map = object_mapping(schema, "User") or {}
    group_map = object_mapping(schema, "Group") or {}
    user_prop = _source_field(
        direct_source(attribute_mapping(user_map, "externalId")) if user_map else None,
        _SELECTABLE_USER,
    )
    group_prop = _source_field(
        direct_source(attribute_mapping(group_map, "externalId")) if group_map else None,
        _SELECTABLE_GROUP,
    )
    select = ",".join(
        dict.fromkeys(
            ["id", "userPrincipalName", "accountEnabled"] + ([user_prop] if user_prop else [])
        )
    )
    state = ExpectedState(
        groups_enabled=bool(group_map.get("enabled", False)),
        users_enabled=bool(user_map.get("enabled", False)),
    )

    direct_ids: dict[str, None] = {}
    group_rows: dict[str, str] = {}  # id -> displayName, in assignment order
    for assignment in graph.get_all(f"servicePrincipals/{sp_id}/appRoleAssignedTo", top=PAGE):
        principal = str(assignment.get("principalId", ""))
        kind = assignment.get("principalType")
        if kind == "User":
            direct_ids.setdefault(principal, None)
        elif kind == "Group":
            group_rows.setdefault(principal, str(assignment.get("principalDisplayName") or ""))

    def members_of(group_id: str) -> list[dict[str, Any]]:
        try:
            return list(
                graph.get_all(
                    f"groups/{group_id}/members/microsoft.graph.user",
                    params={"$select": select},
                    top=PAGE,
                )
            )
        except GraphNotFound:
            return []  # deleted since it was assigned: Entra stops sending it

    group_ids = list(group_rows)
    member_lists = _run_all(pool, members_of, group_ids)

    users: dict[str, dict[str, Any]] = {}
    for members in member_lists:
        for member in members:
            users.setdefault(str(member["id"]), member)

    missing = [object_id for object_id in direct_ids if object_id not in users]
    paths = [f"users/{object_id}?$select={select}" for object_id in missing]
    group_paths: list[str] = []
    if group_prop not in (None, "id", "displayName"):
        group_paths = [f"groups/{gid}?$select=id,{group_prop}" for gid in group_ids]
    all_paths = paths + group_paths
    chunks = [all_paths[i : i + BATCH_LIMIT] for i in range(0, len(all_paths), BATCH_LIMIT)]
    answers = [a for chunk in _run_all(pool, graph.batch_get, chunks) for a in chunk]
    group_extra: dict[str, dict[str, Any]] = {}
    for path, (status, body) in zip(all_paths, answers, strict=True):
        if status == 404:
            continue  # deleted in Entra: Entra disables or deletes it in Iru on its own
        if status >= 400 or not isinstance(body, dict):
            error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
            raise GraphError(
                f"a batched read answered HTTP {status}: {error.get('message', '')}".strip(),
                "Run the step again; if it persists, check the Graph permissions with 01-connect.",
                status=status,
                code=str(error.get("code", "")),
                method="GET",
                path="/" + path.split("?")[0],
            )
        if path.startswith("groups/"):
            group_extra[str(body.get("id"))] = body
        else:
            users.setdefault(str(body["id"]), body)

    for object_id, user in users.items():
        state.users.append(
            ExpectedUser(
                object_id=object_id,
                user_name=str(user["userPrincipalName"]),
                active=bool(user.get("accountEnabled", True)),
                external_id=_value(user, user_prop),
            )
        )
    for group_id, members in zip(group_ids, member_lists, strict=True):
        name = group_rows[group_id]
        if group_prop == "id":
            external: str | None = group_id
        elif group_prop == "displayName":
            external = name
        else:
            external = _value(group_extra.get(group_id, {}), group_prop)
        state.groups.append(
            ExpectedGroup(
                object_id=group_id,
                display_name=name,
                external_id=external,
                member_user_names=frozenset(str(m["userPrincipalName"]).lower() for m in members),
            )
        )
    state.graph_requests = graph.request_count - start_count
    return state


def compare(expected: ExpectedState, scim: IruScimClient) -> list[Mismatch]:
    """Every difference between Iru and ``expected``, in the earlier :class:`Mismatch` shape."""
    from ._reconcile import compare_state, read_iru

    users, groups = read_iru(scim)
    found = compare_state(expected, users, groups)
    return [
        Mismatch(f.object.partition(" ")[0], f.object.partition(" ")[2], f.found) for f in found
    ]
