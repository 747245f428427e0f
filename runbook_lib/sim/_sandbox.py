"""The :class:`Sandbox` handle: three HTTPS stand-ins started and stopped together.

One object owns the CA, the shared tenant state, the request log and the three
servers (sign-in, Graph, Iru SCIM). The library under test is pointed at it only
through :meth:`Sandbox.env` - URLs, ids, secrets and a CA bundle - exactly as it
would be pointed at Microsoft and Iru, so there is no "sandbox mode" in the library.
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

from ._ca import SandboxCA
from ._graph import GraphApp
from ._http import HttpsServer
from ._ids import IdFactory
from ._iru import IRU_SCIM_PATH, IruApp
from ._log import Redactor, RequestLog, RequestRecord, ServerName, logging_middleware
from ._login import LoginApp
from ._shapes import render_job, render_service_principal
from ._state import TenantState

__all__ = ["SANDBOX_APP_NAME", "SECRET_ENV_KEYS", "Sandbox", "SandboxConfig"]

SANDBOX_APP_NAME = "Iru Endpoint SCIM (sandbox)"

# The RUNBOOK_* variables that hold secrets: never print them, only write them to
# a private file.
SECRET_ENV_KEYS = frozenset({"RUNBOOK_CLIENT_SECRET", "RUNBOOK_SCIM_TOKEN"})

_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


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


class Sandbox:
    """The running sandbox: use as a context manager, or call start() and stop().

    A sandbox is single-use: after stop(), make a new one.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        if self.config.consistency_reads < 0:
            raise ValueError("consistency_reads must be 0 or more")
        self.redactor = Redactor()
        self.log = RequestLog()
        self.ids = IdFactory(self.config.seed)
        self.scim_token = self.config.scim_token or secrets.token_urlsafe(32)
        self.redactor.add(self.scim_token)
        self.state = TenantState(
            self.ids,
            self.redactor,
            client_secret=self.config.client_secret or secrets.token_urlsafe(30),
            consistency_reads=self.config.consistency_reads,
        )
        self.iru = IruApp(self.ids, self.scim_token, self.redactor)
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

        login = LoginApp(self.state)
        self._serve("login", login, server_context, self.config.login_port)
        login.origin = self._origin("login")

        graph = GraphApp(self.state, authority=login.origin, probe_context=ca.client_context())
        self._serve("graph", graph, server_context, self.config.graph_port)
        login.graph_host = self._origin("graph").removeprefix("https://")

        self._serve("iru", self.iru, server_context, self.config.iru_port)

    def _serve(self, name: ServerName, app: Any, context: Any, port: int) -> None:
        server = HttpsServer(
            name,
            logging_middleware(app, name, self.log, self.redactor),
            context,
            self.redactor,
            host=self.config.host,
            port=port,
        )
        server.start()
        self._servers[name] = server

    def stop(self) -> None:
        """Stop the servers and delete the private temporary directory (idempotent)."""
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

    @property
    def client_secret(self) -> str:
        """That app registration's client secret."""
        return self.state.client_secret

    @property
    def app_name(self) -> str:
        """The display name the runbook should give the enterprise app."""
        return SANDBOX_APP_NAME

    def env(self) -> dict[str, str]:
        """The RUNBOOK_* settings that point the runbook at this sandbox."""
        return {
            "RUNBOOK_TENANT_ID": self.tenant_id,
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
            return [render_job(job, sp) for job in sp.jobs.values()]

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
