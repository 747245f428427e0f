"""The simulated Entra tenant: what exists, behind one lock.

The sign-in stand-in, the Graph handlers and the provisioning engine read and change this
state; the :class:`~runbook_lib.sim.Sandbox` handle reads it for tests. It deliberately
holds plain records and no wire format (that is in :mod:`runbook_lib.sim.graph`):
applications and service principals here, the directory of users and groups in
:mod:`runbook_lib.sim.directory._store`, the per-job provisioning state in
:mod:`runbook_lib.sim.provisioning._jobs`.

Eventual consistency is modelled with a counter rather than a clock: a new service
principal stays invisible to the first ``consistency_reads`` requests that would have
seen it. Counting keeps tests deterministic while still forcing clients to retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..directory._store import Directory, DirectoryGroup, DirectoryUser
from ..plumbing._clock import SimClock
from ..plumbing._ids import IdFactory
from ..plumbing._request_log import Redactor
from ..provisioning._jobs import JobConflict, JobRun, SynchronizationJob
from ..provisioning._provisioning_log import ProvisioningLog
from ..provisioning._secrets import MASKED_SECRET_KEYS
from ._grants import Grants
from ._tokens import TokenStore

__all__ = [
    "AppRoleAssignment",
    "Application",
    "ServicePrincipal",
    "TenantState",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time, timezone-aware (Graph timestamps are UTC)."""
    return datetime.now(UTC)


@dataclass(slots=True)
class Application:
    """An application object (the app registration) created from a template."""

    object_id: str
    app_id: str
    display_name: str
    template_id: str
    created: datetime


@dataclass(slots=True)
class AppRoleAssignment:
    """A user or group assigned to an app role of a service principal.

    ``hidden_reads`` counts the list/get requests that still miss a new assignment
    (the configured replication lag after assignment).
    """

    id: str
    principal_id: str
    principal_type: str
    principal_display_name: str
    app_role_id: str
    resource_id: str
    created: float
    hidden_reads: int = 0


@dataclass(slots=True)
class ServicePrincipal:
    """An enterprise application (service principal) and its synchronization data."""

    object_id: str
    app_id: str
    display_name: str
    application_object_id: str
    template_id: str
    created: datetime
    hidden_reads: int = 0
    jobs: dict[str, SynchronizationJob] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    assignments: dict[str, AppRoleAssignment] = field(default_factory=dict)

    @property
    def credentials_saved(self) -> bool:
        """Whether the job's tenant URL is saved (until then its status is NotConfigured)."""
        return "BaseAddress" in self.secrets


Replicated = ServicePrincipal | DirectoryUser | DirectoryGroup | AppRoleAssignment


