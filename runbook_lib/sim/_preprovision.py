"""Start the sandbox as a tenant that is already provisioned, optionally with seeded drift.

A benchmark of the runbook's verification (step 07, ``runbook check``) at 100,000 users
should not first wait for the engine to push every object over HTTPS. This module puts
the tenant, at start and without any request, where the runbook's pages 02-06 and the
engine's first cycle would have left it:

* the non-gallery app (named as the runbook looks for it), its ``scim`` job started
  (schedule Active, one finished cycle as ``status.lastExecution``), the secrets saved
  (Tenant URL, token, ``SyncAll`` "false"), both object mappings on, ``externalId`` from
  ``objectId`` when Device Compliance is asked for;
* app role assignments (User role) for the chosen security groups and direct users;
* the Iru stand-in's storage holding what that cycle would have created: what to send is
  worked out by the engine's own planner
  (:func:`~runbook_lib.sim.provisioning.engine._plan.make_plan`, which evaluates the
  schema's expressions) and turned into SCIM bodies by the engine's own
  :mod:`runbook_lib.sim.provisioning.engine._scim_payload`, then written straight into
  scim2-server's storage;
* the job's escrow (links and last exported values), watermark and skip list filled in
  as the engine fills them, so the next incremental cycle finds nothing to do.

Objects the engine would not create are not created either: a user whose sign-in is
blocked (``active`` maps to false) is skipped, and objects whose matching value is
shared by another object in scope (two groups named "Sales") are recorded as failed,
as the engine fails them with DuplicateSourceEntries.

Drift (:func:`apply_drift`) then changes the Iru side only, chosen from the seed, so a
verifier has known differences to find: users or groups missing, a wrong ``externalId``,
a user inactive, a user added to a group it is not a member of in Entra. Every object
gets at most one change, and :class:`SeededDrift` records each as (kind, object name).
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from scim2_models import Meta, SCIMException
from scim2_server.memory import InMemoryStorage

from .provisioning._expressions import parse_expression
from .provisioning._jobs import EscrowEntry, Execution, JobRun
from .provisioning._schema import ObjectRule, compile_schema
from .provisioning.engine._engine import DEFAULT_INTERVAL
from .provisioning.engine._plan import Plan, make_plan
from .provisioning.engine._scim_payload import group_body, user_body
from .tenant._state import AppRoleAssignment, ServicePrincipal, TenantState
from .tenant._well_known import NON_GALLERY_TEMPLATE_ID, USER_ROLE_ID

if TYPE_CHECKING:
    from scim2_models import Resource, ResourceType

    from .iru._scim import IruApp

__all__ = [
    "DRIFT_KINDS",
    "Preprovisioned",
    "SeededDrift",
    "apply_drift",
    "parse_drift",
    "preprovision",
]

DRIFT_KINDS = ("missing_user", "wrong_external_id", "inactive", "extra_member", "missing_group")
"""The differences :func:`apply_drift` can seed, as ``KIND:N``."""

_CONTENT_TYPE = "application/scim+json"
_NOTIFICATIONS = '{"Enabled":false,"DeleteThresholdEnabled":false}'
# The private InMemoryStorage steps the fast path needs; without them, storage.create.
_FAST_CREATE = all(
    hasattr(InMemoryStorage, name) for name in ("_values_of", "_check_uniqueness", "_store")
)


class SeededDrift(NamedTuple):
    """One seeded difference: its kind and the object it is about.

    ``object`` is the user's userPrincipalName or the group's display name; for
    ``extra_member`` it is the group (each such group gets exactly one extra member,
    named in :attr:`Preprovisioned.extra_members`).
    """

    kind: str
    object: str


@dataclass(slots=True)
class Preprovisioned:
    """What :func:`preprovision` set up (kept on the sandbox for tests and benchmarks)."""

    sp_id: str
    job_id: str
    assigned_groups: list[str] = field(default_factory=list)
    assigned_users: list[str] = field(default_factory=list)
    # The same assignees by object id (group display names need not be unique).
    assigned_ids: list[str] = field(default_factory=list)
    users_created: int = 0
    groups_created: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    drift: list[SeededDrift] = field(default_factory=list)
    # extra_member drift: group display name -> the UPN added to it in Iru.
    extra_members: dict[str, str] = field(default_factory=dict)


def parse_drift(spec: str) -> tuple[str, int]:
    """``"missing_user:3"`` -> ("missing_user", 3); ValueError for anything else."""
    kind, sep, count = spec.strip().partition(":")
    kind = kind.strip().replace("-", "_")
    if kind not in DRIFT_KINDS:
        raise ValueError(f"unknown drift kind {kind!r}; use one of {', '.join(DRIFT_KINDS)}")
    if not sep or not count.strip().isdigit():
        raise ValueError(f"drift {spec!r} needs a count, e.g. {kind}:5")
    return kind, int(count)


# -- the tenant side -----------------------------------------------------------------------


def _assignment_id(state: TenantState) -> str:
    raw = bytes.fromhex(state.ids.hex("assignments", 64))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")[:43]


def _assign(state: TenantState, sp: ServicePrincipal, principal: Any, kind: str) -> None:
    assignment = AppRoleAssignment(
        id=_assignment_id(state),
        principal_id=principal.id,
        principal_type=kind,
        principal_display_name=principal.display_name,
        app_role_id=USER_ROLE_ID,
        resource_id=sp.object_id,
        created=state.clock.now(),
    )
    sp.assignments[assignment.id] = assignment


def _objectid_external_id(schema: dict[str, Any]) -> None:
    """Map externalId from objectId for users and groups (page 04's Device Compliance)."""
    source = parse_expression("[objectId]").to_source()
    for rule in schema.get("synchronizationRules", []):
        for mapping in rule.get("objectMappings", []):
            for attribute in mapping.get("attributeMappings", []):
                if attribute.get("targetAttributeName") == "externalId":
                    attribute["source"] = json.loads(json.dumps(source))


def _choose_assignees(
    state: TenantState, groups: int | None, direct_users: int
) -> tuple[list[Any], list[Any]]:
    directory = state.directory
    security = [g for g in directory.groups.values() if g.security_enabled]
    chosen_groups = security if groups is None else security[:groups]
    covered = {m for g in chosen_groups for m in g.members}
    candidates = [u for u in directory.active_users() if u.id not in covered]
    return chosen_groups, candidates[:direct_users]


# -- the Iru side --------------------------------------------------------------------------


class _Store:
    """Creates and changes resources in the Iru stand-in's storage, as its POST would."""

    def __init__(self, iru: IruApp) -> None:
        self.iru = iru
        self.service = iru.scim.service
        self.storage = iru.storage
        with self.service.provider:
            self.user_type = self.service.resource_type_at("/Users")
            self.group_type = self.service.resource_type_at("/Groups")

    def create(self, resource_type: ResourceType, body: dict[str, Any]) -> str:
        """Validate ``body`` as the POST handler does, store it, and return its id."""
        with self.service.provider:
            resource = self.service.read_creation(
                resource_type, json.dumps(body).encode(), _CONTENT_TYPE
            )
            storage = self.storage
            with storage.operation():
                if not _FAST_CREATE:
                    return str(storage.create(resource_type, resource).id)
                # InMemoryStorage.create, without its two deep copies (the resource was
                # just validated and is not shared): about 40% of the time at 100,000 users.
                resource.id = storage.generate_id(resource_type, resource)
                now = storage.clock()
                resource.meta = Meta(
                    resource_type=resource_type.name,
                    created=now,
                    last_modified=now,
                    version=storage.next_version(),
                )
                values = storage._values_of(resource)
                storage._check_uniqueness(resource, values)
                storage._store(resource, values)
                return str(resource.id)

    def get(self, resource_type: ResourceType, resource_id: str) -> Resource[Any]:
        with self.service.provider, self.storage.operation():
            return self.storage.get(resource_type, resource_id)

    def update(self, resource_type: ResourceType, resource: Resource[Any]) -> None:
        with self.service.provider, self.storage.operation():
            self.storage.update(resource_type, resource)

    def delete(self, resource_type: ResourceType, resource_id: str) -> None:
        with self.service.provider, self.storage.operation():
            self.storage.delete(resource_type, resource_id)


def _typed(rule: ObjectRule, values: dict[str, str | None]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for target, value in values.items():
        if value is None:
            continue
        attribute = rule.attribute(target)
        out[target] = (value, attribute.target_type if attribute is not None else "String")
    return out


def _export(plan: Plan, run: JobRun, store: _Store, result: Preprovisioned) -> None:
    """Create what the plan's first full cycle would create, and link it in the escrow."""
    user_rule, group_rule = plan.user_rule, plan.group_rule
    if user_rule is not None:
        for work in plan.users:
            value = work.matching[1]
            if work.duplicate or not value:
                run.failures[work.id] = 1
                result.failed += 1
                continue
            if work.disabled or "Add" not in user_rule.flow_types:
                run.skipped.add(work.id)
                result.skipped += 1
                continue
            try:
                scim_id = store.create(store.user_type, user_body(_typed(user_rule, work.values)))
            except SCIMException:
                run.failures[work.id] = 1
                result.failed += 1
                continue
            run.escrow[work.id] = EscrowEntry("User", scim_id, value, True, work.values)
            result.users_created += 1
    if group_rule is not None:
        with_members = group_rule.attribute("members") is not None
        for group_work in plan.groups:
            value = group_work.matching[1]
            if group_work.duplicate or not value or "Add" not in group_rule.flow_types:
                if group_work.duplicate or not value:
                    run.failures[group_work.id] = 1
                    result.failed += 1
                continue
            members: dict[str, str] = {}
            if with_members:
                for user_id in group_work.members:
                    linked = run.escrow.get(user_id)
                    if linked is not None and linked.kind == "User" and linked.in_scope:
                        members[user_id] = linked.scim_id
            body = group_body(_typed(group_rule, group_work.values))
            if members:
                body["members"] = [{"value": scim_id} for scim_id in members.values()]
            try:
                scim_id = store.create(store.group_type, body)
            except SCIMException:
                run.failures[group_work.id] = 1
                result.failed += 1
                continue
            run.escrow[group_work.id] = EscrowEntry(
                "Group", scim_id, value, True, dict(group_work.values), members
            )
            result.groups_created += 1


def _finish(state: TenantState, run: JobRun, plan: Plan, result: Preprovisioned) -> None:
    """Record the cycle as finished, as the engine's own bookkeeping does."""
    now = state.clock.now()
    execution = Execution(
        activity_id=state.ids.uuid("cycles"),
        began=now,
        ended=now,
        state="EntryLevelErrors" if result.failed else "Succeeded",
        entitled=plan.entitled,
        exported=result.users_created + result.groups_created,
        escrowed=result.failed,
        imported=len(plan.users) + len(plan.groups),
    )
    run.last_execution = execution
    run.last_success = execution
    if execution.exported:
        run.last_success_with_exports = execution
    if not result.failed:
        run.steady_first = run.steady_last = now
    run.watermark = plan.watermark
    run.full_pending = False
    run.sync_all_seen = plan.sync_all
    run.cycles_completed = 1
    run.running = False
    run.kicked = False
    run.next_run = now + (state.cycle_seconds or DEFAULT_INTERVAL)


def preprovision(
    state: TenantState,
    iru: IruApp,
    *,
    app_name: str,
    scim_url: str,
    scim_token: str,
    groups: int | None = None,
    direct_users: int = 0,
    device_compliance: bool = False,
) -> Preprovisioned:
    """Make the tenant and Iru look provisioned (see the module docstring).

    ``groups``: how many security-enabled groups are assigned, in directory order (None:
    all). ``direct_users``: how many users, not members of an assigned group, are assigned
    directly. Runs before the provisioning worker starts, so no cycle races it.
    """
    started = time.perf_counter()
    store = _Store(iru)
    with state.lock:
        _app, sp = state.instantiate(NON_GALLERY_TEMPLATE_ID, app_name)
        sp.hidden_reads = 0  # created long ago: already replicated
        job = state.create_job(sp, "scim")
        run = job.run
        if device_compliance:
            _objectid_external_id(run.schema)
            run.compiled = compile_schema(run.schema)
        state.set_secrets(
            sp,
            {
                "BaseAddress": scim_url,
                "SecretToken": scim_token,
                "SyncAll": "false",
                "SyncNotificationSettings": _NOTIFICATIONS,
            },
        )
        chosen_groups, chosen_users = _choose_assignees(state, groups, direct_users)
        for group in chosen_groups:
            _assign(state, sp, group, "Group")
        for user in chosen_users:
            _assign(state, sp, user, "User")
        run.schedule_state = "Active"
        result = Preprovisioned(
            sp.object_id,
            job.id,
            [g.display_name for g in chosen_groups],
            [u.user_principal_name for u in chosen_users],
            [p.id for p in (*chosen_groups, *chosen_users)],
        )
        plan = make_plan(state.directory, sp, run, dict(sp.secrets))
        _export(plan, run, store, result)
        _finish(state, run, plan, result)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


# -- drift ---------------------------------------------------------------------------------


def _counts(drift: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for spec in drift:
        kind, count = parse_drift(spec)
        counts[kind] = counts.get(kind, 0) + count
    return counts


def apply_drift(
    state: TenantState, iru: IruApp, result: Preprovisioned, drift: Iterable[str], seed: int
) -> list[SeededDrift]:
    """Seed ``drift`` (``KIND:N`` specs) into Iru; the same seed picks the same objects.

    Objects are drawn without overlap (no user or group gets two changes), so each seeded
    difference is one finding. Deleting a user also drops it from the groups that held it,
    as a SCIM server keeping references intact does. Raises ValueError when the tenant has
    too few provisioned objects for the counts asked.
    """
    counts = _counts(drift)
    if not counts:
        return []
    store = _Store(iru)
    rng = random.Random(f"runbook-sim-drift:{seed}")
    directory = state.directory
    with state.lock:
        run = next(iter(state.service_principals[result.sp_id].jobs.values())).run
        users = sorted(
            (directory.users[oid].user_principal_name, entry.scim_id)
            for oid, entry in run.escrow.items()
            if entry.kind == "User" and oid in directory.users
        )
        groups = sorted(
            (directory.groups[oid].display_name, entry.scim_id)
            for oid, entry in run.escrow.items()
            if entry.kind == "Group" and oid in directory.groups
        )
    rng.shuffle(users)
    rng.shuffle(groups)
    need_users = sum(counts.get(k, 0) for k in ("missing_user", "wrong_external_id", "inactive"))
    need_users += counts.get("extra_member", 0)
    need_groups = counts.get("missing_group", 0) + counts.get("extra_member", 0)
    if need_users > len(users) or need_groups > len(groups):
        raise ValueError(
            f"drift needs {need_users} users and {need_groups} groups, but only {len(users)} "
            f"users and {len(groups)} groups are provisioned"
        )
    seeded: list[SeededDrift] = []

    def take(pool: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
        picked, pool[:] = pool[:count], pool[count:]
        return picked

    for kind in DRIFT_KINDS:
        count = counts.get(kind, 0)
        if not count:
            continue
        if kind == "missing_user":
            for upn, scim_id in take(users, count):
                store.delete(store.user_type, scim_id)
                _drop_member_everywhere(store, scim_id)
                seeded.append(SeededDrift(kind, upn))
        elif kind == "wrong_external_id":
            for upn, scim_id in take(users, count):
                user = store.get(store.user_type, scim_id)
                user.external_id = f"drift-{rng.getrandbits(32):08x}"
                store.update(store.user_type, user)
                seeded.append(SeededDrift(kind, upn))
        elif kind == "inactive":
            for upn, scim_id in take(users, count):
                user = store.get(store.user_type, scim_id)
                user.active = False  # type: ignore[attr-defined]
                store.update(store.user_type, user)
                seeded.append(SeededDrift(kind, upn))
        elif kind == "missing_group":
            for name, scim_id in take(groups, count):
                store.delete(store.group_type, scim_id)
                seeded.append(SeededDrift(kind, name))
        else:  # extra_member: one user, not a member in Entra, added to each picked group
            for name, scim_id in take(groups, count):
                group = store.get(store.group_type, scim_id)
                present = {m.value for m in group.members or []}  # type: ignore[attr-defined]
                index = next((i for i, (_, uid) in enumerate(users) if uid not in present), -1)
                if index < 0:
                    raise ValueError(f"no provisioned user is left to add to group {name!r}")
                upn, user_id = users.pop(index)
                data = group.model_dump()
                data["members"] = [*(data.get("members") or []), {"value": user_id}]
                store.update(store.group_type, type(group).model_validate(data))
                seeded.append(SeededDrift(kind, name))
                result.extra_members[name] = upn
    result.drift = seeded
    return seeded


def _drop_member_everywhere(store: _Store, scim_id: str) -> None:
    with store.storage.lock:
        holders = [
            resource
            for resource in store.storage.resources
            if resource.meta is not None
            and resource.meta.resource_type == "Group"
            and any(m.value == scim_id for m in getattr(resource, "members", None) or [])
        ]
    for holder in holders:
        group = store.get(store.group_type, str(holder.id))
        group.members = [m for m in group.members or [] if m.value != scim_id]  # type: ignore[attr-defined]
        store.update(store.group_type, group)
