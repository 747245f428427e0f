"""06-assign-users-and-groups: the app's Users and groups list, as the parameters say.

Entra provisions only what is assigned (scope "assigned only"), and only the **direct** members
of an assigned group: members of a nested group are not provisioned, so the step warns about
nested groups. Groups that Iru Blueprint Assignment Maps use must each be assigned explicitly.
On Entra ID Free, groups cannot be assigned at all: the step assigns the users, reports the
groups it could not assign, and explains why.

Assignments are only ever added. Principals assigned by other means are listed, never removed.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any, ClassVar

from .._checks import HEADS_UP, Change, CheckResult
from .._exceptions import GraphError, GraphNotFound, StepError
from .._graph import odata_quote
from .._planned import PlannedState
from .._snapshot import forget
from .._tenant import find_user, require_app
from ._base import Step

__all__ = ["AssignUsersAndGroups", "is_licence_error"]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_LICENCE = re.compile(r"(P1|P2|premium|licen[cs]e|plan level)", re.IGNORECASE)
_STALE_REFERENCE = "Not a valid reference update"
_ALREADY_ASSIGNED = "Permission being assigned already exists on the object"
FREE_TIER_EXPLANATION = (
    "This tenant is on Entra ID Free, where only users can be assigned to an app; group "
    "assignment needs Entra ID P1 or P2. The users were assigned. Assign the groups' members "
    "individually, or upgrade the licence; Iru Blueprint Assignment Maps that use groups will "
    "not see these groups until then."
)


def _in_deleted_items(graph: Any, object_id: str) -> bool:
    """Whether ``object_id`` is in the directory's deleted items (deleted, restorable)."""
    try:
        graph.get(f"directory/deletedItems/{object_id}", **{"$select": "id"})
    except GraphError:
        return False
    return True


def is_licence_error(exc: GraphError) -> bool:
    """True when Graph refused a group assignment because of the tenant's licence tier."""
    return exc.status in (400, 403) and bool(_LICENCE.search(exc.graph_message))


