"""Typed settings shared by the notebooks, the CLI and the tests.

Every value comes from a ``RUNBOOK_*`` environment variable. Non-secret values may also be
overridden by notebook parameters (``load_settings(app_name=...)``); secrets may not, because
papermill copies parameters into the executed notebook twice. Secrets are read from the
environment, then the OS keyring (service ``runbook``), then an interactive prompt, and are held
as :class:`pydantic.SecretStr` so that ``repr`` and ``print`` never show them.
"""

from __future__ import annotations

import getpass
import os
import re
import ssl
import sys
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._exceptions import ConfigurationError
from ._redact import register_secret

__all__ = [
    "AUTH_METHODS",
    "SECRET_FIELDS",
    "AuthMethod",
    "Settings",
    "load_settings",
    "missing_settings",
    "require_secret",
    "require_settings",
]

AuthMethod = Literal[
    "auto", "client-secret", "certificate", "device-code", "azure-cli", "workload-identity"
]
"""The values ``RUNBOOK_AUTH`` accepts (see :attr:`Settings.auth`)."""
AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)

SECRET_FIELDS = frozenset({"client_secret", "client_certificate_password", "scim_token"})
KEYRING_SERVICE = "runbook"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class Settings(BaseSettings):
    """Where the runbook signs in, which Graph it calls and which Iru SCIM endpoint it targets."""

    model_config = SettingsConfigDict(env_prefix="RUNBOOK_", extra="ignore", frozen=True)

    tenant_id: str = ""
    """Directory (tenant) ID or primary domain of the Entra tenant."""
    auth: AuthMethod = "auto"
    """How to sign in: ``client-secret``, ``certificate``, ``workload-identity`` (app-only, with
    an app registration), ``device-code`` or ``azure-cli`` (an admin, delegated). ``auto`` picks
    the first that is configured: a client secret, then a certificate, then a federated token
    file, otherwise device code. The method picked is the only one tried."""
    client_id: str = ""
    """Application (client) ID of the app registration the runbook signs in with. Required for
    the app-only methods; optional for device code, which otherwise signs in through Microsoft
    Graph Command Line Tools (no app registration of your own)."""
    client_secret: SecretStr | None = None
    """Client secret of that app registration (``client-secret`` sign-in)."""
    client_certificate: Path | None = None
    """PEM or PKCS#12 (.pfx) file holding the app registration's certificate and its private
    key (``certificate`` sign-in); the public part is what is uploaded to the app."""
    client_certificate_password: SecretStr | None = None
    """Password of the certificate's private key, when it has one."""
    federated_token_file: Path | None = None
    """File holding the pipeline's federated (OIDC) token for ``workload-identity`` sign-in;
    falls back to ``AZURE_FEDERATED_TOKEN_FILE``, which AKS workload identity sets."""
    authority: str = "https://login.microsoftonline.com"
    """Sign-in authority host (the sandbox's token endpoint in rehearsal)."""
    graph_url: str = "https://graph.microsoft.com/v1.0"
    """Base URL of Microsoft Graph including the version segment."""
    scim_url: str = ""
    """Iru Endpoint SCIM API URL from the integration's View Details, ends in /api/v1/scim."""
    scim_token: SecretStr | None = None
    """Iru Endpoint SCIM bearer token (shown once when the integration is created)."""
    app_name: str = "Iru Endpoint SCIM"
    """Display name of the Entra enterprise app the runbook creates or finds."""
    ca_bundle: Path | None = None
    """Extra PEM CA certificates to trust (the sandbox's, or a corporate TLS proxy's)."""
    poll_interval: float = Field(default=2.0, gt=0, le=60)
    """Seconds between reads while waiting for Graph to replicate a new object."""
    consistency_timeout: float = Field(default=300.0, gt=0, le=3600)
    """Seconds to wait for a new object to become readable before giving up."""
    graph_concurrency: int = Field(default=8, ge=1, le=32)
    """How many independent Graph reads (a group's members, a batch of users) step 07, step 08
    and ``runbook check`` send at once (``RUNBOOK_GRAPH_CONCURRENCY``, 1..32). 1 reads one at a
    time; Graph's throttling answers are honoured either way."""

    @model_validator(mode="before")
    @classmethod
    def _federated_token_fallback(cls, data: Any) -> Any:
        """RUNBOOK_FEDERATED_TOKEN_FILE, else AZURE_FEDERATED_TOKEN_FILE (as azure-identity)."""
        if isinstance(data, dict) and not data.get("federated_token_file"):
            fallback = os.environ.get("AZURE_FEDERATED_TOKEN_FILE", "").strip()
            if fallback:
                data = {**data, "federated_token_file": fallback}
        return data

    @field_validator("auth", mode="before")
    @classmethod
    def _auth(cls, value: Any) -> Any:
        if value is None:
            return "auto"
        if isinstance(value, str):
            cleaned = value.strip().lower().replace("_", "-") or "auto"
            if cleaned not in AUTH_METHODS:
                raise ValueError(f"must be one of {', '.join(AUTH_METHODS)}, got '{value.strip()}'")
            return cleaned
        return value

    @field_validator("client_certificate", "federated_token_file", mode="before")
    @classmethod
    def _optional_path(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return Path(value.strip()).expanduser() if isinstance(value, str) else value

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        value = value.strip()
        if value and not (_GUID.match(value) or _DOMAIN.match(value)):
            raise ValueError(
                "must be a directory (tenant) ID such as 72f988bf-86f1-41af-91ab-2d7cd011db47 "
                "or a domain such as contoso.onmicrosoft.com"
            )
        return value

    @field_validator("client_id")
    @classmethod
    def _client(cls, value: str) -> str:
        value = value.strip()
        if value and not _GUID.match(value):
            raise ValueError("must be an application (client) ID, a GUID")
        return value

    @field_validator("authority", "graph_url")
    @classmethod
    def _https(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"must be an https:// URL with a host, got '{value}'")
        return value

    @field_validator("scim_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("app_name")
    @classmethod
    def _app_name(cls, value: str) -> str:
        # Graph refuses a blank displayName only at page 02, after pages 00-01 passed; say so
        # before anything runs.
        value = value.strip()
        if not value:
            raise ValueError(
                "is empty: it is the display name of the enterprise app the runbook creates "
                "or finds (the default is 'Iru Endpoint SCIM')"
            )
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        if not value.is_file():
            raise ValueError(f"file '{value}' does not exist or is not a file")
        # Load it now: an unreadable bundle otherwise surfaces as a bare SSLError at the first
        # HTTPS request, pages later.
        try:
            ssl.create_default_context(cafile=str(value))
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc.__class__.__name__
            raise ValueError(
                f"file '{value}' holds no usable certificate ({reason}): it must be the CA "
                "certificate (or a bundle of them) in PEM form, the text that starts with "
                "-----BEGIN CERTIFICATE-----"
            ) from None
        return value

    @property
    def graph_scope(self) -> str:
        """The ``.default`` scope for the Graph host (national clouds have their own)."""
        host = urlsplit(self.graph_url).hostname or ""
        if host.startswith("graph.microsoft.") or host.endswith(".graph.microsoft.com"):
            return f"https://{host}/.default"
        if host in {"microsoftgraph.chinacloudapi.cn", "dod-graph.microsoft.us"}:
            return f"https://{host}/.default"
        return "https://graph.microsoft.com/.default"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, applying non-secret ``overrides``.

    Empty overrides (``""`` or ``None``) are ignored so that a notebook parameter left at its
    default falls back to the environment. Passing a secret raises, by design.
    """
    forbidden = SECRET_FIELDS & {k for k, v in overrides.items() if v not in (None, "")}
    if forbidden:
        names = ", ".join(sorted(f"RUNBOOK_{n.upper()}" for n in forbidden))
        raise ConfigurationError(
            f"{names} cannot be passed as a parameter: parameters are written into the "
            "executed notebook.",
            f"Set {names} in the environment or the OS keyring instead.",
            hint="00-overview",
        )
    clean = {k: v for k, v in overrides.items() if v not in (None, "")}
    try:
        settings = Settings(**clean)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            # pydantic says "Input should be ..."; the admin reads "RUNBOOK_X must be ...".
            msg = err["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
            problems.append(f"RUNBOOK_{field.upper()} {msg}")
        raise ConfigurationError(
            "Some settings are not valid: " + "; ".join(problems) + ".",
            "Correct the environment variable (or the notebook parameter) and run again.",
            hint="00-overview",
        ) from None
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if value is not None:
            register_secret(value.get_secret_value())
    return settings


def _from_keyring(name: str) -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, name)
    except (KeyringError, RuntimeError):
        return None


def _prompt(label: str) -> str | None:
    """Ask at a terminal or a notebook; return None when nobody can answer (papermill, CI)."""
    interactive = sys.stdin is not None and sys.stdin.isatty()
    try:
        from IPython import get_ipython

        shell = get_ipython()
        kernel = getattr(shell, "kernel", None)
        if kernel is not None:
            interactive = bool(getattr(kernel, "_allow_stdin", False))
    except ImportError:  # pragma: no cover
        pass
    if not interactive:
        return None
    try:
        return getpass.getpass(f"{label}: ") or None
    except (EOFError, OSError, Exception):  # StdinNotImplementedError has no common base
        return None


def require_secret(settings: Settings, name: str) -> SecretStr:
    """Return the secret ``name`` from the environment, the keyring or a prompt.

    Raises ConfigurationError naming the variable when none of them has it.
    """
    if name not in SECRET_FIELDS:
        raise ValueError(f"{name} is not a secret setting")
    value = getattr(settings, name)
    if value is not None and value.get_secret_value():
        return value  # type: ignore[no-any-return]
    env = f"RUNBOOK_{name.upper()}"
    found = _from_keyring(name) or _prompt(env)
    if not found:
        raise ConfigurationError(
            f"{env} is not set.",
            f"Set {env} in the environment, store it with "
            f"`keyring set {KEYRING_SERVICE} {name}`, or run the notebook interactively "
            "to be prompted.",
            hint="00-overview",
        )
    register_secret(found)
    return SecretStr(found)


def missing_settings(settings: Settings, *, check_keyring: bool = True) -> list[tuple[str, str]]:
    """Every setting a run needs that ``settings`` lacks, as ``(problem, fix)`` pairs.

    Each pair names the ``RUNBOOK_*`` variable and says how to set it: the sign-in settings
    the resolved method needs (as :func:`runbook_lib._auth.sign_in_problems` lists them), the
    Iru SCIM API URL and the Iru SCIM token. A secret stored in the keyring counts as set
    (``check_keyring``); nobody is prompted. Empty when nothing is missing.
    """
    from ._auth import sign_in_problems  # _auth imports this module

    problems = list(sign_in_problems(settings, check_keyring=check_keyring))
    if not settings.scim_url:
        problems.append(
            (
                "RUNBOOK_SCIM_URL is not set",
                "Set RUNBOOK_SCIM_URL to the SCIM API URL shown under View Details of the SCIM "
                "integration in Iru Endpoint (it ends in /api/v1/scim).",
            )
        )
    token = settings.scim_token
    if not (token is not None and token.get_secret_value()) and not (
        check_keyring and _from_keyring("scim_token")
    ):
        problems.append(
            (
                "RUNBOOK_SCIM_TOKEN is not set",
                "Set RUNBOOK_SCIM_TOKEN to the token Iru Endpoint showed when the SCIM "
                f"integration was created, or store it with `keyring set {KEYRING_SERVICE} "
                "scim_token`.",
            )
        )
    return problems


def require_settings(settings: Settings | None = None, *, check_keyring: bool = True) -> Settings:
    """``settings`` (else :func:`load_settings`) when nothing a run needs is missing.

    Otherwise raises one :class:`ConfigurationError` that names every missing setting at
    once, each with its ``RUNBOOK_*`` variable and how to set it, so that a run against a
    tenant stops before its first page instead of one setting at a time.
    """
    settings = settings or load_settings()
    problems = missing_settings(settings, check_keyring=check_keyring)
    if not problems:
        return settings
    if len(problems) == 1:
        problem, fix = problems[0]
        raise ConfigurationError(f"{problem}.", fix, hint="00-overview")
    listed = "\n".join(f"  - {problem}. {fix}" for problem, fix in problems)
    raise ConfigurationError(
        f"{len(problems)} settings are missing:\n{listed}",
        "Set each variable above in the environment (or keep the secrets in the OS keyring) "
        "and run again; docs/settings.md describes every setting.",
        hint="00-overview",
    )
