"""What Iru should hold, computed from Entra, and how Iru compares.

Scope "assigned only": users assigned to the app plus the **direct** user members of assigned
groups (nested groups are not expanded, as Entra does not expand them). A user's expected
``externalId`` follows the schema's mapping when it is a direct attribute (``mailNickname`` by
default, ``objectId`` for Device Compliance). Iru is read once (all users, all groups) and
compared in memory, so a large tenant costs a few paged requests rather than one per user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._exceptions import GraphNotFound
from ._graph import GraphClient
from ._schema import attribute_mapping, direct_source, object_mapping
from ._scim import IruScimClient

__all__ = [
    "ExpectedGroup",
    "ExpectedState",
    "ExpectedUser",
    "Mismatch",
    "compare",
    "expected_state",
]

_USER_FIELDS = "id,userPrincipalName,accountEnabled,mailNickname,mail,displayName,givenName,surname"


@dataclass(frozen=True)
class ExpectedUser:
    object_id: str
    user_name: str
    active: bool
    external_id: str | None


@dataclass(frozen=True)
class ExpectedGroup:
    object_id: str
    display_name: str
    external_id: str | None
    member_user_names: frozenset[str]


@dataclass
class ExpectedState:
    users: list[ExpectedUser] = field(default_factory=list)
    groups: list[ExpectedGroup] = field(default_factory=list)
    groups_enabled: bool = True
    users_enabled: bool = True


@dataclass(frozen=True)
class Mismatch:
    kind: str  # "user" or "group"
    name: str
    problem: str


def _external_id(entity: dict[str, Any], source: str | None) -> str | None:
    if source is None:
        return None
    if source == "objectId":
        return str(entity["id"])
    value = entity.get(source)
    return None if value is None else str(value)


def expected_state(graph: GraphClient, sp_id: str, schema: dict[str, Any]) -> ExpectedState:
    """Read assignments and members from Entra and derive what Iru should hold."""
    user_map = object_mapping(schema, "User") or {}
    group_map = object_mapping(schema, "Group") or {}
    user_source = direct_source(attribute_mapping(user_map, "externalId")) if user_map else None
    group_source = direct_source(attribute_mapping(group_map, "externalId")) if group_map else None
    state = ExpectedState(
        groups_enabled=bool(group_map.get("enabled", False)),
        users_enabled=bool(user_map.get("enabled", False)),
    )
    assignments = list(graph.get_all(f"servicePrincipals/{sp_id}/appRoleAssignedTo"))
    user_ids: dict[str, None] = {}
    groups: list[tuple[dict[str, Any], list[str]]] = []
    for assignment in assignments:
        if assignment.get("principalType") == "User":
            user_ids[assignment["principalId"]] = None
        elif assignment.get("principalType") == "Group":
            group = graph.get(
                f"groups/{assignment['principalId']}", **{"$select": "id,displayName"}
            )
            members = [
                m["id"]
                for m in graph.get_all(f"groups/{group['id']}/members", params={"$select": "id"})
                if m.get("@odata.type", "#microsoft.graph.user").endswith("user")
            ]
            groups.append((group, members))
            for member in members:
                user_ids.setdefault(member, None)
    users: dict[str, dict[str, Any]] = {}
    for object_id in user_ids:
        try:
            user = graph.get(f"users/{object_id}", **{"$select": _USER_FIELDS})
        except GraphNotFound:
            continue  # deleted in Entra: Entra disables or deletes it in Iru on its own
        users[object_id] = user
        state.users.append(
            ExpectedUser(
                object_id=object_id,
                user_name=user["userPrincipalName"],
                active=bool(user.get("accountEnabled", True)),
                external_id=_external_id(user, user_source),
            )
        )
    for group, members in groups:
        state.groups.append(
            ExpectedGroup(
                object_id=group["id"],
                display_name=group["displayName"],
                external_id=_external_id(group, group_source),
                member_user_names=frozenset(
                    users[m]["userPrincipalName"].lower() for m in members if m in users
                ),
            )
        )
    return state


def compare(expected: ExpectedState, scim: IruScimClient) -> list[Mismatch]:
    """Every difference between what Iru holds and what it should hold."""
    problems: list[Mismatch] = []
    iru_users = {u.user_name.lower(): u for u in scim.list_users() if u.user_name}
    by_id = {u.id: name for name, u in iru_users.items()}
    if expected.users_enabled:
        for want in expected.users:
            got = iru_users.get(want.user_name.lower())
            if got is None:
                problems.append(Mismatch("user", want.user_name, "not in Iru"))
                continue
            if bool(got.active) != want.active:
                problems.append(
                    Mismatch(
                        "user", want.user_name, f"active is {got.active}, expected {want.active}"
                    )
                )
            if want.external_id is not None and got.external_id != want.external_id:
                problems.append(
                    Mismatch(
                        "user",
                        want.user_name,
                        f"externalId is {got.external_id!r}, expected {want.external_id!r}",
                    )
                )
    if expected.groups_enabled:
        iru_groups = {g.display_name: g for g in scim.list_groups() if g.display_name}
        for wanted in expected.groups:
            got_group = iru_groups.get(wanted.display_name)
            if got_group is None:
                problems.append(Mismatch("group", wanted.display_name, "not in Iru"))
                continue
            members = {
                by_id.get(m.value, f"(unknown id {m.value})") for m in got_group.members or []
            }
            if members != set(wanted.member_user_names):
                missing = sorted(set(wanted.member_user_names) - members)
                extra = sorted(members - set(wanted.member_user_names))
                detail = "; ".join(
                    part
                    for part in (
                        f"missing members {', '.join(missing)}" if missing else "",
                        f"unexpected members {', '.join(extra)}" if extra else "",
                    )
                    if part
                )
                problems.append(Mismatch("group", wanted.display_name, detail))
            if wanted.external_id is not None and got_group.external_id != wanted.external_id:
                problems.append(
                    Mismatch(
                        "group",
                        wanted.display_name,
                        f"externalId is {got_group.external_id!r}, expected {wanted.external_id!r}",
                    )
                )
    return problems
