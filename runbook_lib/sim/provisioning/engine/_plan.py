"""What a provisioning cycle has to do, worked out from the directory in one go.

Under the tenant lock the engine takes a snapshot: which users and groups are in
scope, the values the schema's mappings give them, and which linked objects left
scope or the directory. The HTTP work then runs without the lock, from this plan.

Scope follows Entra:

* ``SyncAll`` "true": every user and every security-enabled group;
* otherwise: users assigned to the app, *direct* user members of assigned groups,
  and the assigned groups themselves. Members of a nested group are not in scope,
  nor is a group that is not security-enabled;
* then each object mapping's scoping filter, if it has one.

``IsSoftDeleted`` is true for a soft-deleted user, for a user whose sign-in is blocked
(accountEnabled false) and for one evaluated as out of scope, which is what makes the
default ``active`` mapping disable those users.

An incremental cycle only plans objects changed since the job's watermark, objects
that failed before, and objects whose scope changed; a full cycle (first run, restart,
schema or scope change) plans everything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ...directory._store import USER_PROPERTIES, Directory, DirectoryGroup, DirectoryUser
from ...tenant._state import ServicePrincipal
from .._jobs import EscrowEntry, JobRun
from .._schema import ObjectRule

__all__ = [
    "LeaveWork",
    "ObjectWork",
    "Plan",
    "group_source",
    "make_plan",
    "user_source",
]

Getter = Callable[[str], str | None]


def _flag(value: bool) -> str:
    return "True" if value else "False"


def user_source(user: DirectoryUser, *, in_scope: bool, assigned: bool) -> Getter:
    """The user's attributes under their Entra synchronization names."""

    def get(name: str) -> str | None:
        if name == "IsSoftDeleted":
            return _flag(user.deleted is not None or not user.account_enabled or not in_scope)
        if name == "objectId":
            return user.id
        if name == "accountEnabled":
            return _flag(user.account_enabled)
        if name == "appRoleAssignments":
            return "User" if assigned else None
        if name == "userType":
            return "Member"
        slot = _USER_SLOTS.get(name)
        return getattr(user, slot) if slot is not None else None

    return get


# The engine reads users by their synchronization attribute names; two of those differ from
# the Graph property names the directory uses, the rest are the same.
_SYNC_NAMES = {"officeLocation": "physicalDeliveryOfficeName", "mobilePhone": "mobile"}
_USER_SLOTS = {
    _SYNC_NAMES.get(name, name): slot
    for name, slot in USER_PROPERTIES.items()
    if name != "accountEnabled"
}


def group_source(group: DirectoryGroup) -> Getter:
    """The group's attributes under their Entra synchronization names."""
    values: dict[str, str | None] = {
        "objectId": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "mail": group.mail,
        "mailNickname": group.mail_nickname,
        "mailEnabled": _flag(group.mail_enabled),
        "securityEnabled": _flag(group.security_enabled),
        "IsSoftDeleted": "False",
    }
    return values.get


@dataclass(slots=True)
class ObjectWork:
    """A user or group in scope whose target object may need creating or updating.

    ``kind`` is "User" or "Group"; ``name`` is what the logs call the object (a user's
    UPN, a group's display name) and ``imported`` the details of its import step. The
    other fields hold what only one kind has: ``add_only`` (targets set only on create)
    and ``disabled`` (``active`` maps to false, so a missing user is not created) for
    users; ``attributes_changed`` (False when only the members may need syncing) and
    ``members`` (the in-scope direct user members) for groups.
    """

    kind: str
    id: str
    name: str
    values: dict[str, str | None]
    matching: tuple[str, str | None]
    imported: tuple[tuple[str, str], ...]
    add_only: frozenset[str] = frozenset()
    disabled: bool = False
    attributes_changed: bool = True
    members: list[str] = field(default_factory=list)
    duplicate: bool = False


@dataclass(slots=True)
class LeaveWork:
    """A linked object that left scope (disable) or the directory (delete or drop)."""

    id: str
    kind: str
    action: str  # "disable", "delete" or "drop"
    scim_id: str
    display: str
    active: str | None = None
    exists: bool = False


