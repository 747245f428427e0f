"""02-create-enterprise-app: the non-gallery enterprise app, found by name or created once.

Instantiating Entra's non-gallery template is not idempotent (twice means two apps with the
same name), so the step always looks the name up first and stops with a list when the name is
ambiguous. A new app can answer 404 for a while; the step waits until Graph can read it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .._checks import Change, CheckResult
from .._tenant import NON_GALLERY_TEMPLATE_ID, find_app
from ._base import Step

__all__ = ["CreateEnterpriseApp"]


class CreateEnterpriseApp(Step):
    """Ensure exactly one enterprise app named ``app_name`` exists (from the non-gallery template)."""

    name: ClassVar[str] = "02-create-enterprise-app"
    title: ClassVar[str] = "Create the enterprise app (non-gallery)"

    def plan(self) -> list[Change]:
        name = self.runbook.app_name
        app = find_app(self.runbook.graph, name)
        if app is not None:
            self.notes.append(f"Found '{name}' (objectId {app['id']}, appId {app['appId']}).")
            return []
        return [
            Change(
                "create",
                f"enterprise app '{name}'",
                f"from the non-gallery template {NON_GALLERY_TEMPLATE_ID}",
            )
        ]

    def apply(self, changes: list[Change]) -> list[Change]:
        graph = self.runbook.graph
        name = self.runbook.app_name
        created = graph.post(
            f"applicationTemplates/{NON_GALLERY_TEMPLATE_ID}/instantiate", {"displayName": name}
        )
        sp_id = created["servicePrincipal"]["id"]
        self.runbook.progress(
            f"Created '{name}' (objectId {sp_id}); waiting until Graph can read it"
        )
        graph.wait_for(
            lambda: graph.get(f"servicePrincipals/{sp_id}", **{"$select": "id"}),
            what=f"service principal {sp_id}",
            progress=self.runbook.progress,
        )
        self._wait_listed(sp_id)
        return [Change("create", f"enterprise app '{name}'", f"objectId {sp_id}")]

    def _wait_listed(self, sp_id: str) -> None:
        """Wait until the name lookup finds the new app, so the next step can too."""
        from .._exceptions import GraphNotFound

        graph = self.runbook.graph

        def listed() -> dict[str, Any]:
            app = find_app(graph, self.runbook.app_name)
            if app is None or app["id"] != sp_id:
                raise GraphNotFound("not listed yet", status=404)
            return app

        graph.wait_for(listed, what="the new app in name lookups", progress=self.runbook.progress)

    def verify(self) -> list[CheckResult]:
        name = self.runbook.app_name
        app = find_app(self.runbook.graph, name)
        if app is None:
            return [
                CheckResult.failed(
                    "Enterprise app exists",
                    f"no app named '{name}' was found",
                    "Run this step again; Graph may still be replicating the new app.",
                    self.name,
                )
            ]
        checks = [CheckResult.passed("Enterprise app exists", f"'{name}' objectId {app['id']}")]
        template = app.get("applicationTemplateId")
        if template == NON_GALLERY_TEMPLATE_ID:
            checks.append(CheckResult.passed("Made from the non-gallery template", template))
        else:
            checks.append(
                CheckResult.warned(
                    "Made from the non-gallery template",
                    f"applicationTemplateId is {template!r}",
                    "The vendor procedure uses a non-gallery app; a SAML app with SCIM added "
                    "also works if its provisioning offers the 'scim' template.",
                )
            )
        roles = [
            r
            for r in app.get("appRoles", [])
            if r.get("displayName") == "User" and r.get("isEnabled", True)
        ]
        if roles:
            checks.append(
                CheckResult.passed("Has the 'User' app role for assignments", roles[0]["id"])
            )
        else:
            checks.append(
                CheckResult.failed(
                    "Has the 'User' app role for assignments",
                    "the app declares no enabled 'User' role",
                    "Create the app from the non-gallery template, or add a 'User' app role to it.",
                    self.name,
                )
            )
        return checks