class AssignUsersAndGroups(Step):
    """Assign users (UPNs or object ids) and groups (names or object ids) to the app's User role."""

    name: ClassVar[str] = "06-assign-users-and-groups"
    title: ClassVar[str] = "Assign users and groups"

    def __init__(
        self,
        runbook: Any,
        *,
        users: list[str] | None = None,
        groups: list[str] | None = None,
        assignment_map_groups: list[str] | None = None,
    ) -> None:
        super().__init__(runbook)
        self.users = [u.strip() for u in users or [] if u.strip()]
        self.groups = [g.strip() for g in groups or [] if g.strip()]
        self.assignment_map_groups = [g.strip() for g in assignment_map_groups or [] if g.strip()]
        self.refused_groups: dict[str, str] = {}

    # -- reads --------------------------------------------------------------------------------
    def _user(self, key: str) -> dict[str, Any] | None:
        return find_user(self.runbook.graph, key, "id,userPrincipalName,displayName,accountEnabled")

    def _group(self, key: str) -> list[dict[str, Any]]:
        graph = self.runbook.graph
        select = "id,displayName,securityEnabled,mailEnabled"
        if _GUID.match(key):
            try:
                return [graph.get(f"groups/{key}", **{"$select": select})]
            except GraphNotFound:
                return []
        params = {"$filter": f"displayName eq {odata_quote(key)}", "$select": select}
        return [g for g in graph.get_all("groups", params=params) if g.get("displayName") == key]

    def _resolve(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        users, groups, problems = [], [], []
        for key in self.users:
            user = self._user(key)
            if user is None:
                problems.append(f"user '{key}' was not found")
            else:
                users.append(user)
        for key in self.groups:
            found = self._group(key)
            if not found:
                problems.append(f"group '{key}' was not found")
            elif len(found) > 1:
                ids = ", ".join(g["id"] for g in found)
                problems.append(
                    f"{len(found)} groups are named '{key}' ({ids}): give the object id instead"
                )
            else:
                groups.append(found[0])
        if problems:
            raise StepError(
                "Some principals to assign could not be used: " + "; ".join(problems) + ".",
                "Correct the users/groups parameters (user principal names, group display names "
                "or object ids) and run the step again; nothing was assigned.",
                hint=self.name,
            )
        return users, groups

    def _assignments(self, sp_id: str) -> list[dict[str, Any]]:
        return list(
            self.runbook.graph.get_all(f"servicePrincipals/{sp_id}/appRoleAssignedTo", top=999)
        )

    @staticmethod
    def _user_role(sp: dict[str, Any]) -> str:
        for role in sp.get("appRoles", []):
            if role.get("displayName") == "User" and role.get("isEnabled", True):
                return str(role["id"])
        raise StepError(
            "The app has no enabled 'User' app role to assign users and groups to.",
            "Recreate the app from the non-gallery template (02-create-enterprise-app).",
            hint="02-create-enterprise-app",
        )

    def _nested_warnings(self, groups: list[dict[str, Any]]) -> list[str]:
        notes = []
        for group in groups:
            members = self.runbook.graph.get_all(
                f"groups/{group['id']}/members", params={"$select": "id,displayName"}, top=999
            )
            nested = [
                m.get("displayName", m["id"])
                for m in members
                if m.get("@odata.type", "").endswith("group")
            ]
            if nested:
                notes.append(
                    f"Group '{group['displayName']}' contains nested group(s) {', '.join(nested)}: their "
                    "members are NOT provisioned. Assign those groups directly if Iru needs them."
                )
        return notes

    # -- contract --------------------------------------------------------------------------------
    def plan(self) -> list[Change]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        self._user_role(sp)
        assigned = {a["principalId"] for a in self._assignments(sp["id"])}
        self.notes = []
        return self._plan_for(assigned)

    def _plan_for(self, assigned: set[str]) -> list[Change]:
        """Resolve the users and groups, add the notes about them, and plan every one not in
        ``assigned`` (the app's current assignees; empty for an app not created yet)."""
        users, groups = self._resolve()
        self.notes += self._nested_warnings(groups)
        if not self.users and not self.groups:
            self.notes.append(
                "No users or groups were given (the users and groups parameters are empty), so "
                "nothing is assigned. List them under 06-assign-users-and-groups in your "
                "parameters file (or in this page's parameters cell) and run this page again."
            )
        for group in groups:
            if group.get("securityEnabled") is False:
                self.notes.append(
                    f"Group '{group['displayName']}' is not a security group; Entra provisions "
                    "security groups most reliably."
                )
        changes = [
            Change("assign", f"user {u['userPrincipalName']}", u["id"])
            for u in users
            if u["id"] not in assigned
        ]
        changes += [
            Change("assign", f"group {g['displayName']}", g["id"])
            for g in groups
            if g["id"] not in assigned
        ]
        return changes

    def apply(self, changes: list[Change]) -> list[Change]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        role = self._user_role(sp)
        applied: list[Change] = []
        already: list[Change] = []  # assigned by another run between plan and apply
        if changes:
            # A comparison kept from an earlier page 07 no longer describes who is assigned.
            forget(self.runbook)
        for change in changes:
            body = {"principalId": change.detail, "resourceId": sp["id"], "appRoleId": role}
            is_group = change.target.startswith("group ")
            if is_group and self.refused_groups:
                self.refused_groups[change.target[6:]] = (
                    "not attempted: the tenant is on Entra ID Free"
                )
                continue
            try:
                made = graph.wait_for(
                    partial(self._post_assignment, sp["id"], body, change.target),
                    what=f"{change.target} to become assignable",
                    progress=self.runbook.progress,
                )
            except GraphError as exc:
                if is_group and is_licence_error(exc):
                    self.refused_groups[change.target[6:]] = exc.graph_message
                    continue
                raise
            (applied if made is not None else already).append(change)
        if already:
            self.notes.append(
                f"{HEADS_UP}Assigned meanwhile by someone else (another run at the same time, "
                "an admin, or an earlier run stopped while assigning), so left as it is: "
                + ", ".join(c.target for c in already)
                + "."
            )
        if applied or already:
            # Confirm from the app's list, whoever made the assignment.
            self._wait_listed(sp["id"], {c.detail for c in applied + already})
        return applied

    def _wait_listed(self, sp_id: str, principal_ids: set[str]) -> None:
        """Wait until new assignments show in the app's list (Graph replicates them lazily)."""

        def listed() -> None:
            present = {a["principalId"] for a in self._assignments(sp_id)}
            if not principal_ids <= present:
                raise GraphNotFound(
                    f"{len(principal_ids - present)} assignment(s) not listed yet", status=404
                )

        self.runbook.graph.wait_for(
            listed, what="the new assignments", progress=self.runbook.progress
        )

    def _post_assignment(self, sp_id: str, body: dict[str, str], what: str = "") -> Any:
        """POST the assignment; its JSON, or None when Graph says it exists already.

        Graph answers a second identical assignment with 400 "Permission being assigned
        already exists on the object": another run (or an admin) assigned the principal
        between this step's plan and now, so what this call was for is done.
        """
        try:
            return self.runbook.graph.post(f"servicePrincipals/{sp_id}/appRoleAssignedTo", body)
        except GraphError as exc:
            message = exc.graph_message.lower()
            if exc.status == 400 and _STALE_REFERENCE.lower() in message:
                # A principal or app created moments ago: Graph says so with a 400; wait it out.
                raise GraphNotFound(exc.graph_message, status=404) from exc
            if exc.status == 400 and _ALREADY_ASSIGNED.lower() in message:
                return None
            if exc.status == 404 and _in_deleted_items(self.runbook.graph, body["principalId"]):
                # Not replication: the principal was deleted after this step looked it up.
                raise StepError(
                    f"{what or body['principalId']} was deleted while this page was assigning "
                    "it (Entra lists it among the deleted items): someone else deleted it, "
                    "perhaps another run's disable/delete demo (page 09) at the same time.",
                    "Restore it (Entra admin center > Users > Deleted users) or take it out of "
                    "the users and groups parameters, then run this page again.",
                    hint=self.name,
                ) from exc
            raise

    def verify(self) -> list[CheckResult]:
        graph = self.runbook.graph
        sp = require_app(graph, self.runbook.app_name)
        users, groups = self._resolve()
        assignments = self._assignments(sp["id"])
        assigned = {a["principalId"] for a in assignments}
        checks: list[CheckResult] = []
        missing_users = [u["userPrincipalName"] for u in users if u["id"] not in assigned]
        if missing_users:
            checks.append(
                CheckResult.failed(
                    "Users assigned",
                    f"not assigned: {', '.join(missing_users)}",
                    "Run this step again.",
                    self.name,
                )
            )
        else:
            checks.append(
                CheckResult.passed(
                    "Users assigned", f"{len(users)} user(s) in the Users and groups list"
                )
            )
        missing_groups = [g["displayName"] for g in groups if g["id"] not in assigned]
        refused = [g for g in missing_groups if g in self.refused_groups]
        other = [g for g in missing_groups if g not in self.refused_groups]
        if refused:
            checks.append(
                CheckResult.warned(
                    "Groups assigned",
                    f"refused on Entra ID Free: {', '.join(refused)}",
                    FREE_TIER_EXPLANATION,
                )
            )
        if other:
            checks.append(
                CheckResult.failed(
                    "Groups assigned",
                    f"not assigned: {', '.join(other)}",
                    "Run this step again.",
                    self.name,
                )
            )
        if not missing_groups:
            checks.append(
                CheckResult.passed(
                    "Groups assigned", f"{len(groups)} group(s) in the Users and groups list"
                )
            )
        names = {g["displayName"]: g["id"] for g in groups}
        for wanted in self.assignment_map_groups:
            title = f"Assignment Map group '{wanted}' is assigned"
            if wanted not in names and wanted not in {g["id"] for g in groups}:
                checks.append(
                    CheckResult.failed(
                        title,
                        "it is not in the groups parameter",
                        "Add it to groups and run this step again; Iru only sees groups that are assigned explicitly.",
                        self.name,
                    )
                )
            elif (names.get(wanted) or wanted) in assigned:
                checks.append(CheckResult.passed(title, "assigned"))
            elif wanted in self.refused_groups:
                checks.append(
                    CheckResult.warned(
                        title,
                        "cannot be assigned on Entra ID Free",
                        "See the 'Groups assigned' check: it says why and what to do.",
                    )
                )
            else:
                checks.append(
                    CheckResult.failed(title, "not assigned", "Run this step again.", self.name)
                )
        expected_ids = {u["id"] for u in users} | {g["id"] for g in groups}
        extra = [
            a.get("principalDisplayName", a["principalId"])
            for a in assignments
            if a["principalId"] not in expected_ids
        ]
        if extra:
            self.notes.append("Also assigned (left as they are): " + ", ".join(sorted(extra)) + ".")
        return checks

    # -- dry run -----------------------------------------------------------------------------
    def plan_fresh(self, state: PlannedState, exc: StepError) -> list[Change]:
        """No app yet (02 only planned it): nobody is assigned to a new app, so every user and
        group the parameters name is planned (they are still looked up: a wrong name fails
        the dry run as it would the real run)."""
        view = self.planned_view(state, exc, job=False)
        self._user_role(view.sp)
        # What planned_view said stays in the notes; the planning adds its own after it.
        self.notes = list(self.notes)
        changes = self._plan_for(set())
        self.not_read(
            "the app's assignments",
            "the app does not exist yet, so nobody is assigned to it and everyone named is planned",
        )
        return changes

    def planned_effects(self, planned: list[Change]) -> dict[str, Any]:
        """Who will be assigned, for page 07 to plan its first comparison."""
        assign = [
            {"kind": kind, "name": name, "id": c.detail}
            for c in planned
            if c.action == "assign"
            for kind, _, name in [c.target.partition(" ")]
        ]
        return {"assign": assign} if assign else {}