@dataclass(slots=True)
class Plan:
    """One cycle's work, in the order the engine runs it."""

    full: bool
    watermark: int
    sync_all: str
    entitled: int
    users: list[ObjectWork] = field(default_factory=list)
    groups: list[ObjectWork] = field(default_factory=list)
    leaving_users: list[LeaveWork] = field(default_factory=list)
    leaving_groups: list[LeaveWork] = field(default_factory=list)
    user_rule: ObjectRule | None = None
    group_rule: ObjectRule | None = None
    skip_out_of_scope: bool = False

    def rule(self, kind: str) -> ObjectRule | None:
        """The enabled object mapping for "User" or "Group" objects (None: mapping off)."""
        return self.user_rule if kind == "User" else self.group_rule


def scope_of(
    directory: Directory, sp: ServicePrincipal, run: JobRun, sync_all: bool
) -> tuple[set[str], set[str], set[str]]:
    """In-scope user ids, in-scope group ids, and directly assigned user ids."""
    assigned_users: set[str] = set()
    if sync_all:
        users = set(directory.users)
        groups = {g.id for g in directory.groups.values() if g.security_enabled}
        assigned_users = {a.principal_id for a in sp.assignments.values()}
    else:
        users = set()
        groups = set()
        for assignment in sp.assignments.values():
            principal = assignment.principal_id
            if principal in directory.users:
                users.add(principal)
                assigned_users.add(principal)
                continue
            group = directory.groups.get(principal)
            if group is None or not group.security_enabled:
                continue
            groups.add(group.id)
            users.update(m for m in group.members if m in directory.users)
    compiled = run.compiled
    if compiled.users is not None and compiled.users.scope is not None:
        rule = compiled.users.scope
        users = {
            u
            for u in users
            if rule.allows(
                user_source(directory.users[u], in_scope=True, assigned=u in assigned_users)
            )
        }
    if compiled.groups is not None and compiled.groups.scope is not None:
        group_rule = compiled.groups.scope
        groups = {g for g in groups if group_rule.allows(group_source(directory.groups[g]))}
    return users, groups, assigned_users


def _mapped(
    rule: ObjectRule, get: Getter, *, skip: str | None = None
) -> tuple[dict[str, str | None], tuple[str, str | None]]:
    """The values the object mapping gives an object, and its (matching target, value)."""
    values = {a.target: a.value(get) for a in rule.attributes if a.target != skip}
    matching = rule.matching
    return values, (matching.target, values.get(matching.target)) if matching else ("", None)


def _user_work(user: DirectoryUser, rule: ObjectRule, assigned: bool) -> ObjectWork:
    get = user_source(user, in_scope=True, assigned=assigned)
    values, match_pair = _mapped(rule, get)
    active_rule = rule.attribute("active")
    disabled = active_rule is not None and (values.get("active") or "").lower() == "false"
    imported = tuple(
        (name, value)
        for name in ("objectId", "userPrincipalName", "displayName", "mailNickname")
        if (value := get(name)) is not None
    ) + (
        ("accountEnabled", _flag(user.account_enabled)),
        ("IsSoftDeleted", get("IsSoftDeleted") or ""),
    )
    add_only = frozenset(a.target for a in rule.attributes if a.flow_type == "ObjectAddOnly")
    return ObjectWork(
        "User", user.id, user.user_principal_name, values, match_pair, imported, add_only, disabled
    )


def _group_work(
    group: DirectoryGroup, rule: ObjectRule, changed: bool, users: set[str]
) -> ObjectWork:
    # Members are synced from the group's member list, not mapped as a value.
    values, match_pair = _mapped(rule, group_source(group), skip="members")
    imported = (("objectId", group.id), ("displayName", group.display_name))
    members = [m for m in group.members if m in users]
    return ObjectWork(
        "Group",
        group.id,
        group.display_name,
        values,
        match_pair,
        imported,
        attributes_changed=changed,
        members=members,
    )


def _duplicates(values: Iterable[str | None]) -> set[str]:
    """Matching values (case-folded) that more than one in-scope object has."""
    counts = Counter(v.casefold() for v in values if v)
    return {value for value, count in counts.items() if count > 1}


