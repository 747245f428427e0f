"""The Runbook object: settings plus lazily built credential, Graph client and SCIM client.

A notebook builds one from its parameters; the CLI and the tests build one from the
environment. Nothing here knows whether it talks to Microsoft or to the sandbox: only the URLs
and the CA bundle in the settings differ. Under ``runbook run`` the credential is the run's one
sign-in (:func:`runbook_lib._auth.run_credential`) whenever it fits the page's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from azure.core.credentials import TokenCredential

from ._auth import graph_scopes, make_credential, run_credential
from ._graph import GraphClient
from ._scim import IruScimClient
from ._settings import Settings, load_settings, require_secret
from ._tls import ssl_context

__all__ = ["ProgressBarFactory", "Runbook"]

ProgressBarFactory = Callable[..., Callable[[float | None], None]]
"""``factory(total=..., description=...)`` returns ``update(elapsed)``; ``update(None)`` closes it."""


def _no_bar(**_: Any) -> Callable[[float | None], None]:
    return lambda elapsed: None


class Runbook:
    """One tenant and one Iru SCIM endpoint, as the settings describe them.

    :param settings: from :func:`runbook_lib.load_settings`.
    :param credential: an azure-identity credential; built from the settings when omitted.
    :param progress: receives one-line progress messages (long waits, device code prompt).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        credential: TokenCredential | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self._credential = credential
        self.progress: Callable[[str], None] = progress or (lambda message: None)
        self.progress_bar: ProgressBarFactory = _no_bar

    @classmethod
    def from_parameters(cls, **overrides: Any) -> Runbook:
        """Settings from the environment with the notebook's non-secret parameters on top."""
        return cls(load_settings(**overrides))

    @cached_property
    def credential(self) -> TokenCredential:
        return (
            self._credential
            or run_credential(self.settings, prompt=self.progress)
            or make_credential(self.settings, prompt=self.progress)
        )

    @cached_property
    def tls(self) -> Any:
        return ssl_context(self.settings.ca_bundle)

    @cached_property
    def graph(self) -> GraphClient:
        return GraphClient(
            self.settings.graph_url,
            self.credential,
            scope=graph_scopes(self.settings),
            verify=self.tls,
            poll_interval=self.settings.poll_interval,
            consistency_timeout=self.settings.consistency_timeout,
        )

    @cached_property
    def scim(self) -> IruScimClient:
        token = require_secret(self.settings, "scim_token")
        return IruScimClient(
            self.settings.scim_url,
            token,
            verify=self.tls,
            concurrency=self.settings.graph_concurrency,
        )

    @property
    def app_name(self) -> str:
        return self.settings.app_name

    def close(self) -> None:
        for name in ("graph", "scim"):
            client = self.__dict__.get(name)
            if client is not None:
                client.close()

    def __enter__(self) -> Runbook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
