"""The :class:`~._sandbox.Sandbox` methods that read and change the directory.

A test or a rehearsal plays the Entra admin through these: add a user, rename one,
block sign-in, soft-delete and purge, change group membership. They take effect at
once (no replication delay for reads through the handle); new users and groups do
stay invisible to the first ``consistency_reads`` Graph requests, like fresh objects
in a real tenant, so "assign a user right after creating it" fails the way it does
in Entra.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .directory._seed import DEFAULT_DOMAIN
from .directory._store import DirectoryError, DirectoryGroup, DirectoryUser
from .graph._directory_shapes import render_group, render_member, render_user
from .tenant._state import TenantState

__all__ = ["DirectoryHandle"]


class DirectoryHandle:
    """Directory inspection and changes (mixed into :class:`~._sandbox.Sandbox`)."""

    state: TenantState

    # -- reading ------------------------------------------------------------------------

    def users(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every user with all its properties (Graph names), in creation order."""
        with self.state.lock:
            return [
                render_user(user)
                for user in self.state.directory.users.values()
                if include_deleted or user.deleted is None
            ]

    def groups(self) -> list[dict[str, Any]]:
        """Every group (Graph JSON), in creation order."""
        with self.state.lock:
            return [render_group(group) for group in self.state.directory.groups.values()]

    def user(self, upn: str) -> dict[str, Any]:
        """One user (active or soft-deleted) by UPN or object id; KeyError if unknown."""
        with self.state.lock:
            return render_user(self._user(upn))

    def group(self, key: str) -> dict[str, Any]:
        """One group by object id or by a display name that only one group has."""
        with self.state.lock:
            return render_group(self._group(key))

    def group_members(self, group_id: str) -> list[dict[str, Any]]:
        """Direct members of a group (users and nested groups, with ``@odata.type``)."""
        with self.state.lock:
            group = self._group(group_id)
            directory = self.state.directory
            found: list[dict[str, Any]] = []
            for member_id in group.members:
                user = directory.users.get(member_id)
                if user is not None:
                    if user.deleted is None:
                        found.append(render_member(user, full=True))
                    continue
                nested = directory.groups.get(member_id)
                if nested is not None:
                    found.append(render_member(nested))
            return found

    def _user(self, key: str) -> DirectoryUser:
        user = self.state.directory.user(key)
        if user is None:
            raise KeyError(f"no user {key!r}")
        return user

    def _group(self, key: str) -> DirectoryGroup:
        directory = self.state.directory
        group = directory.group(key)
        if group is not None:
            return group
        named = [g for g in directory.groups.values() if g.display_name == key]
        if len(named) == 1:
            return named[0]
        if named:
            raise KeyError(f"{len(named)} groups are called {key!r}; use the object id")
        raise KeyError(f"no group {key!r}")

    # -- changing -----------------------------------------------------------------------

    def add_user(
        self,
        user_principal_name: str,
        *,
        groups: Iterable[str] = (),
        **attrs: Any,
    ) -> dict[str, Any]:
        """Create a member user; ``attrs`` are Graph property names (or snake_case).

        Missing names are derived from the UPN (``jane.doe@...`` -> "Jane Doe").
        ``groups`` lists group ids (or unique display names) to add the user to.
        """
        local = user_principal_name.split("@", 1)[0]
        given, _, surname = local.partition(".")
        state = self.state
        with state.lock:
            user = DirectoryUser(
                id=state.ids.uuid("directory-users"),
                user_principal_name=user_principal_name,
                mail=user_principal_name,
                mail_nickname=local,
                given_name=given.title() or None,
                surname=surname.title() or None,
                display_name=" ".join(p for p in (given.title(), surname.title()) if p) or local,
                job_title=None,
                department=None,
                account_enabled=True,
                created=state.clock.now(),
                preferred_language="en-US",
            )
            if "@" not in user_principal_name:
                raise DirectoryError(f"a UPN looks like name@{DEFAULT_DOMAIN}")
            state.directory.add_user(user)
            try:
                state.directory.update_user(user, attrs)
                targets = [self._group(key) for key in groups]
            except (DirectoryError, KeyError):
                state.directory.hard_delete(user)
                raise
            for group in targets:
                state.directory.add_member(group, user.id)
            user.hidden_reads = state.consistency_reads
            return render_user(user)

    def update_user(self, upn: str, **attrs: Any) -> dict[str, Any]:
        """Change user properties (Graph names or snake_case); returns the user."""
        with self.state.lock:
            user = self._user(upn)
            self.state.directory.update_user(user, attrs)
            return render_user(user)

    def disable_user(self, upn: str) -> dict[str, Any]:
        """Block sign-in (accountEnabled false); Entra then disables the SCIM user."""
        return self.update_user(upn, accountEnabled=False)

    def enable_user(self, upn: str) -> dict[str, Any]:
        """Allow sign-in again (accountEnabled true)."""
        return self.update_user(upn, accountEnabled=True)

    def soft_delete_user(self, upn: str) -> dict[str, Any]:
        """Delete a user into the recycle bin (restorable for 30 days in Entra)."""
        with self.state.lock:
            user = self._user(upn)
            self.state.directory.soft_delete(user, self.state.clock.now())
            return render_user(user)

    def restore_user(self, upn: str) -> dict[str, Any]:
        """Restore a soft-deleted user."""
        with self.state.lock:
            user = self._user(upn)
            self.state.directory.restore(user)
            return render_user(user)

    def hard_delete_user(self, upn: str) -> None:
        """Delete a user permanently (Entra then sends SCIM DELETE if it still manages it)."""
        with self.state.lock:
            user = self._user(upn)
            self.state.directory.hard_delete(user)
            self.state.forget_principal(user.id)

    def add_group(
        self,
        display_name: str,
        *,
        members: Iterable[str] = (),
        security_enabled: bool = True,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Create a security group (or a non-security one); ``members`` are UPNs or ids."""
        state = self.state
        with state.lock:
            nickname = "".join(ch for ch in display_name.lower() if ch.isalnum()) or "group"
            group = DirectoryGroup(
                id=state.ids.uuid("directory-groups"),
                display_name=display_name,
                description=description,
                mail_nickname=nickname,
                mail=None,
                mail_enabled=False,
                security_enabled=security_enabled,
                group_types=(),
                created=state.clock.now(),
            )
            member_ids = [self._member_id(key) for key in members]
            state.directory.add_group(group)
            for member_id in member_ids:
                state.directory.add_member(group, member_id)
            group.hidden_reads = state.consistency_reads
            return render_group(group)

    def _member_id(self, key: str) -> str:
        user = self.state.directory.user(key)
        if user is not None:
            return user.id
        return self._group(key).id

    def add_group_member(self, group_id: str, member: str) -> bool:
        """Add a direct member (user UPN/id or group id); False if it already was one."""
        with self.state.lock:
            group = self._group(group_id)
            return self.state.directory.add_member(group, self._member_id(member))

    def remove_group_member(self, group_id: str, member: str) -> bool:
        """Remove a direct member; False if it was not one."""
        with self.state.lock:
            group = self._group(group_id)
            return self.state.directory.remove_member(group, self._member_id(member))