def _unique_by_construction(rule: ObjectRule) -> bool:
    matching = rule.matching
    source = matching.source if matching is not None else None
    return (
        source is not None
        and source.type == "Attribute"
        and source.name in ("userPrincipalName", "objectId")
    )


def _needs(
    entry: EscrowEntry | None, version: int, run: JobRun, object_id: str, full: bool
) -> bool:
    if full or version > run.watermark or object_id in run.failures:
        return True
    if entry is None:
        return object_id not in run.skipped
    return not entry.in_scope


def make_plan(
    directory: Directory,
    sp: ServicePrincipal,
    run: JobRun,
    secrets: dict[str, str],
    *,
    only: set[str] | None = None,
) -> Plan:
    """The work for one cycle (``only``: restrict to these object ids, for on-demand runs)."""
    sync_all = secrets.get("SyncAll", "false")
    full = run.full_pending or run.watermark == 0 or run.sync_all_seen != sync_all.lower()
    users_in, groups_in, assigned = scope_of(directory, sp, run, sync_all.lower() == "true")
    compiled = run.compiled
    user_rule = compiled.users if compiled.users and compiled.users.enabled else None
    group_rule = compiled.groups if compiled.groups and compiled.groups.enabled else None
    plan = Plan(
        full=full,
        watermark=directory.version,
        sync_all=sync_all.lower(),
        entitled=len(users_in) + len(groups_in),
        user_rule=user_rule,
        group_rule=group_rule,
        skip_out_of_scope=secrets.get("SkipOutOfScopeDeletions", "").lower() == "true",
    )
    escrow = run.escrow

    def wanted(object_id: str) -> bool:
        return only is None or object_id in only

    if user_rule is not None:
        for user_id in users_in:
            if not wanted(user_id):
                continue
            user = directory.users[user_id]
            if only is not None or _needs(escrow.get(user_id), user.version, run, user_id, full):
                plan.users.append(_user_work(user, user_rule, user_id in assigned))
        plan.users.sort(key=lambda work: work.name)
        if plan.users and not _unique_by_construction(user_rule):
            matching = user_rule.matching
            assert matching is not None
            clashes = _duplicates(
                matching.value(
                    user_source(directory.users[u], in_scope=True, assigned=u in assigned)
                )
                for u in users_in
            )
            for work in plan.users:
                work.duplicate = (work.matching[1] or "").casefold() in clashes
        active_rule = user_rule.attribute("active")
        for object_id, entry in escrow.items():
            if entry.kind != "User" or object_id in users_in or not wanted(object_id):
                continue
            leaving = directory.users.get(object_id)
            if leaving is None:
                action = "delete" if entry.in_scope else "drop"
            elif not entry.in_scope:
                continue
            else:
                action = "disable" if active_rule is not None else "delete"
            active = None
            if leaving is not None and active_rule is not None:
                active = active_rule.value(
                    user_source(leaving, in_scope=False, assigned=object_id in assigned)
                )
            plan.leaving_users.append(
                LeaveWork(
                    object_id,
                    "User",
                    action,
                    entry.scim_id,
                    entry.display,
                    active,
                    leaving is not None,
                )
            )
    if group_rule is not None:
        live = {u for u in users_in if directory.users[u].deleted is None}
        for group_id in groups_in:
            if not wanted(group_id):
                continue
            group = directory.groups[group_id]
            changed = only is not None or _needs(
                escrow.get(group_id), group.version, run, group_id, full
            )
            plan.groups.append(_group_work(group, group_rule, changed, live))
        plan.groups.sort(key=lambda work: (work.name, work.id))
        clashes = _duplicates(work.matching[1] for work in plan.groups)
        for group_work in plan.groups:
            group_work.duplicate = (group_work.matching[1] or "").casefold() in clashes
        for object_id, entry in escrow.items():
            if entry.kind != "Group" or object_id in groups_in or not wanted(object_id):
                continue
            action = "delete" if entry.in_scope else "drop"
            exists = object_id in directory.groups
            plan.leaving_groups.append(
                LeaveWork(object_id, "Group", action, entry.scim_id, entry.display, None, exists)
            )
    return plan
