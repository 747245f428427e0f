"""The :class:`Sandbox` handle: three HTTPS stand-ins started and stopped together.

One object owns the CA, the shared tenant state (directory, apps, jobs), the request
log, the fault injector, the three servers (sign-in, Graph with the ``/_sandbox``
admin routes, Iru SCIM with the Enterprise API view) and the provisioning worker. The
library under test is pointed at it only through :meth:`Sandbox.env` - URLs, ids,
secrets and a CA bundle - exactly as it would be pointed at Microsoft and Iru, so
there is no "sandbox mode" in the library.

The provisioning worker is a daemon thread started with the servers: ``start`` and
``restart`` on a job wake it and the first cycle runs at once (status NotRun, then
Active, well within a second for the default tenant); later cycles follow Entra's
40-minute interval in *simulated* time, which only :meth:`Sandbox.fast_forward` (or
40 real minutes) moves, unless ``cycle_seconds`` asks for real-time cycles.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ._handle_directory import DirectoryHandle
from ._handle_provisioning import ProvisioningHandle
from ._preprovision import Preprovisioned, SeededDrift, apply_drift, parse_drift, preprovision
from .directory._seed import build_directory
from .graph._app import GraphApp
from .graph._app_shapes import render_service_principal
from .iru._scim import IRU_SCIM_PATH, IruApp
from .plumbing._admin import ADMIN_PREFIX, AdminApp, mount_admin
from .plumbing._ca import SandboxCA
from .plumbing._clock import SimClock
from .plumbing._faults import FaultInjector, FaultRule
from .plumbing._http import HttpsServer
from .plumbing._ids import IdFactory
from .plumbing._request_log import (
    Redactor,
    RequestLog,
    RequestRecord,
    ServerName,
    logging_middleware,
)
from .provisioning._jobs import render_job
from .provisioning.engine._engine import Engine
from .provisioning.engine._worker import ProvisioningWorker
from .signin._login import FEDERATED_AUDIENCE, AppCredentials, FederatedCredential, LoginApp
from .tenant._grants import Grants
from .tenant._state import TenantState
from .tenant._tokens import SignInRecord

__all__ = ["SANDBOX_APP_NAME", "SECRET_ENV_KEYS", "Sandbox", "SandboxConfig"]

SANDBOX_APP_NAME = "Iru Endpoint SCIM (sandbox)"

# The RUNBOOK_* variables that hold secrets: never print them, only write them to
# a private file.
SECRET_ENV_KEYS = frozenset(
    {
        "RUNBOOK_CLIENT_SECRET",
        "RUNBOOK_SCIM_TOKEN",
        "RUNBOOK_IRU_API_TOKEN",
        "RUNBOOK_SANDBOX_ADMIN_TOKEN",
    }
)

_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
# Creation time of the seeded directory objects (2024-01-01T00:00:00Z): fixed, so a
# seed also fixes every createdDateTime.
_SEEDED_AT = 1704067200.0
TIERS = ("free", "p1")


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes a sandbox run.

    seed: fixes every generated id (tenant, client, apps, SCIM resources, request
        ids), so two sandboxes with the same seed and the same calls agree.
    scim_token: the bearer token the Iru stand-in accepts; a random one when None.
    client_secret: the secret of the sandbox's app registration; random when None.
    consistency_reads: how many reads a new service principal stays invisible to
        (simulated replication delay); 0 turns the delay off.
    host: the address all three servers listen on.
    login_port, graph_port, iru_port: fixed ports, or 0 for free ones.
    state_dir: where the CA certificate is written; a private temporary directory
        (deleted on stop) when None.
    users, groups: the directory's size; the default (12 users, 5 top-level groups
        plus the nested "Iru Mac Contractors") is the fixed, readable tenant of
        :data:`DEFAULT_USERS` / :data:`DEFAULT_GROUPS`.
    tier: the tenant's Entra ID licence, "free" or "p1" (free refuses groups as
        app role assignees).
    cycle_seconds: None keeps Entra's 40-minute interval in simulated time (cycles
        then come from start/restart/provisionOnDemand, fast_forward or run_cycle);
        a number runs a cycle every that many real seconds.
    assignment_reads: how many list/get requests a new app role assignment stays
        invisible to (replication lag after assignment); 0 turns it off.
    faults: fault and latency rules in force from the start.
    iru_api_token: the token of the Iru Enterprise API read view (separate from the
        SCIM token); random when None.
    admin_token: the token of the sandbox's own ``/_sandbox`` admin routes; random
        when None.
    withheld_permissions: Microsoft Graph permission names (e.g.
        ``User.Read.All``) that no client of the tenant holds: the app registration
        lacks the app role and delegated consent never grants the scope, so Graph
        answers 403 where a call needs it (a tenant where an admin forgot one).
    client_certificate_pem: a certificate (PEM; a private key beside it is ignored)
        uploaded to the app registration from the start, for certificate sign-in;
        :meth:`Sandbox.register_certificate` adds more at runtime.
    federated_credentials: federated identity credentials on the app registration
        (issuer, subject, audience) for workload identity sign-in;
        :meth:`Sandbox.add_federated_credential` adds more at runtime.
    preprovisioned: start as a tenant where the runbook's pages 02-06 ran and the
        engine finished its first cycle: the app (named :data:`SANDBOX_APP_NAME`) with
        its job started and credentials saved, the assignments made, and the Iru
        stand-in holding what the engine would have sent (no HTTP, no cycle run; see
        :mod:`._preprovision`). :attr:`Sandbox.preprovisioned` describes the result.
    preprovision_groups: how many security-enabled groups are assigned, in directory
        order; None assigns all of them.
    preprovision_direct_users: how many users who are in no assigned group are assigned
        directly (User role), in directory order.
    device_compliance: map ``externalId`` from ``objectId`` for users (the runbook's
        page 04 option); otherwise users keep the default ``mailNickname``.
    drift: differences seeded into Iru after pre-provisioning, as ``KIND:N`` with KIND
        one of missing_user, wrong_external_id, inactive, extra_member, missing_group;
        the seed picks the objects, :attr:`Sandbox.seeded_drift` lists them.
    """

    seed: int = 1
    scim_token: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    consistency_reads: int = 2
    host: str = "127.0.0.1"
    login_port: int = 0
    graph_port: int = 0
    iru_port: int = 0
    state_dir: Path | str | None = None
    users: int = 12
    groups: int = 5
    tier: str = "p1"
    cycle_seconds: float | None = None
    assignment_reads: int = 1
    faults: tuple[FaultRule, ...] = ()
    iru_api_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    withheld_permissions: tuple[str, ...] = ()
    client_certificate_pem: bytes | None = None
    federated_credentials: tuple[FederatedCredential, ...] = ()
    preprovisioned: bool = False
    preprovision_groups: int | None = None
    preprovision_direct_users: int = 0
    device_compliance: bool = False
    drift: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raise ValueError for settings no sandbox can run with."""
        if self.consistency_reads < 0 or self.assignment_reads < 0:
            raise ValueError("consistency_reads and assignment_reads must be 0 or more")
        if self.users < 0 or self.groups < 0:
            raise ValueError("users and groups must be 0 or more")
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        if self.cycle_seconds is not None and self.cycle_seconds <= 0:
            raise ValueError("cycle_seconds must be positive (or None)")
        if self.preprovision_direct_users < 0 or (self.preprovision_groups or 0) < 0:
            raise ValueError("preprovision_groups and preprovision_direct_users must be 0 or more")
        for spec in self.drift:
            parse_drift(spec)
        if self.drift and not self.preprovisioned:
            raise ValueError("drift needs preprovisioned=True")


class Sandbox(DirectoryHandle, ProvisioningHandle):
    """The running sandbox: use as a context manager, or call start() and stop().

    A sandbox is single-use: after stop(), make a new one. Beyond the addresses and
    credentials (:meth:`env`), the handle plays the Entra admin and the observer:

    * directory: :meth:`users`, :meth:`groups`, :meth:`user`, :meth:`group`,
      :meth:`group_members`, :meth:`add_user`, :meth:`update_user`,
      :meth:`disable_user`, :meth:`soft_delete_user`, :meth:`hard_delete_user`, ...
    * provisioning: :meth:`assignments`, :meth:`job_status`, :meth:`schema`,
      :meth:`provisioning_logs`, :meth:`fast_forward`, :meth:`run_cycle`,
      :meth:`wait_idle`;
    * the Iru side: :meth:`scim_users`, :meth:`scim_groups`, :meth:`iru_users`;
    * faults and the wire: :meth:`inject`, :meth:`clear_faults`, :meth:`requests`;
    * sign-in: :meth:`register_certificate`, :meth:`add_federated_credential`,
      :meth:`sign_ins`.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.config.validate()
        self.redactor = Redactor()
        self.log = RequestLog()
        self.ids = IdFactory(self.config.seed)
        self.clock = SimClock()
        self.scim_token = self.config.scim_token or secrets.token_urlsafe(32)
        self.redactor.add(self.scim_token)
        self.faults = FaultInjector(self.config.seed, self.config.faults)
        directory = build_directory(
            self.ids, users=self.config.users, groups=self.config.groups, created=_SEEDED_AT
        )
        self.state = TenantState(
            self.ids,
            self.redactor,
            client_secret=self.config.client_secret or secrets.token_urlsafe(30),
            consistency_reads=self.config.consistency_reads,
            directory=directory,
            clock=self.clock,
            tier=self.config.tier,
            assignment_reads=self.config.assignment_reads,
            cycle_seconds=self.config.cycle_seconds,
            grants=Grants(withheld=frozenset(self.config.withheld_permissions)),
        )
        self.iru_api_token = self.config.iru_api_token or secrets.token_urlsafe(32)
        self.admin_token = self.config.admin_token or secrets.token_urlsafe(32)
        self.redactor.add(self.iru_api_token)
        self.redactor.add(self.admin_token)
        self.iru = IruApp(self.ids, self.scim_token, self.redactor, api_token=self.iru_api_token)
        # The app registration's certificates and federated credentials (sign-in stand-in).
        self.app_credentials = AppCredentials()
        if self.config.client_certificate_pem:
            self.app_credentials.add_certificate(self.config.client_certificate_pem)
        for federated in self.config.federated_credentials:
            self.app_credentials.add_federated_credential(federated)
        self.worker: ProvisioningWorker | None = None
        self.preprovisioned: Preprovisioned | None = None
        self._servers: dict[ServerName, HttpsServer] = {}
        self._own_dir: Path | None = None
        self._ca_path: Path | None = None
        self.ca: SandboxCA | None = None
        self._started = False

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Create the CA, write its PEM, and start the three servers."""
        if self._started:
            raise RuntimeError("a Sandbox can only be started once; create a new one")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        host = self.config.host
        extra = () if host in _WILDCARD_HOSTS else (host,)
        ca = self.ca = SandboxCA(extra_names=extra)
        if self.config.state_dir is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="runbook-sim-"))
            directory = self._own_dir
        else:
            directory = Path(self.config.state_dir)
        self._ca_path = ca.write_ca_pem(directory / "ca.pem")
        server_context = ca.server_context()

        login = LoginApp(self.state, self.app_credentials)
        self._serve("login", login, server_context, self.config.login_port)
        login.origin = self._origin("login")

        # The provisioning engine trusts the system CAs plus the sandbox CA, like the
        # Test connection probe: its target may be the Iru stand-in or a real endpoint.
        # provisionOnDemand hands it work from the start; its worker starts last.
        engine = Engine(self.state, self.state.provisioning_log, ca.client_context())
        graph = GraphApp(
            self.state,
            authority=login.origin,
            probe_context=ca.client_context(),
            faults=self.faults,
            engine=engine,
        )
        admin = AdminApp(self, self.admin_token)
        self._serve("graph", graph, server_context, self.config.graph_port, admin=admin)
        login.graph_host = self._origin("graph").removeprefix("https://")

        self._serve("iru", self.iru, server_context, self.config.iru_port)
        if self.config.preprovisioned:
            # After the servers bind (the Tenant URL needs the port), before the worker.
            self._preprovision()

        self.worker = ProvisioningWorker(self.state, engine)
        self.worker.start()

    def _preprovision(self) -> None:
        config = self.config
        self.preprovisioned = preprovision(
            self.state,
            self.iru,
            app_name=SANDBOX_APP_NAME,
            scim_url=self.scim_url,
            scim_token=self.scim_token,
            groups=config.preprovision_groups,
            direct_users=config.preprovision_direct_users,
            device_compliance=config.device_compliance,
        )
        if config.drift:
            apply_drift(self.state, self.iru, self.preprovisioned, config.drift, config.seed)
        # What a real Iru serves from its database at once, the stand-in would encode on the
        # first read of each page; do it now, so a measured comparison measures the client.
        self.iru.warm_pages(self.scim_url)

    @property
    def seeded_drift(self) -> list[SeededDrift]:
        """The differences seeded into Iru at start, as (kind, object name) pairs."""
        return list(self.preprovisioned.drift) if self.preprovisioned is not None else []

    def _serve(
        self, name: ServerName, app: Any, context: Any, port: int, admin: Any = None
    ) -> None:
        served = logging_middleware(
            self.faults.middleware(app, name), name, self.log, self.redactor
        )
        if admin is not None:
            # Admin routes bypass faults and the request log.
            served = mount_admin(admin, served)
        server = HttpsServer(
            name,
            served,
            context,
            self.redactor,
            host=self.config.host,
            port=port,
        )
        server.start()
        self._servers[name] = server

    def stop(self) -> None:
        """Stop the worker and the servers, delete the private temporary directory (idempotent)."""
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.stop()
        HttpsServer.stop_all(list(self._servers.values()))
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether all three servers are serving."""
        return len(self._servers) == 3 and all(s.running for s in self._servers.values())

    # -- addresses and credentials ------------------------------------------------------

    def _origin(self, name: ServerName) -> str:
        server = self._servers.get(name)
        if server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host = self.config.host
        url_host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
        url_host = f"[{url_host}]" if ":" in url_host else url_host
        return f"https://{url_host}:{server.port}"

    @property
    def ca_path(self) -> Path:
        """The CA certificate (PEM) clients must trust."""
        if self._ca_path is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._ca_path

    def client_ssl_context(self) -> ssl.SSLContext:
        """A TLS client context that trusts only the sandbox CA (handy for httpx)."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    @property
    def authority(self) -> str:
        """The sign-in authority host, e.g. ``https://127.0.0.1:50001``."""
        return self._origin("login")

    @property
    def graph_url(self) -> str:
        """The Graph base URL, e.g. ``https://127.0.0.1:50002/v1.0``."""
        return self._origin("graph") + "/v1.0"

    @property
    def scim_url(self) -> str:
        """The Iru SCIM base URL, e.g. ``https://127.0.0.1:50003/api/v1/scim``."""
        return self._origin("iru") + IRU_SCIM_PATH

    @property
    def tenant_id(self) -> str:
        """The tenant GUID (fixed by the seed)."""
        return self.state.tenant_id

    @property
    def client_id(self) -> str:
        """The app registration the runbook signs in as (fixed by the seed)."""
        return self.state.client_id

    def app_token(self) -> str:
        """An app-only Graph access token from this sandbox's own token endpoint (for tests)."""
        response = httpx.post(
            f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
            verify=self.client_ssl_context(),
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    @property
    def client_secret(self) -> str:
        """That app registration's client secret."""
        return self.state.client_secret

    def register_certificate(self, certificate: bytes) -> str:
        """Upload a certificate (PEM or DER) to the app registration; returns its thumbprint.

        Certificate sign-in then succeeds for assertions signed with its private key.
        """
        return self.app_credentials.add_certificate(certificate)

    def add_federated_credential(
        self, issuer: str, subject: str, audience: str = FEDERATED_AUDIENCE
    ) -> FederatedCredential:
        """Add a federated identity credential: tokens from ``issuer`` about ``subject``
        (with ``audience``) may then be exchanged for the app's tokens."""
        credential = FederatedCredential(issuer, subject, audience)
        self.app_credentials.add_federated_credential(credential)
        return credential

    def sign_ins(self) -> list[SignInRecord]:
        """Every token the sign-in stand-in issued: grant, client, credential, scopes asked
        for and permissions granted (request bodies are never in :meth:`requests`)."""
        return self.state.tokens.sign_ins()

    @property
    def app_name(self) -> str:
        """The display name the runbook should give the enterprise app."""
        return SANDBOX_APP_NAME

    @property
    def iru_api_url(self) -> str:
        """The Iru Enterprise API URL as Iru shows it (the host; users at ``/api/v1/users``)."""
        return self._origin("iru")

    @property
    def admin_url(self) -> str:
        """The base of the sandbox's admin routes, e.g. ``https://127.0.0.1:50002/_sandbox``."""
        return self._origin("graph") + ADMIN_PREFIX

    def summary(self) -> dict[str, Any]:
        """Seed, tier, directory size, simulated time, and the apps with their jobs.

        What ``GET /_sandbox`` answers, for a second terminal that wants to know what it
        is driving.
        """
        return {
            "seed": self.config.seed,
            "tier": self.config.tier,
            "users": len(self.state.directory.users),
            "groups": len(self.state.directory.groups),
            "simulatedTime": self.clock.now_dt().isoformat(),
            "fastForwardedSeconds": self.clock.offset,
            "cycleSeconds": self.config.cycle_seconds,
            "servicePrincipals": [
                {"id": sp["id"], "displayName": sp["displayName"], "jobs": self.jobs(sp["id"])}
                for sp in self.service_principals()
            ],
        }

    def admin_env(self) -> dict[str, str]:
        """RUNBOOK_SANDBOX_ADMIN_URL and _TOKEN: for a second terminal driving the sandbox."""
        return {
            "RUNBOOK_SANDBOX_ADMIN_URL": self.admin_url,
            "RUNBOOK_SANDBOX_ADMIN_TOKEN": self.admin_token,
        }

    def env(self, *, include_iru_api: bool = False) -> dict[str, str]:
        """The RUNBOOK_* settings that point the runbook at this sandbox.

        ``include_iru_api`` adds RUNBOOK_IRU_API_URL and RUNBOOK_IRU_API_TOKEN for the
        runbook's optional cross-check against Iru's Enterprise API.
        """
        values = self._env()
        if include_iru_api:
            values["RUNBOOK_IRU_API_URL"] = self.iru_api_url
            values["RUNBOOK_IRU_API_TOKEN"] = self.iru_api_token
        return values

    def _env(self) -> dict[str, str]:
        return {
            "RUNBOOK_TENANT_ID": self.tenant_id,
            # Explicit, so a certificate or federated token file elsewhere in the
            # environment cannot change how the runbook signs in to the sandbox.
            "RUNBOOK_AUTH": "client-secret",
            "RUNBOOK_CLIENT_ID": self.client_id,
            "RUNBOOK_CLIENT_SECRET": self.client_secret,
            "RUNBOOK_AUTHORITY": self.authority,
            "RUNBOOK_GRAPH_URL": self.graph_url,
            "RUNBOOK_SCIM_URL": self.scim_url,
            "RUNBOOK_SCIM_TOKEN": self.scim_token,
            "RUNBOOK_CA_BUNDLE": str(self.ca_path),
            "RUNBOOK_APP_NAME": SANDBOX_APP_NAME,
            # New objects replicate within a few reads here, so poll quickly.
            "RUNBOOK_POLL_INTERVAL": "0.1",
        }

    # -- inspection (for tests; no replication delay, no masking) -------------------------

    def requests(self, server: ServerName | None = None) -> list[RequestRecord]:
        """A copy of the request log, optionally for one server only."""
        return self.log.records(server)

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.log.clear()

    def service_principals(self) -> list[dict[str, Any]]:
        """Every service principal, as Graph would render it, in creation order."""
        return [
            render_service_principal(sp, self.tenant_id)
            for sp in self.state.all_service_principals()
        ]

    def _sp(self, sp_id: str) -> Any:
        sp = self.state.get_service_principal(sp_id)
        if sp is None:
            raise KeyError(f"no service principal with id {sp_id!r}")
        return sp

    def jobs(self, sp_id: str) -> list[dict[str, Any]]:
        """The synchronization jobs of a service principal, as Graph renders them."""
        sp = self._sp(sp_id)
        with self.state.lock:
            saved = sp.credentials_saved
            return [render_job(job, saved, self.state.cycle_seconds) for job in sp.jobs.values()]

    def secrets(self, sp_id: str) -> dict[str, str]:
        """The saved synchronization secrets of a service principal, unmasked."""
        sp = self._sp(sp_id)
        with self.state.lock:
            return dict(sp.secrets)

    def scim_users(self) -> list[dict[str, Any]]:
        """The users stored in the Iru stand-in, as SCIM JSON."""
        return self.iru.resources("User")

    def scim_groups(self) -> list[dict[str, Any]]:
        """The groups stored in the Iru stand-in, as SCIM JSON."""
        return self.iru.resources("Group")

    def iru_users(self) -> list[dict[str, Any]]:
        """The users as Iru's Enterprise API lists them (``GET /api/v1/users``)."""
        return self.iru.api.users()

    # -- faults -----------------------------------------------------------------------------

    def inject(self, rule: FaultRule) -> None:
        """Start applying a fault or latency rule (see :class:`FaultRule`)."""
        self.faults.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault and latency rule."""
        self.faults.clear()
