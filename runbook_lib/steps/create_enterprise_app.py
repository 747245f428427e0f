"""02-create-enterprise-app: the non-gallery enterprise app, found by name or created once.

Instantiating Entra's non-gallery template is not idempotent (twice means two apps with the
same name), so the step always looks the name up first and stops with a list when the name is
ambiguous. A new app can answer 404 for a while; the step waits until Graph can read it.
Two runs at once can both find no app and both create one: after creating, the step looks
again, keeps the oldest app of that name and deletes its own copy if it is not that one.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from .._checks import HEADS_UP, Change, CheckResult
from .._exceptions import ConsistencyTimeout, GraphNotFound, StepError
from .._graph import odata_quote
from .._tenant import NON_GALLERY_TEMPLATE_ID, find_app, find_apps
from ._base import Step

__all__ = ["CreateEnterpriseApp"]


def _created(registration: dict[str, Any]) -> datetime:
    """An application's ``createdDateTime`` (the latest possible time when unreadable)."""
    try:
        moment = datetime.fromisoformat(str(registration.get("createdDateTime")))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CreateEnterpriseApp(Step):
    """Ensure exactly one enterprise app named ``app_name`` exists (from the non-gallery template)."""

    name: ClassVar[str] = "02-create-enterprise-app"
    title: ClassVar[str] = "Create the enterprise app (non-gallery)"

    def planned_effects(self, planned: list[Change]) -> dict[str, Any]:
        """A dry run that plans the app: later pages plan against the template's new app."""
        if any(c.action == "create" for c in planned):
            return {"app": {"displayName": self.runbook.app_name}}
        return {}

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
        started = time.monotonic()
        created = graph.post(
            f"applicationTemplates/{NON_GALLERY_TEMPLATE_ID}/instantiate", {"displayName": name}
        )
        sp = created["servicePrincipal"]
        sp_id = sp["id"]
        self.runbook.progress(
            f"Created '{name}' (objectId {sp_id}); waiting until Graph can read it"
        )
        graph.wait_for(
            lambda: graph.get(f"servicePrincipals/{sp_id}", **{"$select": "id"}),
            what=f"service principal {sp_id}",
            progress=self.runbook.progress,
        )
        named = self._wait_listed(sp_id)
        applied = [Change("create", f"enterprise app '{name}'", f"objectId {sp_id}")]
        # Another run may have looked the name up before this run's app was listed, and be
        # creating its own. Its create takes about as long as this one took to be created and
        # listed, so keep looking for that long: on a second app, keep the oldest and remove
        # this run's copy if it is not that one.
        deadline = time.monotonic() + (time.monotonic() - started)
        while len(named) < 2 and time.monotonic() < deadline:
            time.sleep(graph.poll_interval)
            named = find_apps(graph, name)
        if len(named) > 1:
            applied += self._settle_duplicates(sp_id, sp.get("appId", ""))
        return applied

    def _wait_listed(self, sp_id: str) -> list[dict[str, Any]]:
        """Wait until the name lookup finds the new app, so the next step can too; return
        every app the lookup then lists under the name (more than one after a race)."""
        graph = self.runbook.graph

        def listed() -> list[dict[str, Any]]:
            apps = find_apps(graph, self.runbook.app_name)
            if sp_id not in {a["id"] for a in apps}:
                raise GraphNotFound("not listed yet", status=404)
            return apps

        found: list[dict[str, Any]] = graph.wait_for(
            listed, what="the new app in name lookups", progress=self.runbook.progress
        )
        return found

    def _registrations(self, sp_id: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """The apps the name finds now, and appId -> application object (id, createdDateTime)
        for each of them.

        ``createdDateTime`` is documented on the application, not on the service principal,
        so the age of an enterprise app is read from its application object. A new one can
        be missing from the list for a while (replication), so both lists are read again
        until every app listed has its application; an app the other run deleted meanwhile
        simply drops out.
        """
        graph = self.runbook.graph
        name = self.runbook.app_name
        params = {
            "$filter": f"displayName eq {odata_quote(name)}",
            "$select": "id,appId,displayName,createdDateTime",
        }

        def read() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
            named = find_apps(graph, name)
            if sp_id not in {a["id"] for a in named}:
                raise GraphNotFound("this run's app is not listed", status=404)
            if len(named) < 2:
                return named, {}
            wanted = {a.get("appId", "") for a in named}
            found = {
                a["appId"]: a
                for a in graph.get_all("applications", params=params)
                if a.get("appId") in wanted
            }
            if set(found) != wanted:
                raise GraphNotFound(f"{len(wanted - set(found))} not listed yet", status=404)
            return named, found

        result: tuple[list[dict[str, Any]], dict[str, dict[str, Any]]] = graph.wait_for(
            read, what="the app registrations named alike", progress=self.runbook.progress
        )
        return result

    def _settle_duplicates(self, sp_id: str, app_id: str) -> list[Change]:
        """Keep the oldest of the apps named alike; delete this run's if it is not that one.

        Every run that raced applies the same rule (oldest ``createdDateTime``, then the
        smaller object id), so they agree on which app stays without talking to each other.
        """
        graph = self.runbook.graph
        name = self.runbook.app_name
        named, registrations = self._registrations(sp_id)
        if len(named) < 2:
            return []  # the other copy is gone already

        def age(sp: dict[str, Any]) -> tuple[datetime, str]:
            registration = registrations[sp.get("appId", "")]
            return _created(registration), str(registration.get("id", ""))

        kept = min(named, key=age)
        kept_at = registrations[kept["appId"]].get("createdDateTime", "an unknown time")
        if kept["id"] == sp_id:
            others = ", ".join(a["id"] for a in named if a["id"] != sp_id)
            self.notes.append(
                f"{HEADS_UP}Another app named '{name}' appeared while this run created its own "
                f"(objectId {others}): a second run at the same time, or the create of an "
                f"earlier run that was stopped and landed late. This run's app (objectId "
                f"{sp_id}, created {kept_at}) is the older one and is kept; the newer copy is "
                "removed by the run that made it, or by the next run."
            )
            self._wait_single(sp_id)
            return []
        self.runbook.progress(
            f"Another run created '{name}' first (objectId {kept['id']}); removing this "
            f"run's copy (objectId {sp_id})"
        )
        # Both objects instantiate made: the service principal (the enterprise app), then its
        # application (the app registration). Either may already be gone.
        paths = [f"servicePrincipals/{sp_id}"]
        if registrations.get(app_id, {}).get("id"):
            paths.append(f"applications/{registrations[app_id]['id']}")
        for path in paths:
            try:
                graph.delete(path)
            except GraphNotFound:
                pass
        self.notes.append(
            f"{HEADS_UP}An app named '{name}' was created just before this run's own: by a "
            "second run at the same time, or by an earlier run that was stopped while its "
            f"create was on the way. That older app (objectId {kept['id']}, created {kept_at}) "
            f"is kept and used from here on; the copy this run had just created (objectId "
            f"{sp_id}) was deleted, so the name still finds exactly one app."
        )
        self._wait_single(kept["id"])
        return [
            Change(
                "delete",
                f"duplicate enterprise app '{name}'",
                f"objectId {sp_id}, created by this run; objectId {kept['id']} is kept",
            )
        ]

    def _wait_single(self, kept_id: str) -> None:
        """Wait until the name finds only ``kept_id`` (the other run's delete, or this run's,
        has replicated), so the next pages do not stop on two apps with one name."""
        graph = self.runbook.graph

        def single() -> None:
            ids = {a["id"] for a in find_apps(graph, self.runbook.app_name)}
            if ids != {kept_id}:
                raise GraphNotFound(f"{len(ids - {kept_id})} other app(s) still listed", status=404)

        try:
            graph.wait_for(
                single, what="the removal of the duplicate app", progress=self.runbook.progress
            )
        except ConsistencyTimeout as exc:
            raise StepError(
                f"Two or more enterprise apps are still named '{self.runbook.app_name}': another "
                f"run created one at the same time and its copy was not removed (objectId "
                f"{kept_id} is the oldest and should stay).",
                "Delete the newer app(s) in Entra admin center > Enterprise apps (or wait for "
                "the other run to finish), then run this page again.",
                hint=self.name,
            ) from exc

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