class TenantState:
    """Everything the simulated tenant holds, guarded by ``lock``.

    ``tenant_id``, ``client_id`` and the admin's object id are the first draws of the
    ``tenant`` id stream, so a seed fixes them.
    """

    tenant_domain = "sandbox.onmicrosoft.com"

    def __init__(
        self,
        ids: IdFactory,
        redactor: Redactor,
        *,
        client_secret: str,
        consistency_reads: int,
        directory: Directory | None = None,
        clock: SimClock | None = None,
        tier: str = "p1",
        assignment_reads: int = 0,
        cycle_seconds: float | None = None,
        grants: Grants | None = None,
    ) -> None:
        if consistency_reads < 0:
            raise ValueError("consistency_reads must be 0 or more")
        self.ids = ids
        self.clock = clock or SimClock()
        self.directory = directory or Directory()
        self.tier = tier
        self.assignment_reads = assignment_reads
        self.cycle_seconds = cycle_seconds
        # Set by the provisioning worker: called when a job should run a cycle soon.
        self.wake_worker: Callable[[], None] = lambda: None
        self.provisioning_log = ProvisioningLog()
        self.redactor = redactor
        self.lock = threading.RLock()
        self.tenant_id = ids.uuid("tenant")
        self.client_id = ids.uuid("tenant")
        self.admin_object_id = ids.uuid("tenant")
        self.admin_upn = f"admin@{self.tenant_domain}"
        self.client_secret = client_secret
        redactor.add(client_secret)
        self.consistency_reads = consistency_reads
        self.tokens = TokenStore(redactor)
        # Which Graph permissions the runbook's clients hold (app roles, delegated consent).
        self.grants = grants or Grants()
        self.applications: dict[str, Application] = {}
        self.service_principals: dict[str, ServicePrincipal] = {}

    @property
    def tenant_hex(self) -> str:
        """The tenant id without dashes, as it appears in job ids."""
        return self.tenant_id.replace("-", "")

    # -- applications and service principals ---------------------------------------

    def instantiate(
        self, template_id: str, display_name: str
    ) -> tuple[Application, ServicePrincipal]:
        """Create an application and its service principal (never idempotent)."""
        with self.lock:
            now = utc_now()
            app = Application(
                object_id=self.ids.uuid("objects"),
                app_id=self.ids.uuid("objects"),
                display_name=display_name,
                template_id=template_id,
                created=now,
            )
            sp = ServicePrincipal(
                object_id=self.ids.uuid("objects"),
                app_id=app.app_id,
                display_name=display_name,
                application_object_id=app.object_id,
                template_id=template_id,
                created=now,
                hidden_reads=self.consistency_reads,
            )
            self.applications[app.object_id] = app
            self.service_principals[sp.object_id] = sp
            return app, sp

    def _seen(self, item: Replicated) -> bool:
        """Count one client read of ``item``; True once it has replicated."""
        if item.hidden_reads > 0:
            item.hidden_reads -= 1
            return False
        return True

    def seen(self, item: Replicated) -> bool:
        """Public form of the replication check (the caller holds ``lock``)."""
        return self._seen(item)

    # -- directory ------------------------------------------------------------------

    def read_user(self, key: str) -> DirectoryUser | None:
        """A live (not soft-deleted) user by id or UPN, as a client request sees it."""
        with self.lock:
            user = self.directory.user(key)
            if user is None or user.deleted is not None or not self._seen(user):
                return None
            return user

    def forget_principal(self, object_id: str) -> None:
        """Drop every app role assignment of a principal that no longer exists."""
        with self.lock:
            for sp in self.service_principals.values():
                gone = [k for k, a in sp.assignments.items() if a.principal_id == object_id]
                for key in gone:
                    del sp.assignments[key]

    def read_group(self, object_id: str) -> DirectoryGroup | None:
        """A group by id, as a client request sees it."""
        with self.lock:
            group = self.directory.group(object_id)
            if group is None or not self._seen(group):
                return None
            return group

    def read_service_principal(self, object_id: str) -> ServicePrincipal | None:
        """Look ``object_id`` up the way a client request would (consistency applies)."""
        with self.lock:
            sp = self.service_principals.get(object_id.lower())
            if sp is None or not self._seen(sp):
                return None
            return sp

    def list_service_principals(
        self, matches: Callable[[ServicePrincipal], bool] | None = None
    ) -> list[ServicePrincipal]:
        """List the service principals a client request would see, in creation order.

        ``matches`` is an optional predicate; a hidden principal that matches is
        omitted and has one of its hidden reads used up.
        """
        with self.lock:
            visible = []
            for sp in self.service_principals.values():
                if matches is not None and not matches(sp):
                    continue
                if self._seen(sp):
                    visible.append(sp)
            return visible

    def delete_service_principal(self, object_id: str) -> ServicePrincipal | None:
        """Remove a service principal with its jobs, secrets and assignments (None: no such)."""
        with self.lock:
            return self.service_principals.pop(object_id.lower(), None)

    def list_applications(self) -> list[Application]:
        """Every application object, in creation order."""
        with self.lock:
            return list(self.applications.values())

    def delete_application(self, object_id: str) -> Application | None:
        """Remove an application object (the app registration); None when there is none.

        Its service principal stays: Graph deletes the two objects separately.
        """
        with self.lock:
            return self.applications.pop(object_id.lower(), None)

    def all_service_principals(self) -> list[ServicePrincipal]:
        """Every service principal, ignoring replication delay (for the test handle)."""
        with self.lock:
            return list(self.service_principals.values())

    def get_service_principal(self, object_id: str) -> ServicePrincipal | None:
        """Look ``object_id`` up without replication delay (for the test handle)."""
        with self.lock:
            return self.service_principals.get(object_id.lower())

    # -- synchronization ------------------------------------------------------------

    def job_id(self, sp: ServicePrincipal, template_id: str) -> str:
        """The id Entra gives a job: ``<template>.<tenant hex>.<appId>``."""
        return f"{template_id}.{self.tenant_hex}.{sp.app_id}"

    def create_job(self, sp: ServicePrincipal, template_id: str) -> SynchronizationJob:
        """Add a job from ``template_id``; raises :class:`JobConflict` on a duplicate."""
        with self.lock:
            for job in sp.jobs.values():
                if job.template_id == template_id:
                    raise JobConflict(job)
            job_id = self.job_id(sp, template_id)
            job = SynchronizationJob(job_id, template_id, utc_now(), JobRun.new(job_id))
            sp.jobs[job.id] = job
            return job

    def set_secrets(self, sp: ServicePrincipal, values: dict[str, str]) -> None:
        """Replace the saved synchronization secrets; empty values are dropped."""
        kept = {key: value for key, value in values.items() if value != ""}
        for key, value in kept.items():
            if key in MASKED_SECRET_KEYS:
                self.redactor.add(value)
        with self.lock:
            sp.secrets = kept
